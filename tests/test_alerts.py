"""The shipped alert rules, checked and unit-tested by the real promtool (Debian's prometheus).

``promtool test rules`` replays the synthetic series of manifests/prometheus/
addlink-alerts.test.yaml and compares the alerts firing at each evaluation time, so each
alert is shown to fire on the condition it names and to clear once the condition is gone.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from runner import metric_names as M
from tests.conftest import start_service

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "manifests" / "prometheus" / "addlink-alerts.yaml"
RULE_TESTS = REPO / "manifests" / "prometheus" / "addlink-alerts.test.yaml"
OPERATIONS = REPO / "docs" / "operations.md"
ALERTS = {"AddlinkPoolBelowHalfTarget", "AddlinkNoSuccessfulRun", "AddlinkEventsDeadLettered",
          "AddlinkErrorRate", "AddlinkSearchDrift"}


@pytest.fixture(scope="module")
def promtool() -> str:
    start_service("prometheus")  # installs Debian's prometheus (promtool) when missing
    path = shutil.which("promtool")
    assert path, "promtool not on PATH after scripts/services.sh start prometheus"
    return path


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_promtool_check_rules(promtool):
    r = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules())} rules found" in r.stdout


def test_promtool_test_rules_fire_and_clear(promtool):
    r = subprocess.run([promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
    # Every alert is tested both firing and not firing.
    doc = yaml.safe_load(RULE_TESTS.read_text())
    firing, quiet = set(), set()
    for case in doc["tests"]:
        for t in case["alert_rule_test"]:
            (firing if t.get("exp_alerts") else quiet).add(t["alertname"])
    assert firing == quiet == ALERTS


def test_each_alert_has_severity_summary_and_a_runbook_section():
    ops = OPERATIONS.read_text()
    assert {r["alert"] for r in rules()} == ALERTS
    for r in rules():
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert r["annotations"]["summary"], r["alert"]
        anchor = r["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == f"runbook-{r['alert'].lower()}", r["alert"]
        assert f"### Runbook: {r['alert']}" in ops, f"docs/operations.md: no {r['alert']} runbook"


def test_alerts_use_only_declared_metrics():
    import re

    names = {spec.name for spec in M.PROMETHEUS.values()}
    for r in rules():
        used = set(re.findall(r"\b(addlink_[a-z_]+)\b", r["expr"]))
        assert used and used <= names, (r["alert"], used - names)

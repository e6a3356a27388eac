"""End to end: the real job pushes to the real Pushgateway, the real Prometheus scrapes it, and
what Prometheus answers equals the store; every dashboard panel's PromQL returns series.

Three runs of ltgwiki (dump source, real model) under one Pushgateway job of this test:
1. ``python -m runner refresh`` (target 3), events accepted;
2. the job in-process with workers that crash on every tenth page id (real worker errors),
   target 6, against an EventGate that rejects one page's events as invalid (dead letters)
   and answers the others with a server-side error (pending), after reviewers' feedback
   was written into ``growthexperiments_link_submissions``;
3. ``python -m runner refresh`` while another holder has the wiki's lock (exit 3).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from pathlib import Path

import pytest
import requests
import yaml

from runner import metric_names as M
from runner.app import run_wiki
from runner.config import load_config
from runner.job import RunOptions
from runner.lock import FileLock
from runner.metrics import open_metrics
from runner.store import open_store
from tests.eventgate import EventGate
from tests.runner_support import dump_slice, migrated
from tests.test_metrics import delete_job
from tests.test_runner_cli import cli

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "manifests" / "grafana" / "addlink-dashboard.json"
RULES = REPO / "manifests" / "prometheus" / "addlink-alerts.yaml"


class SplittingEventGate(EventGate):
    """Once armed: the first page's events are invalid (dead letters), every other page's
    get a server-side error (they stay pending)."""

    armed = False
    dead_page: int | None = None

    def errors(self, event: dict) -> list[str]:
        if self.armed:
            page = (event.get("page") or {}).get("page_id")
            if self.dead_page is None:
                self.dead_page = page
            if page == self.dead_page:
                return ["page_id: rejected by the test"]
            self.error_pages.add(page)
        return super().errors(event)


class Prom:
    def __init__(self, url: str, job: str) -> None:
        self.url, self.job = url, job

    def query(self, expr: str) -> list[dict]:
        r = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def value(self, name: str, **labels: str) -> float:
        """The one series of ``name`` of this test's job with these labels."""
        sel = ", ".join(f'{k}="{v}"' for k, v in {"job": self.job, **labels}.items())
        result = self.query(f"{name}{{{sel}}}")
        assert len(result) == 1, (name, labels, result)
        return float(result[0]["value"][1])

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.5)
        pytest.fail(f"Prometheus has no {expr} after {timeout} s")


@pytest.fixture(scope="module")
def scraped(tmp_path_factory, ltg_model, pushgateway_url, prometheus_url, crash_marker):
    tmp = tmp_path_factory.mktemp("prom")
    job = f"addlink_test_{secrets.token_hex(4)}"
    dump = dump_slice(tmp / "ltg.xml", 1000)
    with SplittingEventGate() as eg:
        doc = {"runner": {"workers": 2},
               "store": {"type": "sqlite", "path": str(tmp / "a.sqlite")},
               "events": {"type": "eventgate", "url": eg.url, "max_attempts": 1,
                          "backoff": 0.01},
               "lock": {"type": "file", "dir": str(tmp / "locks")},
               "metrics": {"type": "pushgateway", "url": pushgateway_url, "job": job,
                           "interval": 0.5},
               "wikis": {"ltgwiki": {
                   "language": "ltg", "model": str(ltg_model), "pool_target": 3,
                   "schedule_interval": 3600,
                   "source": {"type": "dump", "path": dump, "cache_dir": str(tmp / "cache")},
                   "candidates": {"strategy": "random", "seed": 7}}}}
        config = tmp / "config.yaml"
        config.write_text(yaml.safe_dump(doc))
        migrated(config)
        try:
            r = cli("--config", str(config), "refresh")
            assert r.returncode == 0, r.stderr

            # Reviewers' answers, as GrowthExperiments records them.
            conn = sqlite3.connect(tmp / "a.sqlite")
            revs = [rev for (rev,) in conn.execute(
                "SELECT gelr_revision FROM growthexperiments_link_recommendations "
                "WHERE gelr_data IS NOT NULL ORDER BY gelr_revision")]
            assert len(revs) >= 2
            (blob,) = conn.execute("SELECT gelr_data FROM growthexperiments_link_recommendations"
                                   " WHERE gelr_revision = ?", (revs[0],)).fetchone()
            model_version = json.loads(blob)["meta"]["dataset_checksums"]["model"][:12]
            rows = [(revs[0], 1, "a", 0), (revs[0], 2, "a", 10), (revs[0], 3, "r", 20),
                    (revs[1], 4, "s", 0), (999_999_999, 5, "a", 0)]  # the last: row gone
            conn.executemany(
                "INSERT INTO growthexperiments_link_submissions (gels_revision, gels_page, "
                "gels_user, gels_target, gels_anchor_offset, gels_anchor_length, "
                "gels_feedback) VALUES (?, 1, 1, ?, ?, 3, ?)",
                [(rev, target, off, fb) for rev, target, fb, off in rows])
            conn.commit()
            conn.close()

            eg.armed = True
            cfg = load_config(config)
            metrics = open_metrics(cfg.metrics)
            crash_marker.unlink(missing_ok=True)  # one worker crash in this run
            res = run_wiki(cfg, "ltgwiki", RunOptions(
                target=6, recommender="tests.runner_support:crash_once"), metrics)
            metrics.close()
            assert res.pool_after >= 4, res.as_dict()
            worker_errors = metrics.registry.get_sample_value(
                "addlink_errors_total", {"wiki": "ltgwiki", "kind": "worker", "shard": "all"})

            lock = FileLock(str(tmp / "locks"), "ltgwiki")
            lock.acquire()
            try:
                r = cli("--config", str(config), "refresh")
            finally:
                lock.release()
            assert r.returncode == 3, r.stderr

            prom = Prom(prometheus_url, job)
            prom.wait_for(f'addlink_runs_total{{job="{job}", status="lock_held"}}')
            time.sleep(3)  # a few more scrapes: rate() and increase() need two samples
            store = open_store(cfg.store, "ltgwiki")
            try:
                truth = {"pool": store.pool_size(), "outbox": store.outbox_counts(),
                         "last_success": store.last_success(), "result": res,
                         "model_version": model_version, "worker_errors": worker_errors}
            finally:
                store.close()
            yield prom, truth, config
        finally:
            delete_job(pushgateway_url, job)


def test_prometheus_answers_what_the_store_holds(scraped):
    prom, truth, _ = scraped
    res = truth["result"]
    assert prom.value("addlink_pool_size", wiki="ltgwiki") == truth["pool"] == res.pool_after
    assert prom.value("addlink_pool_target", wiki="ltgwiki") == 6
    assert prom.value("addlink_schedule_interval_seconds", wiki="ltgwiki") == 3600
    assert prom.value("addlink_last_success_timestamp_seconds", wiki="ltgwiki") == \
        pytest.approx(truth["last_success"], abs=1e-3)
    assert prom.value("addlink_run_duration_seconds", wiki="ltgwiki") == \
        pytest.approx(res.seconds, rel=1e-6)
    for outcome, n in res.outcomes.items():
        assert prom.value("addlink_outcomes_total", wiki="ltgwiki", outcome=outcome) == n
    assert truth["outbox"]["failed"] > 0 and truth["outbox"]["pending"] > 0
    assert prom.value("addlink_events_dead_letters", wiki="ltgwiki") == truth["outbox"]["failed"]
    assert prom.value("addlink_events_pending", wiki="ltgwiki") == truth["outbox"]["pending"]
    assert truth["worker_errors"] == 1  # the one crash crash_once makes
    assert prom.value("addlink_errors_total", wiki="ltgwiki", kind="worker") == \
        truth["worker_errors"]
    assert prom.value("addlink_runs_total", wiki="ltgwiki", status="lock_held") == 1
    (series,) = prom.query(f'addlink_pool_size{{job="{prom.job}"}}')
    assert series["metric"]["shard"] == "all" and "topic" not in series["metric"]


def test_feedback_rates_per_model_version(scraped):
    prom, truth, config = scraped
    v = truth["model_version"]
    want = {(v, "accepted"): 0.5, (v, "rejected"): 0.25, (v, "skipped"): 0.25,
            ("unknown", "accepted"): 1.0, ("unknown", "rejected"): 0.0}
    for (version, fb), ratio in want.items():
        assert prom.value("addlink_feedback_ratio", wiki="ltgwiki", model_version=version,
                          feedback=fb) == ratio
    assert prom.value("addlink_feedback_links", wiki="ltgwiki", model_version=v,
                      feedback="accepted") == 2

    r = cli("--config", str(config), "status", "--format", "json")
    assert r.returncode == 0, r.stderr
    (st,) = json.loads(r.stdout)["wikis"]
    assert st["feedback"][v] == {"accepted": 2, "rejected": 1, "skipped": 1, "total": 4,
                                 "acceptance_rate": 0.5, "rejection_rate": 0.25,
                                 "skip_rate": 0.25}
    assert st["feedback"]["unknown"]["total"] == 1
    assert st["last_success"] == pytest.approx(truth["last_success"])
    text = cli("--config", str(config), "status").stdout
    lines = text.split("feedback (growthexperiments_link_submissions)\n")[1].splitlines()
    assert lines[0].split() == ["wiki", "model", "version", "reviewed", "accepted", "rejected",
                                "skipped"]
    assert lines[1].split() == ["ltgwiki", v, "4", "50.0%", "25.0%", "25.0%"]


def dashboard_targets() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p["targets"]]


def test_every_dashboard_query_returns_series(scraped):
    prom, _, _ = scraped
    targets = dashboard_targets()
    assert len(targets) >= 8
    for title, expr in targets:
        assert 'wiki=~"$wiki"' in expr, f"{title}: ignores the wiki variable: {expr}"
        # This test's own series only: the Pushgateway is shared with other test sessions.
        query = (expr.replace('wiki=~"$wiki"', f'wiki=~"ltgwiki", job="{prom.job}"')
                 .replace("$__rate_interval", "1m"))
        assert "$" not in query, query
        result = prom.query(query)
        assert result, f"panel {title!r}: no series for {query}"
        assert all(s["metric"].get("wiki") == "ltgwiki" for s in result), (title, result)


def test_alert_expressions_run_and_dead_letters_fire(scraped):
    prom, _, _ = scraped
    rules = {r["alert"]: r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"]
             for r in g["rules"]}
    for expr in rules.values():
        prom.query(expr)  # valid PromQL over the real series
    fired = prom.query(rules["AddlinkEventsDeadLettered"])
    assert any(s["metric"]["wiki"] == "ltgwiki" for s in fired)
    assert M.PROMETHEUS[M.EVENTS_DEAD].name in rules["AddlinkEventsDeadLettered"]

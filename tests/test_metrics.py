"""The metrics adapters: declarations, the statsd-exporter mapping, and pushes to the real
Pushgateway (Debian's prometheus-pushgateway on loopback)."""

from __future__ import annotations

import re
import secrets
import socket
import time
from pathlib import Path

import pytest
import requests
import yaml

from runner import metric_names as M
from runner.config import ConfigError, parse_config
from runner.metrics import PushgatewayMetrics, StatsdMetrics, open_metrics

REPO = Path(__file__).resolve().parent.parent
MAPPING = REPO / "manifests" / "statsd-exporter" / "mapping.yaml"


def test_every_metric_has_a_prometheus_declaration():
    assert set(M.PROMETHEUS) == set(M.ALL)
    names = [s.name for s in M.PROMETHEUS.values()]
    assert len(names) == len(set(names))
    for template, spec in M.PROMETHEUS.items():
        assert re.fullmatch(r"addlink_[a-z_]+", spec.name), spec.name
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        assert M.SHARD_LABEL not in spec.labels
        # Every placeholder of the statsd name is a label (no information lost on the way).
        assert set(re.findall(r"\{(\w+)\}", template)) <= set(spec.labels), template


def test_statsd_exporter_mapping_gives_the_same_names_and_labels():
    doc = yaml.safe_load(MAPPING.read_text())
    assert doc["defaults"]["match_type"] == "glob"
    by_match = {m["match"]: m for m in doc["mappings"]}
    assert len(by_match) == len(doc["mappings"]) == len(M.ALL)
    for template in M.ALL:
        spec = M.PROMETHEUS[template]
        m = by_match.get(re.sub(r"\{\w+\}", "*", template))
        assert m, f"no mapping for {template}"
        assert m["name"] == spec.name
        holders = re.findall(r"\{(\w+)\}", template)
        assert m["labels"] == {h: f"${i}" for i, h in enumerate(holders, 1)}
        if spec.kind == "histogram":
            assert m["observer_type"] == "histogram"
    assert doc["defaults"]["histogram_options"]["buckets"] == list(M.BUCKETS)


def test_undeclared_metric_is_refused_and_derived_names_follow_the_call():
    with pytest.raises(ValueError, match="not declared"):
        M.prometheus("addlink.{wiki}.nonsense")
    assert M.prometheus(M.OUTCOME).name == "addlink_outcomes_total"


def test_statsd_sends_run_duration_as_a_gauge_in_seconds():
    """A real UDP socket receives what the statsd adapter sends (the exporter's input)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    m = StatsdMetrics("127.0.0.1", sock.getsockname()[1])
    m.timing(M.RUN_DURATION, 2500.0, wiki="ltgwiki")
    m.timing(M.API_TIME, 12.0, wiki="ltgwiki")
    m.incr(M.OUTCOME, wiki="ltgwiki", outcome="success", topic="")
    got = [sock.recv(512).decode() for _ in range(3)]
    m.close()
    sock.close()
    assert got == ["addlink.ltgwiki.run_duration:2.5|g", "addlink.ltgwiki.time.api:12.000000|ms",
                   "addlink.ltgwiki.outcome.success:1|c"]


def test_pushgateway_config_is_validated():
    base = {"wikis": {"ltgwiki": {"language": "ltg", "model": "/m",
                                  "source": {"type": "api", "api_url": "http://x/api.php"}}}}
    with pytest.raises(ConfigError, match="metrics.url"):
        parse_config({**base, "metrics": {"type": "pushgateway"}})
    with pytest.raises(ConfigError, match="metrics.interval"):
        parse_config({**base, "metrics": {"type": "pushgateway", "url": "http://h:9091",
                                          "interval": 0}})
    with pytest.raises(ConfigError, match="schedule_interval"):
        parse_config({"wikis": {"ltgwiki": {**base["wikis"]["ltgwiki"],
                                            "schedule_interval": -1}}})
    cfg = parse_config({**base, "metrics": {"type": "pushgateway", "url": "http://h:9091",
                                            "job": "j", "interval": 2}})
    assert (cfg.metrics.url, cfg.metrics.job, cfg.metrics.interval) == ("http://h:9091", "j", 2)


def groups(url: str, job: str) -> dict[tuple[str, str], dict]:
    """(wiki, shard) -> {metric name: [(labels, value)]} of the Pushgateway groups of ``job``"""
    out = {}
    for g in requests.get(f"{url}/api/v1/metrics", timeout=10).json()["data"]:
        labels = g["labels"]
        if labels.get("job") != job:
            continue
        fams = {}
        for name, fam in g.items():
            if isinstance(fam, dict) and "metrics" in fam:
                fams[name] = [({k: v for k, v in m["labels"].items() if v}, m.get("value"))
                              for m in fam["metrics"]]  # "" = no label, as in Prometheus
        out[labels["wiki"], labels["shard"]] = fams
    return out


def delete_job(url: str, job: str) -> None:
    from prometheus_client import delete_from_gateway

    for wiki, shard in groups(url, job):
        delete_from_gateway(url, job=job, grouping_key={"wiki": wiki, "shard": shard})


def test_shards_and_wikis_push_to_their_own_groups(pushgateway_url):
    job = f"addlink_test_{secrets.token_hex(4)}"
    try:
        pods = [PushgatewayMetrics(pushgateway_url, job, 60, 5, shard=s) for s in ("0/2", "1/2")]
        for i, m in enumerate(pods):
            m.gauge(M.POOL_SIZE, 10 + i, wiki="ltgwiki")
            m.incr(M.OUTCOME, 3 + i, wiki="ltgwiki", outcome="success")
            m.gauge(M.POOL_SIZE, 100, wiki="elwiki")
            m.close()
            assert (m.pushes, m.push_errors) == (2, 0)  # one push per wiki at close
        got = groups(pushgateway_url, job)
        assert set(got) == {("ltgwiki", "0/2"), ("ltgwiki", "1/2"), ("elwiki", "0/2"),
                            ("elwiki", "1/2")}
        for i, shard in enumerate(("0/2", "1/2")):
            fams = got["ltgwiki", shard]
            assert fams["addlink_pool_size"] == [(
                {"job": job, "wiki": "ltgwiki", "shard": shard}, str(10 + i))]
            assert fams["addlink_outcomes_total"] == [(
                {"job": job, "wiki": "ltgwiki", "shard": shard, "outcome": "success"},
                str(3 + i))]
            assert "addlink_outcomes_total" not in got["elwiki", shard]
    finally:
        delete_job(pushgateway_url, job)


def test_pushes_during_the_run_and_a_later_push_keeps_earlier_metrics(pushgateway_url):
    """Periodic pushes while a run goes on; a push replaces only the metrics it carries, so
    a failed run's push leaves the last success time of the run before in place."""
    job = f"addlink_test_{secrets.token_hex(4)}"
    try:
        m = PushgatewayMetrics(pushgateway_url, job, 0.2, 5)
        m.gauge(M.LAST_SUCCESS, 1234.0, wiki="ltgwiki")
        deadline = time.monotonic() + 10
        while m.pushes < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert m.pushes >= 3 and m.push_errors == 0  # pushed by the timer, no flush called
        m.close()
        failed = open_metrics(parse_config({
            "metrics": {"type": "pushgateway", "url": pushgateway_url, "job": job},
            "wikis": {"ltgwiki": {"language": "ltg", "model": "/m", "source": {
                "type": "api", "api_url": "http://x/api.php"}}}}).metrics)
        failed.incr(M.RUNS, wiki="ltgwiki", status="failed")
        failed.close()
        fams = groups(pushgateway_url, job)["ltgwiki", "all"]
        assert fams["addlink_last_success_timestamp_seconds"][0][1] == "1234"
        assert fams["addlink_runs_total"][0] == (
            {"job": job, "wiki": "ltgwiki", "shard": "all", "status": "failed"}, "1")
    finally:
        delete_job(pushgateway_url, job)


def test_unreachable_pushgateway_never_fails_the_caller():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    m = PushgatewayMetrics(f"http://127.0.0.1:{port}", "addlink_test", 60, 1)
    m.gauge(M.POOL_SIZE, 1, wiki="ltgwiki")
    m.close()
    assert (m.pushes, m.push_errors) == (0, 1)

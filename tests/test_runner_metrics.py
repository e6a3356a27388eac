"""statsd metrics as they arrive on a UDP socket; names only from runner/metric_names.py."""

from __future__ import annotations

import socket

import pytest

from runner import metric_names as M
from runner.config import MetricsSection
from runner.metrics import Metrics, StatsdMetrics, open_metrics


@pytest.fixture
def udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def packets(sock: socket.socket, n: int) -> list[str]:
    return [sock.recv(65535).decode() for _ in range(n)]


def test_statsd_packets(udp):
    m = open_metrics(MetricsSection(type="statsd", port=udp.getsockname()[1]))
    assert isinstance(m, StatsdMetrics)
    m.gauge(M.POOL_SIZE, 17, wiki="ltgwiki")
    m.incr(M.OUTCOME, wiki="ltgwiki", outcome="success")
    m.incr(M.EVENTS_SENT, 3, wiki="ltgwiki")
    m.timing(M.MODEL_TIME, 12.5, wiki="ltgwiki")
    with m.timer(M.DB_TIME, wiki="ltgwiki"):
        pass
    got = packets(udp, 5)
    m.close()
    assert got[:4] == ["addlink.ltgwiki.pool_size:17|g",
                       "addlink.ltgwiki.outcome.success:1|c",
                       "addlink.ltgwiki.events.sent:3|c",
                       "addlink.ltgwiki.time.model:12.500000|ms"]
    assert got[4].startswith("addlink.ltgwiki.time.db:") and got[4].endswith("|ms")


def test_labels_cannot_break_the_name(udp):
    m = StatsdMetrics("127.0.0.1", udp.getsockname()[1])
    m.incr(M.ERRORS, wiki="x.y", kind="a:b")
    assert packets(udp, 1) == ["addlink.x_y.errors.a_b:1|c"]


def test_undeclared_names_are_refused_by_both_adapters():
    for m in (Metrics(), StatsdMetrics("127.0.0.1", 9)):
        with pytest.raises(ValueError, match="not declared"):
            m.incr("addlink.{wiki}.made_up", wiki="x")


def test_off_sends_nothing(udp):
    m = open_metrics(MetricsSection(type="off"))
    m.gauge(M.POOL_SIZE, 1, wiki="x")
    with pytest.raises(TimeoutError):
        udp.settimeout(0.2)
        udp.recv(100)

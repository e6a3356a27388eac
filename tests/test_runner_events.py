"""Events validate against the real schema; the publisher against a local EventGate."""

from __future__ import annotations

import json

import pytest

from runner.events import EventFactory, EventGateSink, JsonLinesSink, Publisher
from runner.metrics import Metrics
from runner.store.sqlite import SqliteStore
from tests.eventgate import EventGate, validator

EVENTS = EventFactory("ltgwiki", "mediawiki.cirrussearch.page_weighted_tags_change.rc0",
                      "/development/cirrussearch/page_weighted_tags_change/1.0.0",
                      "ltg.wikipedia.org")
DATA = {"links": [], "meta": {}}


def test_set_and_clear_events_follow_the_schema():
    v = validator()
    s, c = EVENTS.set(42, "Rēzekne"), EVENTS.clear(42, "Rēzekne")
    assert [e.message for e in v.iter_errors(s)] == []
    assert [e.message for e in v.iter_errors(c)] == []
    assert s["weighted_tags"] == {"set": {"recommendation.link": [{"tag": "exists"}]}}
    assert c["weighted_tags"] == {"clear": ["recommendation.link"]}
    assert s["page"] == {"page_id": 42, "page_title": "Rēzekne", "namespace_id": 0,
                         "is_redirect": False}
    assert s["wiki_id"] == "ltgwiki" and s["meta"]["domain"] == "ltg.wikipedia.org"
    assert s["meta"]["id"] != c["meta"]["id"]
    # the validator is not lenient: a broken event is reported
    broken = dict(s, page={"page_id": -1, "page_title": ""})
    assert len(list(v.iter_errors(broken))) >= 3


def _store(tmp_path, n: int) -> SqliteStore:
    store = SqliteStore.open(str(tmp_path / "s.sqlite"), "ltgwiki")
    for i in range(1, n + 1):
        store.save_recommendation(i, 100 + i, f"Page {i}", DATA, EVENTS.set(i, f"Page {i}"))
    return store


def _publisher(store, sink, **kw) -> Publisher:
    kw.setdefault("batch_size", 3)
    return Publisher(store, sink, Metrics(), sleep=lambda s: None, **kw)


def test_all_accepted_leave_the_outbox(tmp_path):
    store = _store(tmp_path, 7)
    with EventGate() as eg:
        stats = _publisher(store, EventGateSink(eg.url)).drain()
    assert (stats.sent, stats.failed, stats.pending) == (7, 0, 0)
    assert [e["page"]["page_id"] for e in eg.accepted] == list(range(1, 8))
    assert [n for _, n in eg.requests] == [3, 3, 1]  # batched
    assert store.outbox_counts() == {"pending": 0, "failed": 0}


def test_hasty_202_is_accepted(tmp_path):
    store = _store(tmp_path, 2)
    with EventGate() as eg:
        stats = _publisher(store, EventGateSink(eg.url, hasty=True)).drain()
    assert stats.sent == 2 and eg.requests == [(202, 2)]


def test_207_keeps_only_unacknowledged_events(tmp_path):
    store = _store(tmp_path, 3)
    # an invalid event (empty title) slipped into the outbox, and one page's event fails
    store.queue_events([(9, dict(EVENTS.set(9, "x"), page={"page_id": 9, "page_title": "",
                                                           "namespace_id": 0}))])
    with EventGate() as eg:
        eg.error_pages = {2}
        stats = _publisher(store, EventGateSink(eg.url), batch_size=10, max_attempts=2).drain()
        assert sorted(e["page"]["page_id"] for e in eg.accepted) == [1, 3]
        assert eg.requests[0][0] == 207
    assert stats.sent == 2 and stats.failed == 1 and stats.pending == 1
    assert store.outbox_counts() == {"pending": 1, "failed": 1}
    (left,) = store.pending_events(10)
    assert left.event["page"]["page_id"] == 2 and left.attempts == 2
    with store.transaction() as cur:
        cur.execute("SELECT ao_page, ao_error FROM addlink_outbox WHERE ao_state = 'failed'")
        (page, error), = cur.fetchall()
    assert page == 9 and "page_title" in error


def test_400_marks_batch_failed(tmp_path):
    store = SqliteStore.open(str(tmp_path / "s.sqlite"), "ltgwiki")
    bad = EVENTS.clear(5, "T")
    del bad["wiki_id"]
    store.queue_events([(5, bad)])
    with EventGate() as eg:
        stats = _publisher(store, EventGateSink(eg.url)).drain()
        assert eg.requests == [(400, 1)] and eg.accepted == []
    assert (stats.sent, stats.failed, stats.pending) == (0, 1, 0)
    assert store.outbox_counts() == {"pending": 0, "failed": 1}


def test_503_is_retried_with_backoff_then_delivered(tmp_path):
    store = _store(tmp_path, 2)
    sleeps: list[float] = []
    with EventGate() as eg:
        eg.fail_next(503, 2)
        pub = Publisher(store, EventGateSink(eg.url), Metrics(), batch_size=10,
                        max_attempts=5, backoff=0.25, sleep=sleeps.append)
        stats = pub.drain()
        assert [s for s, _ in eg.requests] == [503, 503, 201]
    assert stats.sent == 2 and stats.pending == 0
    assert sleeps == [0.25, 0.5]


def test_persistent_503_leaves_events_for_next_run(tmp_path):
    store = _store(tmp_path, 2)
    with EventGate() as eg:
        eg.fail_next(503, 10)
        stats = _publisher(store, EventGateSink(eg.url), max_attempts=3).drain()
        assert len(eg.requests) == 3
    assert stats.sent == 0 and stats.pending == 2 and "503" in stats.error
    with EventGate() as eg:  # the next run delivers them, in order
        stats = _publisher(store, EventGateSink(eg.url)).drain()
        assert [e["page"]["page_id"] for e in eg.accepted] == [1, 2]


def test_unreachable_eventgate_keeps_events(tmp_path):
    store = _store(tmp_path, 1)
    with EventGate() as eg:
        url = eg.url
    stats = _publisher(store, EventGateSink(url, timeout=1), max_attempts=2).drain()
    assert stats.sent == 0 and stats.pending == 1 and "ConnectionError" in stats.error


def test_jsonlines_sink_appends(tmp_path):
    store = _store(tmp_path, 4)
    path = tmp_path / "out" / "events.jsonl"
    stats = _publisher(store, JsonLinesSink(str(path))).drain()
    store.save_null(1, 201, "Page 1", EVENTS.clear)
    stats2 = _publisher(store, JsonLinesSink(str(path))).drain()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert stats.sent == 4 and stats2.sent == 1
    assert [list(e["weighted_tags"]) for e in lines] == [["set"]] * 4 + [["clear"]]
    v = validator()
    assert all(not list(v.iter_errors(e)) for e in lines)


@pytest.mark.parametrize("status", [401, 404])
def test_configuration_errors_do_not_discard_events(tmp_path, status):
    store = _store(tmp_path, 1)
    with EventGate() as eg:
        eg.fail_next(status, 5)
        stats = _publisher(store, EventGateSink(eg.url), max_attempts=2).drain()
    assert stats.failed == 0 and stats.pending == 1 and str(status) in stats.error

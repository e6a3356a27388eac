"""Both stores against the same expectations: SQLite files and the real MariaDB."""

from __future__ import annotations

import json
import secrets

import pytest

from runner.events import EventFactory
from runner.store import Store, StoreError
from runner.store.mysql import MysqlStore, parse_mysql_url
from runner.store.sqlite import SqliteStore
from tests.runner_support import drop_database

EVENTS = EventFactory("enwiki", "test.stream", "/development/x/1.0.0", "en.wikipedia.org")
DATA = {"links": [{"link_text": "a", "link_target": "A", "score": 0.9}],
        "meta": {"format_version": 1, "task_timestamp": 1}}


@pytest.fixture(params=["sqlite", "mysql"])
def store(request, tmp_path) -> Store:
    if request.param == "sqlite":
        s = SqliteStore.open(str(tmp_path / "s.sqlite"), "enwiki")
    else:
        base = request.getfixturevalue("mysql_url")
        # one database per test: tables start empty
        url = f"{base}_{secrets.token_hex(3)}"
        s = MysqlStore.open(url, "enwiki", create_database=True)
        request.addfinalizer(lambda: drop_database(url))
    yield s
    s.close()


def _kinds(store: Store) -> list:
    return [next(iter(p.event["weighted_tags"])) for p in store.pending_events(100)]


def test_row_and_event_are_written_together(store):
    store.save_recommendation(12, 100, "Anarchism", DATA, EVENTS.set(12, "Anarchism"))
    assert store.pool_size() == 1
    assert store.row(100).data == DATA
    assert store.revision_states([100, 999]) == {100: True}
    pending = store.pending_events(10)
    assert len(pending) == 1 and pending[0].event["page"]["page_title"] == "Anarchism"
    assert store.pool_titles([12]) == {12: "Anarchism"}


def test_schema_is_growthexperiments_compatible(store):
    """gelr_data holds the JSON bytes; a NULL row means 'evaluated, nothing usable'."""
    store.save_recommendation(1, 10, "T", DATA, EVENTS.set(1, "T"))
    store.save_null(2, 20, "U", EVENTS.clear)
    with store.transaction() as cur:
        cur.execute("SELECT gelr_revision, gelr_page, gelr_data FROM "
                    "growthexperiments_link_recommendations ORDER BY gelr_revision")
        rows = cur.fetchall()
    assert [(int(r), int(p)) for r, p, _ in rows] == [(10, 1), (20, 2)]
    assert json.loads(bytes(rows[0][2])) == DATA and rows[1][2] is None
    assert store.row_counts() == {"with_data": 1, "null": 1}
    assert store.pool_size() == 1


def test_failed_transaction_leaves_nothing(store):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction() as cur:
        cur.execute(store._sql("replace_row"), (5, 5, b"{}"))
        raise Boom
    assert store.row(5) is None


def test_event_outside_json_rolls_back_the_row(store):
    """An event that cannot be serialized aborts the unit: no row without its event."""
    with pytest.raises(TypeError):
        store.save_recommendation(3, 30, "X", DATA, {"bad": {1, 2}})
    assert store.row(30) is None and store.pool_size() == 0 and not store.pending_events(10)


def test_new_revision_replaces_old_rows_and_null_row_clears_tag(store):
    store.save_recommendation(12, 100, "Anarchism", DATA, EVENTS.set(12, "Anarchism"))
    store.save_null(12, 101, "Anarchism", EVENTS.clear)
    assert store.row(100) is None and store.row(101).data is None
    assert store.pool_size() == 0
    assert _kinds(store) == ["set", "clear"]
    assert store.pool_titles([12]) == {}


def test_null_row_for_unknown_page_queues_no_event(store):
    store.save_null(7, 70, "Seven", EVENTS.clear)
    assert store.revision_states([70]) == {70: False}
    assert store.pending_events(10) == []


def test_remove_pages_uses_recorded_title(store):
    store.save_recommendation(12, 100, "Anarchism", DATA, EVENTS.set(12, "Anarchism"))
    store.ack_events([p.id for p in store.pending_events(10)])
    assert store.remove_pages([(12, None)], EVENTS.clear) == 1
    (ev,) = store.pending_events(10)
    assert ev.event["page"]["page_title"] == "Anarchism"
    assert ev.event["weighted_tags"] == {"clear": ["recommendation.link"]}


def test_rejected_targets_need_two_rejections(store):
    with store.transaction() as cur:
        rows = [(100, 12, 1, 555, 0, 5, "r"), (101, 12, 1, 555, 3, 5, "r"),
                (100, 12, 1, 666, 9, 5, "r"), (100, 12, 1, 777, 12, 5, "a"),
                (102, 12, 1, 777, 12, 5, "a"), (100, 13, 1, 888, 1, 5, "r"),
                (101, 13, 1, 888, 2, 5, "r")]
        for r in rows:
            cur.execute(store._sql_raw(
                "INSERT INTO growthexperiments_link_submissions (gels_revision, gels_page, "
                "gels_user, gels_target, gels_anchor_offset, gels_anchor_length, "
                "gels_feedback) VALUES (?, ?, ?, ?, ?, ?, ?)"), r)
    assert store.rejected_targets(12) == {555}
    assert store.rejected_targets(12, limit=1) == {555, 666}
    assert store.prior_submissions([100, 101, 999]) == {100, 101}


def test_outbox_ack_fail_retry(store):
    for i in range(5):
        store.save_recommendation(i + 1, 10 + i, f"P{i}", DATA, EVENTS.set(i + 1, f"P{i}"))
    pending = store.pending_events(10)
    assert [p.event["page"]["page_id"] for p in pending] == [1, 2, 3, 4, 5]
    store.ack_events([pending[0].id, pending[1].id])
    store.fail_events({pending[2].id: "invalid: page_title"})
    store.retry_events([pending[3].id], "HTTP 503")
    assert store.outbox_counts() == {"pending": 2, "failed": 1}
    again = store.pending_events(10)
    assert [(p.event["page"]["page_id"], p.attempts) for p in again] == [(4, 1), (5, 0)]


def test_large_in_lists_are_chunked(store):
    ids = list(range(1, 1300))
    assert store.revision_states(ids) == {}
    store.save_null(1, 1299, "T", EVENTS.clear)
    assert store.revision_states(ids) == {1299: False}


def test_keyset_iteration_and_pool_entries(store):
    for i in range(1, 8):
        store.save_recommendation(i, 100 + i, f"T{i}", DATA, EVENTS.set(i, f"T{i}"))
    store.save_null(50, 500, "N", EVENTS.clear)
    assert [r.page_id for r in store.iter_data_rows(batch=3)] == list(range(1, 8))
    assert [b for b in store.iter_pooled_pages(batch=3)][0] == [(1, 101), (2, 102), (3, 103)]
    assert list(store.iter_null_rows(batch=2)) == [(50, 500)]
    assert [e[0] for e in store.iter_pool_entries(batch=2)] == list(range(1, 8))


def test_run_log_and_resume_points(store):
    run = store.start_run("refresh", "0/2")
    store.finish_run(run, "ok", "target_reached", {"success": 3, "other": 1}, 3)
    last = store.last_run()
    assert (last["command"], last["shard"], last["status"], last["stop_reason"]) == \
        ("refresh", "0/2", "ok", "target_reached")
    assert last["outcomes"] == {"success": 3, "other": 1} and last["pool_size"] == 3
    assert store.resume_point("allpages:0/2") is None
    store.set_resume_point("allpages:0/2", 1234)
    store.set_resume_point("allpages:0/2", 2345)
    assert store.resume_point("allpages:0/2") == 2345
    store.set_resume_point("allpages:0/2", None)
    assert store.resume_point("allpages:0/2") is None


def test_schema_applies_twice(store):
    store._apply_schema()
    assert store.pool_size() == 0


def test_bad_locations_are_clear_errors(tmp_path):
    with pytest.raises(StoreError, match="store.url"):
        MysqlStore.open("mysql://root@127.0.0.1:1/x", "enwiki", connect_timeout=2)
    with pytest.raises(StoreError, match="password_env"):
        parse_mysql_url("mysql://root:secret@127.0.0.1/x")
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="store.path"):
        SqliteStore.open(str(tmp_path / "file" / "db.sqlite"), "enwiki")

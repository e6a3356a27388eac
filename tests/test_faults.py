"""The job under faults, as an operator would see it: real runner processes killed with -9,
signalled, cut off from MariaDB, ZooKeeper, MediaWiki or EventGate by a loopback TCP proxy,
EventGate answering 207/400/429/503 or too late. After each fault: the documented exit code
within a bound, one line naming the problem, no traceback; after the fault clears, one rerun
restores every invariant (tests/faults.py). The long version: benchmarks/faults.py.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import shutil
import signal
import time
from pathlib import Path

import pytest

from model.exitcodes import ExitCode
from runner.events import EventFactory, EventGateSink, Publisher
from runner.metrics import Metrics
from runner.store.mysql import MysqlStore
from runner.store.sqlite import SqliteStore
from tests.conftest import MW_PORT, ZK_PORT
from tests.eventgate import EventGate
from tests.faults import (
    BOUND,
    SHORT,
    Runner,
    check,
    data_rows,
    has_traceback,
    invariants,
    jsonl_events,
    kill_runs,
    mysql_setup,
    one_line_error,
    open_cfg_store,
    partition_run,
    run,
    sqlite_setup,
    write_config,
)
from tests.model_fixtures import model_of_other_features
from tests.runner_support import LTG_DUMP, drop_database, migrated_store
from tests.tcpproxy import TcpProxy

EVENTS = EventFactory("ltgwiki", "s", "/development/cirrussearch/page_weighted_tags_change/1.0.0",
                      "ltg.wikipedia.org")


# ---------------------------------------------------------------------------- signals


def test_sigterm_stops_within_the_bound_and_commits_finished_pages(tmp_path, ltg_model):
    cfg, _ = sqlite_setup(tmp_path, ltg_model, target=100000)
    r = Runner(cfg, "refresh")
    assert r.wait_for("evaluated", 120, '"outcome": "success"'), r.stdout()[-2000:]
    sent = r.signal(signal.SIGTERM)
    res = r.wait(BOUND)
    assert res.code == ExitCode.SIGNAL, res.stderr[-2000:]
    done = res.finished()
    assert done["status"] == "interrupted" and done["stop_reason"] == "SIGTERM"
    assert r.proc.returncode is not None and res.seconds - (sent - r.t0) < BOUND
    rep = invariants(cfg, jsonl_events(tmp_path / "events.jsonl"))
    assert rep.ok, rep.violations  # every committed row has its event: published in time
    assert rep.rows == done["pool_after"] and rep.rows >= 1


# ---------------------------------------------------------------------------- kill -9


def test_kill9_sqlite_jsonlines(tmp_path, ltg_model):
    cfg, _ = sqlite_setup(tmp_path, ltg_model)
    assert kill_runs(cfg, 4, lambda: jsonl_events(tmp_path / "events.jsonl"),
                     random.Random(9)) == []


def test_kill9_mariadb_eventgate(tmp_path, ltg_model, mysql_url):
    with EventGate() as eg:
        cfg, _, url = mysql_setup(tmp_path, ltg_model, 3306, eg.url)
        try:
            assert kill_runs(cfg, 4, lambda: list(eg.accepted), random.Random(4)) == []
        finally:
            drop_database(url)


# ---------------------------------------------------------------------------- partitions


def test_mariadb_partition_then_rerun(tmp_path, ltg_model, mysql_url):
    with EventGate() as eg, TcpProxy(3306) as proxy:
        cfg, _, url = mysql_setup(tmp_path, ltg_model, proxy.port, eg.url)
        try:
            res, seconds = partition_run(cfg, proxy)
            assert res.code == ExitCode.UNAVAILABLE, res.stdout[-3000:]
            assert seconds < BOUND
            assert one_line_error(res).startswith("MySQL unavailable: ")
            again = run(cfg, "refresh", "--target", "30")
            assert again.code == 0, again.stdout[-3000:]
            rep = invariants(cfg, list(eg.accepted))
            assert rep.ok, rep.violations
        finally:
            drop_database(url)


def test_reset_during_commit_is_retried_once_with_the_same_keys(tmp_path, mysql_url):
    """The COMMIT reaches the server, the answer never comes back (InterfaceError (0, '')
    before): one retry on a fresh connection, and still one row and one event."""
    scratch = mysql_url.rsplit("/", 1)[0] + f"/addlink_fault_{secrets.token_hex(4)}"
    migrated_store(MysqlStore, scratch, "ltgwiki").close()
    with TcpProxy(3306) as proxy:
        url = scratch.replace(":3306/", f":{proxy.port}/")
        store = MysqlStore.open(url, "ltgwiki", create_database=True, read_timeout=3,
                                write_timeout=3)
        proxy.set("reset_after_commit")
        store.save_recommendation(7, 70, "Seven", {"links": []}, EVENTS.set(7, "Seven"))
        assert proxy.commits_reset == 1
        assert store.row(70) is not None and len(store.pending_events(10)) == 1
        store.close()
    drop_database(scratch)


def test_zookeeper_partition_ends_with_lock_lost(tmp_path, ltg_model, zk_hosts):
    with TcpProxy(ZK_PORT) as proxy:
        lock = {"type": "zookeeper", "hosts": f"127.0.0.1:{proxy.port}",
                "root": f"/addlink-fault-{secrets.token_hex(3)}"}
        cfg, _ = sqlite_setup(tmp_path, ltg_model, lock=lock, target=100000)
        res, seconds = partition_run(cfg, proxy)
        assert res.code == ExitCode.LOCK_LOST, res.stdout[-3000:]
        assert seconds < BOUND
        assert one_line_error(res).startswith("ZooKeeper: the lock's session was lost")
        time.sleep(SHORT["lock"]["timeout"] + 2)  # the old session's lock, until it expires
        again = run(cfg, "refresh", "--target", "30")
        assert again.code == 0, again.stdout[-3000:]
    rep = invariants(cfg, jsonl_events(tmp_path / "events.jsonl"))
    assert rep.ok, rep.violations


def test_mediawiki_partition_ends_with_unavailable(tmp_path, ltg_model, mediawiki):
    with TcpProxy(MW_PORT) as proxy:
        source = {"type": "api", "api_url": f"http://127.0.0.1:{proxy.port}/api.php"}
        cfg, _ = sqlite_setup(tmp_path, ltg_model, source=source, target=100000)
        res, seconds = partition_run(cfg, proxy)
        assert res.code == ExitCode.UNAVAILABLE, res.stdout[-3000:]
        assert seconds < BOUND
        assert one_line_error(res).startswith("MediaWiki unavailable: ")
    rep = invariants(cfg, jsonl_events(tmp_path / "events.jsonl"), dump=False)
    assert rep.ok, rep.violations  # what was committed before the cut was published


# ---------------------------------------------------------------------------- EventGate


def queued(tmp_path: Path, pages: list[tuple[int, str]]) -> SqliteStore:
    store = migrated_store(SqliteStore, str(tmp_path / "s.sqlite"), "ltgwiki")
    store.queue_events([(p, getattr(EVENTS, kind)(p, f"Page {p}")) for p, kind in pages])
    return store


def publisher(store, eg: EventGate, **kw) -> Publisher:
    return Publisher(store, EventGateSink(eg.url, timeout=kw.pop("timeout", 2.0)), Metrics(),
                     sleep=lambda s: None, **{"batch_size": 10, "max_attempts": 3, **kw})


def test_207_never_lets_a_later_event_of_a_page_overtake(tmp_path):
    store = queued(tmp_path, [(1, "set"), (2, "set"), (1, "clear"), (3, "set"), (1, "set")])
    with EventGate() as eg:
        eg.error_pages = {1}  # page 1's events fail in a 207 while the others are accepted
        stats = publisher(store, eg).drain()
        assert [s for s, _ in eg.requests] == [207, 207, 207]
        assert [e["page"]["page_id"] for e in eg.accepted] == [2, 3]
        assert stats.pending == 3 and store.pending_events(10)[0].event["page"]["page_id"] == 1
        eg.error_pages = set()
        stats = publisher(store, eg).drain()
    got = [(e["page"]["page_id"], next(iter(e["weighted_tags"]))) for e in eg.accepted]
    assert got == [(2, "set"), (3, "set"), (1, "set"), (1, "clear"), (1, "set")]
    assert stats.pending == 0 and {p: t for p, t, _ in store.iter_acked()} == \
        {1: True, 2: True, 3: True}


def test_429_503_and_a_timeout_after_accepting_are_retried(tmp_path):
    store = queued(tmp_path, [(1, "set"), (2, "set"), (1, "clear")])
    with EventGate() as eg:
        eg.fail_next(429)
        eg.fail_next(503)
        eg.stall_next(1.5)  # accepted, answered after the client's 0.5 s timeout
        stats = publisher(store, eg, timeout=0.5, max_attempts=5).drain()
        ids = [e["meta"]["id"] for e in eg.accepted]
    assert stats.pending == 0 and stats.failed == 0
    assert len(ids) == 5 and len(set(ids)) == 3  # the stalled request's 2 events, twice
    rep = check(store, eg.accepted, drained=False)  # events without rows: order only
    assert rep.ok and rep.duplicates == 2 and store.outbox_counts()["pending"] == 0


def test_rejected_events_are_dead_lettered_counted_and_repaired_by_drift(tmp_path, ltg_model):
    with EventGate() as eg:
        cfg, _ = sqlite_setup(tmp_path, ltg_model, events={"type": "eventgate", "url": eg.url},
                              target=10)
        eg.fail_next(400, 100)  # EventGate rejects everything as invalid
        res = run(cfg, "refresh")
        assert res.code == ExitCode.EVENTS_UNDELIVERED, res.stdout[-3000:]
        done = res.finished()
        assert done["events_failed"] >= 1 and done["pool_after"] >= 1
        assert one_line_error(res) == (f"EventGate: 0 events pending after the retries, "
                                       f"{done['events_failed']} dead-lettered by this run "
                                       "(status shows them; drift repairs)")
        status = run(cfg, "status", "--format", "json")
        (wiki,) = json.loads(status.stdout[status.stdout.index("{"):])["wikis"]
        assert wiki["outbox"]["failed"] == done["events_failed"]
        assert not invariants(cfg, list(eg.accepted)).ok  # rows search was never told about
        eg.forced.clear()
        fixed = run(cfg, "drift", "--wiki", "ltgwiki")
        assert fixed.code == 0, fixed.stdout[-3000:]
        assert fixed.finished()["outcomes"]["dead_letters"] >= 1
        rep = invariants(cfg, list(eg.accepted))
        assert rep.ok, rep.violations


WRITTEN = ("growthexperiments_link_recommendations", "addlink_outbox", "addlink_runs",
           "addlink_pool")


def rows_written(db: Path) -> dict[str, int]:
    """Rows in each table a run writes: tasks, events, runs, the pool."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in WRITTEN}
    finally:
        conn.close()


def untouched(db: Path) -> bool:
    """The migrated (empty) store of a run refused before any write: no row, event or run."""
    return not any(rows_written(db).values())


def test_eventgate_outage_longer_than_the_retries(tmp_path, ltg_model):
    with EventGate() as eg:
        url = eg.url
    cfg, _ = sqlite_setup(tmp_path, ltg_model, events={"type": "eventgate", "url": url},
                          target=5)
    down = run(cfg, "refresh")
    assert down.code == ExitCode.UNAVAILABLE  # the preflight sees it: nothing written
    assert one_line_error(down).startswith("EventGate unavailable: ")
    assert untouched(tmp_path / "addlink.sqlite")
    host, port = url.rsplit(":", 1)
    with EventGate(port=int(port)) as eg:
        eg.fail_next(503, 1000)  # up for the preflight, then failing for the whole run
        res = run(cfg, "refresh")
        assert res.code == ExitCode.EVENTS_UNDELIVERED, res.stdout[-3000:]
        assert res.finished()["events_pending"] >= 1
        assert one_line_error(res).startswith("EventGate: ")
        assert "events pending after the retries (HTTP 503" in one_line_error(res)
        eg.forced.clear()
        again = run(cfg, "refresh")
        assert again.code == 0
        rep = invariants(cfg, list(eg.accepted))
        assert rep.ok, rep.violations


# ---------------------------------------------------------------------------- preflight


def test_preflight_refuses_a_damaged_or_forged_model_before_any_write(tmp_path, ltg_model):
    model = tmp_path / "model"
    shutil.copytree(ltg_model, model)
    cfg, _ = sqlite_setup(tmp_path, model, target=5)
    manifest = json.loads((model / "manifest.json").read_text())
    forged = dict(manifest, checksums={**manifest["checksums"], "anchors": "0" * 64})
    (model / "manifest.json").write_text(json.dumps(forged))
    res = run(cfg, "refresh")
    assert res.code == ExitCode.MODEL_INVALID
    assert "checksums.anchors does not match" in one_line_error(res)
    assert untouched(tmp_path / "addlink.sqlite")  # nothing written, not even a run row
    (model / "manifest.json").write_text(json.dumps(manifest))
    with open(model / "vectors.npy", "r+b") as f:
        f.seek(200)
        f.write(b"\x01\x02\x03")
    res = run(cfg, "refresh", "--limit", "20")
    assert res.code == ExitCode.MODEL_INVALID
    assert "vectors.npy: sha256 differs" in one_line_error(res)
    assert untouched(tmp_path / "addlink.sqlite")


def test_a_model_of_another_feature_set_is_refused_before_any_task(tmp_path, ltg_model):
    """A model trained by a version with other features, its manifest consistent (as such
    a model's is): the workers refuse it as they open it, before any page is recommended."""
    model = model_of_other_features(ltg_model, tmp_path / "model")
    cfg, _ = sqlite_setup(tmp_path, model, target=5)
    res = run(cfg, "refresh")
    assert res.code == ExitCode.MODEL_INVALID, res.stderr[-2000:]
    assert "takes 3 features" in one_line_error(res) and "retrain it" in one_line_error(res)
    # the run is recorded as refused (it had started: the workers open the model while the
    # first pages are screened, so a page judged without the model may be counted), and
    # nothing else was written: no task, pool entry or event
    db = tmp_path / "addlink.sqlite"
    assert rows_written(db) == {t: int(t == "addlink_runs") for t in WRITTEN}
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT ar_status FROM addlink_runs").fetchall() == \
            [("model_invalid",)]


def test_preflight_names_an_unreachable_store(tmp_path, ltg_model):
    cfg = write_config(tmp_path / "config.yaml", ltg_model, LTG_DUMP,
                       store={"type": "mysql", "url": "mysql://root@127.0.0.1:1/addlink"},
                       events={"type": "jsonlines", "path": str(tmp_path / "e.jsonl")},
                       lock={"type": "file", "dir": str(tmp_path / "locks")})
    res = run(cfg, "refresh")
    assert res.code == ExitCode.UNAVAILABLE
    assert one_line_error(res).startswith("MySQL unavailable: mysql://root@127.0.0.1:1/")
    assert not (tmp_path / "locks").exists()  # before the lock


# ---------------------------------------------------------------------------- bad input


def model_cli(*args: str):
    import subprocess
    import sys

    from tests.faults import REPO

    return subprocess.run([sys.executable, "-m", "model", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["broken_xml", "truncated_bz2"])
def test_model_train_on_a_broken_dump(tmp_path, kind):
    import bz2

    raw = bz2.decompress(Path(LTG_DUMP).read_bytes())
    if kind == "broken_xml":
        dump = tmp_path / "d.xml"
        dump.write_bytes(raw[:300_000])
    else:
        dump = tmp_path / "d.xml.bz2"
        dump.write_bytes(Path(LTG_DUMP).read_bytes()[:200_000])
    r = model_cli("train", "--wiki", "ltgwiki", "--dump", str(dump), "--out",
                  str(tmp_path / "m"))
    assert r.returncode == ExitCode.USAGE and not has_traceback(r.stderr)
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error: ")]
    assert line.startswith(f"error: {dump}: not a readable XML dump")


def test_model_load_with_a_wrong_password_or_a_missing_database(ltg_model, mysql_url):
    base = mysql_url.rsplit("/", 1)[0]
    wrong = base.replace("root@", "root:not-the-password@") + "/addlink_x"
    r = model_cli("load", "--from", str(ltg_model), "--to", wrong)
    assert r.returncode == ExitCode.USAGE and not has_traceback(r.stderr)
    assert "Access denied" in r.stderr and "not-the-password" not in r.stderr
    r = model_cli("load", "--from", str(ltg_model), "--to", f"{base}/addlink_no_such_db")
    assert r.returncode == ExitCode.USAGE and "Unknown database 'addlink_no_such_db'" in r.stderr


def test_backfill_of_a_page_that_does_not_exist(tmp_path, ltg_model):
    cfg, _ = sqlite_setup(tmp_path, ltg_model)
    res = run(cfg, "backfill", "--wiki", "ltgwiki", "--page", "No such page at all 9876")
    assert res.code == ExitCode.USAGE
    assert one_line_error(res) == \
        "backfill: no such article on ltgwiki: 'No such page at all 9876'"


# ---------------------------------------------------------------------------- a slow page


def _dump_with_a_slow_page(tmp: Path, title: str, repeat: int) -> Path:
    """The ltgwiki dump plus one article whose unclosed templates take mwparserfromhell tens
    of seconds (hostile wikitext a real wiki can hold), as an uncompressed XML dump."""
    import bz2
    from xml.sax.saxutils import escape

    text = "Kab ir vīns suokums. " + "{{a|" * repeat
    page = (f"  <page>\n    <title>{escape(title)}</title>\n    <ns>0</ns>\n"
            "    <id>990001</id>\n    <revision>\n      <id>990002</id>\n"
            "      <timestamp>2017-01-01T00:00:00Z</timestamp>\n"
            "      <contributor><username>T</username><id>1</id></contributor>\n"
            "      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
            f'      <text xml:space="preserve">{escape(text)}</text>\n'
            "    </revision>\n  </page>\n")
    with bz2.open(LTG_DUMP, "rt", encoding="utf-8") as f:
        xml = f.read()
    out = tmp / "ltgwiki-slow.xml"
    out.write_text(xml.replace("</mediawiki>", page + "</mediawiki>"), encoding="utf-8")
    return out


def _group_alive(pgid: int, within: float) -> list[int]:
    """Processes still in a process group after ``within`` seconds (none: [])."""
    deadline = time.monotonic() + within
    while True:
        alive = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                 and _pgid(int(p.name)) == pgid]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _pgid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[2]) if fields[0] != "Z" else None  # a zombie is gone already


def test_sigterm_abandons_a_page_still_in_flight_after_the_grace(tmp_path, ltg_model):
    """A worker busy on a slow page when SIGTERM comes: the page gets STOP_GRACE seconds,
    is then left uncommitted for the next run, and the run still exits 5 within the bound,
    with the page evaluated before it committed and published and no process left over."""
    from runner.run import SIGNAL_EXIT_BOUND, STOP_GRACE

    slow, quick = "Lāns puslopa", "Latgola"
    dump = _dump_with_a_slow_page(tmp_path, slow, 9000)
    cfg, _ = sqlite_setup(tmp_path, ltg_model, workers=1,
                          source={"type": "dump", "path": str(dump), "complete": True})
    r = Runner(cfg, "backfill", "--wiki", "ltgwiki", "--force", "--page", quick,
               "--page", slow)
    # One worker: the slow page is handed to it as soon as the quick one's result is in.
    assert r.wait_for("evaluated", 180, quick), r.stdout()[-2000:]
    time.sleep(0.5)
    sent = r.signal(signal.SIGTERM)
    r.proc.wait(60)
    left = _group_alive(r.proc.pid, 5.0)  # workers and the fork server end with the run
    res = r.wait(1)
    assert not left, f"processes left in the run's group: {left}"
    after = res.seconds - (sent - r.t0)
    assert res.code == ExitCode.SIGNAL, (res.code, res.stderr[-2000:])
    assert STOP_GRACE - 0.5 < after < SIGNAL_EXIT_BOUND, after  # waited the grace, no more
    assert not has_traceback(res.stdout + res.stderr)
    gone = [x for x in res.lines() if x.get("message", "").startswith("stop grace ran out")]
    assert gone and gone[0]["in_flight"] == 1, res.stdout[-2000:]
    assert not any(x.get("title") == slow for x in res.lines()
                   if x.get("message") == "evaluated")
    done = res.finished()
    assert done["status"] == "interrupted" and done["stop_reason"] == "SIGTERM"
    rep = invariants(cfg, jsonl_events(tmp_path / "events.jsonl"))
    assert rep.ok, rep.violations
    store = open_cfg_store(cfg)
    try:
        rows = data_rows(store)
    finally:
        store.close()
    assert 990001 not in rows  # the abandoned page: nothing of it was written
    assert done["outcomes"] and sum(done["outcomes"].values()) == 1  # the quick one only

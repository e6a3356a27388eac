"""Scale-out: ``--shard i/N`` and the pool target shared through ZooKeeper (issue 4, item 3).

- The ZooKeeper target (runner/coordination.py) against the real ZooKeeper: claims stop at
  the target, a released claim goes to a waiting claimer, racing sessions never overshoot,
  and a SIGKILLed process's claim vanishes with its session.
- Every candidate strategy honours the shard (dump random, Action API search), and the job
  filters by page id where a source does not.
- Real processes: 3 ``python -m runner refresh --shard i/3`` at once against the local
  MediaWiki, one MariaDB store and ZooKeeper fill the pool to exactly the target, each shard
  storing only its own pages; with one shard SIGKILLed mid-run the others still do.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from kazoo.client import KazooClient

from runner.app import run_wiki
from runner.config import parse_config
from runner.coordination import ZooKeeperPoolTarget, claims_path
from runner.job import RunOptions
from runner.metrics import Metrics
from runner.sources.api import ApiSource
from runner.sources.dump import DumpSource
from runner.store import open_store
from tests.conftest import REPO, USER_AGENT
from tests.runner_support import LTG_DUMP, drop_database, migrated

TARGET = 12
SHARDS = 3


# ---------------------------------------------------------------- the ZooKeeper target

@pytest.fixture
def zk(zk_hosts):
    clients: list[KazooClient] = []

    def session() -> KazooClient:
        c = KazooClient(hosts=zk_hosts, timeout=4)
        c.start(timeout=10)
        clients.append(c)
        return c

    yield session
    for c in clients:
        c.stop()
        c.close()


class Pool:
    """The store's pool size: the rows committed so far (thread-safe)."""

    def __init__(self, size: int = 0) -> None:
        self.size, self.lock = size, threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            return self.size

    def commit(self) -> None:
        with self.lock:
            self.size += 1


def test_claims_stop_at_the_target_and_release_gives_back(zk):
    path = claims_path(f"/addlink-test-{time.time_ns()}", "ltgwiki")
    pool = Pool(1)
    t = ZooKeeperPoolTarget(zk(), path, 3, pool)
    assert t.remaining() == 2
    a = t.claim()
    assert a is not None and t.in_flight() == [a.name]
    pool.commit()
    t.confirm(a)  # committed first, then the node goes
    assert t.in_flight() == []
    b = t.claim()
    assert b is not None
    t.release(b)  # the write failed: the slot is free again
    b = t.claim()
    pool.commit()
    t.confirm(b)
    assert t.claim() is None  # 3 rows: target reached, refused at once
    assert t.in_flight() == [] and t.remaining() == 0
    t.close()


def test_a_claim_waits_for_claims_ahead_of_it(zk):
    """The last slot, wanted by two shards: the second waits for the first's outcome."""
    path = claims_path(f"/addlink-test-{time.time_ns()}", "ltgwiki")
    pool = Pool(0)
    first = ZooKeeperPoolTarget(zk(), path, 1, pool)
    second = ZooKeeperPoolTarget(zk(), path, 1, pool, wait=10)
    slot = first.claim()
    assert slot is not None
    assert second.remaining() == 1  # in flight, not yet decided: keep evaluating

    def fail_write():
        time.sleep(0.3)
        first.release(slot)

    threading.Thread(target=fail_write).start()
    t0 = time.monotonic()
    got = second.claim()  # granted once the first one gives its slot back
    assert got is not None and 0.2 < time.monotonic() - t0 < 5

    def commit():
        time.sleep(0.3)
        pool.commit()
        second.confirm(got)

    threading.Thread(target=commit).start()
    t0 = time.monotonic()
    assert first.claim() is None  # refused once the slot ahead is committed
    assert 0.2 < time.monotonic() - t0 < 5
    assert pool() == 1 and first.in_flight() == []
    first.close()
    second.close()


def test_racing_sessions_never_overshoot(zk):
    path = claims_path(f"/addlink-test-{time.time_ns()}", "ltgwiki")
    pool = Pool(0)
    granted: list[str] = []
    targets = [ZooKeeperPoolTarget(zk(), path, 10, pool) for _ in range(4)]

    def shard(t: ZooKeeperPoolTarget) -> None:
        for _ in range(10):
            slot = t.claim()
            if slot is None:
                continue
            granted.append(slot.name)
            time.sleep(0.002)  # the row's transaction
            pool.commit()
            t.confirm(slot)

    threads = [threading.Thread(target=shard, args=(t,)) for t in targets]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert pool() == 10 and len(granted) == 10
    assert all(t.remaining() == 0 for t in targets)
    for t in targets:
        t.close()


CLAIMER = """
import sys, time
from runner.coordination import ZooKeeperPoolTarget
t = ZooKeeperPoolTarget.connect(sys.argv[1], sys.argv[2], 1, lambda: 0, timeout=4)
print(t.claim().name, flush=True)
time.sleep(600)
"""


def test_a_killed_process_leaves_its_claim_to_the_others(zk, zk_hosts):
    path = claims_path(f"/addlink-test-{time.time_ns()}", "ltgwiki")
    proc = subprocess.Popen([sys.executable, "-c", CLAIMER, zk_hosts, path], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        name = proc.stdout.readline().strip()
        assert name.startswith("claim-")
        t = ZooKeeperPoolTarget(zk(), path, 1, lambda: 0, wait=20)
        assert t.in_flight() == [name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t0 = time.monotonic()
        slot = t.claim()  # waits for the dead session to expire (4 s), then granted
        assert slot is not None and 2 < time.monotonic() - t0 < 15
        assert t.in_flight() == [slot.name]
        t.close()
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- candidates per shard

def test_dump_random_candidates_are_split_by_page_id(tmp_path):
    src = DumpSource(LTG_DUMP, complete=True, cache_dir=tmp_path, seed=3)
    everything = {c.page_id for b in src.candidates("random", batch_size=200) for c in b}
    parts = [{c.page_id for b in src.candidates("random", batch_size=200, shard=(i, 3))
              for c in b} for i in range(3)]
    src.close()
    assert all(p % 3 == i for i, part in enumerate(parts) for p in part)
    assert set().union(*parts) == everything and sum(map(len, parts)) == len(everything)


def test_api_search_candidates_are_split_by_page_id(mediawiki):
    src = ApiSource(mediawiki.api_url, user_agent=USER_AGENT, fallback_query="un")
    try:
        everything = [c for b in src.candidates("search", batch_size=100) for c in b]
        part = [c for b in src.candidates("search", batch_size=100, shard=(1, 3)) for c in b]
    finally:
        src.close()
    assert everything and part
    assert all(c.page_id % 3 == 1 for c in part)
    assert {c.page_id for c in part} == {c.page_id for c in everything if c.page_id % 3 == 1}


class Unsharded:
    """A source that ignores ``shard`` (as one that cannot filter would)."""

    def __init__(self, inner: DumpSource) -> None:
        self.inner = inner

    def candidates(self, strategy, *, shard=None, **kw):
        return self.inner.candidates(strategy, **kw)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_the_job_keeps_to_its_shard_when_the_source_does_not(tmp_path, ltg_model,
                                                             monkeypatch):
    import runner.app

    real = runner.app.open_source
    monkeypatch.setattr(runner.app, "open_source",
                        lambda w, ua: Unsharded(real(w, ua)))
    cfg = parse_config({
        "runner": {"workers": 1},
        "store": {"type": "sqlite", "path": str(tmp_path / "a.sqlite")},
        "events": {"type": "jsonlines", "path": str(tmp_path / "events.jsonl")},
        "lock": {"type": "file", "dir": str(tmp_path / "locks")},
        "wikis": {"ltgwiki": {
            "language": "ltg", "model": str(ltg_model), "pool_target": 1000,
            "source": {"type": "dump", "path": LTG_DUMP, "complete": True,
                       "cache_dir": str(tmp_path / "cache")},
            "candidates": {"strategy": "allpages", "batch_size": 100},
            "criteria": {"minimum_link_score": 0.4, "minimum_links_per_task": 1}}}},
        env={})
    migrated(cfg)
    res = run_wiki(cfg, "ltgwiki", RunOptions(shard=(1, 3), limit=300), Metrics())
    assert res.status == "ok" and res.pool_after > 0
    store = open_store(cfg.store, "ltgwiki")
    try:
        with store.transaction() as cur:
            cur.execute("SELECT gelr_page FROM growthexperiments_link_recommendations")
            pages = [int(p) for (p,) in cur.fetchall()]
    finally:
        store.close()
    assert pages and all(p % 3 == 1 for p in pages)  # rows with data and NULL rows


# ---------------------------------------------------------------- shards as processes

@pytest.fixture
def shard_setup(tmp_path, mysql_url, zk_hosts, mediawiki, ltg_model):
    """A config for shard processes: the local MediaWiki, a MariaDB database of its own,
    ZooKeeper (lock and shared target, 4 s sessions), a JSON-lines file per shard."""
    db = f"{mysql_url}_{secrets.token_hex(3)}"
    root = f"/addlink-test-{time.time_ns()}"
    doc = {"runner": {"workers": 1, "user_agent": USER_AGENT},
           "store": {"type": "mysql", "url": db, "create_database": True},
           "events": {"type": "jsonlines", "path": str(tmp_path / "events-${SHARD}.jsonl")},
           "lock": {"type": "zookeeper", "hosts": zk_hosts, "root": root, "timeout": 4},
           "wikis": {"ltgwiki": {
               "language": "ltg", "domain": "ltg.wikipedia.org", "model": str(ltg_model),
               "pool_target": TARGET,
               "source": {"type": "api", "api_url": mediawiki.api_url},
               "candidates": {"strategy": "allpages", "batch_size": 50},
               # production's criteria: ~40 tasks over the wiki, so each shard has plenty
               # but the pool of 12 does not fill before a shard can be killed mid-run
               "criteria": {"minimum_link_score": 0.6, "minimum_links_per_task": 2,
                            "disambiguation_templates": ["Zeimeibu škiršona"]}}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    migrated(parse_config(doc, env={"SHARD": "0"}))  # a bad config fails here, not in 3
    yield path, db, root
    drop_database(db)
    zk = KazooClient(hosts=zk_hosts)
    zk.start(timeout=10)
    zk.delete(root, recursive=True)
    zk.stop()
    zk.close()


def start_shards(config: Path, tmp_path: Path) -> list[subprocess.Popen]:
    procs = []
    for i in range(SHARDS):
        with open(tmp_path / f"shard-{i}.log", "w") as out:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "runner", "--config", str(config), "refresh",
                 "--shard", f"{i}/{SHARDS}"],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "SHARD": str(i)}))
    return procs


def shard_log(tmp_path: Path, i: int) -> list[dict]:
    out = []
    for line in (tmp_path / f"shard-{i}.log").read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def stored(db: str) -> list[tuple[int, int]]:
    """(page, revision) of every row with data; nothing while the tables do not exist."""
    import pymysql

    from runner.store.mysql import parse_mysql_url

    kw = parse_mysql_url(db)
    try:
        conn = pymysql.connect(host=kw["host"], port=kw["port"], user=kw["user"],
                               database=kw["database"], autocommit=True)
    except pymysql.err.OperationalError:  # the first shard has not created it yet
        return []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT gelr_page, gelr_revision FROM "
                        "growthexperiments_link_recommendations WHERE gelr_data IS NOT NULL")
            return [(int(p), int(r)) for p, r in cur.fetchall()]
    except pymysql.err.ProgrammingError:  # no table yet
        return []
    finally:
        conn.close()


def successes(records: list[dict]) -> list[int]:
    return [r["page_id"] for r in records
            if r.get("message") == "evaluated" and r.get("outcome") == "success"]


def test_three_shard_processes_fill_the_pool_to_exactly_the_target(shard_setup, tmp_path,
                                                                 zk):
    config, db, root = shard_setup
    procs = start_shards(config, tmp_path)
    codes = [p.wait(timeout=120) for p in procs]
    logs = [shard_log(tmp_path, i) for i in range(SHARDS)]
    assert codes == [0] * SHARDS, [r for log in logs for r in log if r["level"] == "ERROR"]
    rows = stored(db)
    pages = [p for p, _ in rows]
    assert len(rows) == TARGET and len(set(pages)) == TARGET  # exact, no page twice
    mine = [successes(log) for log in logs]
    for i, part in enumerate(mine):
        assert all(p % SHARDS == i for p in part), f"shard {i} stored another's page"
    assert sorted(sum(mine, [])) == sorted(pages)  # every row from exactly one shard
    assert sum(1 for part in mine if part) >= 2  # the shards really shared the work
    finished = [next(r for r in log if r.get("message") == "run finished") for log in logs]
    assert all(f["stop_reason"] == "target_reached" and f["pool_after"] == TARGET
               for f in finished)
    # The outbox is the wiki's: whichever shard publishes first sends every shard's
    # events. Each stored page is announced (at least once: two shards publishing at the
    # same moment may both send an event, as the outbox promises at-least-once delivery).
    sent = [json.loads(x) for i in range(SHARDS) if (tmp_path / f"events-{i}.jsonl").exists()
            for x in (tmp_path / f"events-{i}.jsonl").read_text().splitlines()]
    assert {e["page"]["page_id"] for e in sent} == set(pages)
    assert all(e["weighted_tags"]["set"] for e in sent)
    client = zk()
    assert client.get_children(claims_path(root, "ltgwiki")) == []  # no claim left behind


def test_a_killed_shard_leaves_its_share_to_the_others(shard_setup, tmp_path, zk):
    config, db, root = shard_setup
    procs = start_shards(config, tmp_path)
    victim = None
    try:
        deadline = time.monotonic() + 90
        # The victim is the first shard to store a page, killed at once: a fixed victim
        # whose first page came last was killed with the pool already full (seen in CI).
        while victim is None and time.monotonic() < deadline:
            rows = stored(db)
            if rows:
                victim = rows[0][0] % SHARDS
            else:
                time.sleep(0.02)
        assert victim is not None, "no shard stored a page in 90 s"
        procs[victim].send_signal(signal.SIGKILL)
        at_kill = len(stored(db))
        codes = [p.wait(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert codes[victim] == -signal.SIGKILL
    assert 0 < at_kill < TARGET, "the pool was full before the kill: nothing was tested"
    others = [i for i in range(SHARDS) if i != victim]
    assert [codes[i] for i in others] == [0] * len(others)
    rows = stored(db)
    pages = [p for p, _ in rows]
    assert len(rows) == TARGET and len(set(pages)) == TARGET
    logs = [shard_log(tmp_path, i) for i in range(SHARDS)]
    survivors = [successes(logs[i]) for i in others]
    for i, part in zip(others, survivors, strict=True):
        assert all(p % SHARDS == i for p in part)
    # the victim's rows are those of its own pages (whether or not it logged them)
    assert {p for p in pages if p % SHARDS == victim} == set(pages) - set(sum(survivors, []))
    assert sum(map(len, survivors)) == TARGET - sum(1 for p in pages if p % SHARDS == victim)
    for log in (logs[i] for i in others):
        fin = next(r for r in log if r.get("message") == "run finished")
        assert fin["stop_reason"] == "target_reached" and fin["pool_after"] == TARGET

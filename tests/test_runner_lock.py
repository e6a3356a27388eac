"""One run per wiki: the file lock and the ZooKeeper lock, including a lost session."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from kazoo.client import KazooClient

from runner.config import LockSection
from runner.lock import FileLock, LockError, LockHeld, ZooKeeperLock, open_lock


def test_file_lock_is_exclusive_per_wiki(tmp_path):
    a = FileLock(str(tmp_path), "enwiki")
    a.acquire()
    with pytest.raises(LockHeld, match="enwiki: another run holds"):
        FileLock(str(tmp_path), "enwiki").acquire()
    other = FileLock(str(tmp_path), "ltgwiki")
    other.acquire()  # a different wiki is independent
    other.release()
    a.release()
    b = FileLock(str(tmp_path), "enwiki")
    b.acquire()
    b.release()


def test_file_lock_held_by_another_process(tmp_path):
    code = ("import sys,time; from runner.lock import FileLock; "
            f"l=FileLock({str(tmp_path)!r}, 'enwiki'); l.acquire(); print('ok', flush=True); "
            "time.sleep(30)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ok"
        with pytest.raises(LockHeld, match=f":{p.pid}"):
            FileLock(str(tmp_path), "enwiki").acquire()
    finally:
        p.kill()
        p.wait()
    lock = FileLock(str(tmp_path), "enwiki")  # the kernel released it with the process
    lock.acquire()
    lock.release()


def test_open_lock_by_config_and_shards(tmp_path):
    cfg = LockSection(type="file", dir=str(tmp_path))
    whole = open_lock(cfg, "enwiki")
    assert isinstance(whole, FileLock) and whole.path.name == "enwiki.lock"
    shards = [open_lock(cfg, "enwiki", (i, 3)) for i in range(3)]
    for lock in shards:  # the shards of one wiki run side by side
        lock.acquire()
    with pytest.raises(LockHeld):
        open_lock(cfg, "enwiki", (1, 3)).acquire()  # but each shard once
    for lock in shards:
        lock.release()
    zk = open_lock(LockSection(type="zookeeper", root="/a"), "enwiki", (2, 3))
    assert zk.path == "/a/enwiki/shard-2-of-3/lock"


def test_zookeeper_lock_is_exclusive(zk_hosts):
    root = f"/addlink-test-{time.time_ns()}"
    a = ZooKeeperLock(zk_hosts, "ltgwiki", root)
    a.acquire()
    b = ZooKeeperLock(zk_hosts, "ltgwiki", root)
    t0 = time.monotonic()
    with pytest.raises(LockHeld, match=f"ltgwiki: another run holds {root}/ltgwiki/lock"):
        b.acquire()
    assert time.monotonic() - t0 < 5  # at once, no waiting
    c = ZooKeeperLock(zk_hosts, "enwiki", root)
    c.acquire()
    c.release()
    a.release()
    b = ZooKeeperLock(zk_hosts, "ltgwiki", root)
    b.acquire()
    assert not b.lost
    b.release()


def test_zookeeper_session_expiry_marks_lock_lost(zk_hosts):
    root = f"/addlink-test-{time.time_ns()}"
    lock = ZooKeeperLock(zk_hosts, "ltgwiki", root, timeout=4)
    lock.acquire()
    assert not lock.lost
    # Expire the session from outside: a second client joins it and closes it.
    sid, pw = lock.client.client_id
    intruder = KazooClient(hosts=zk_hosts, client_id=(sid, pw))
    intruder.start()
    intruder.stop()
    intruder.close()
    deadline = time.monotonic() + 20
    while not lock.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.lost
    # the lock node went with the session: another run can take the wiki now
    other = ZooKeeperLock(zk_hosts, "ltgwiki", root)
    other.acquire()
    other.release()
    lock.release()


def test_zookeeper_unreachable_is_a_clear_error():
    lock = ZooKeeperLock("127.0.0.1:1", "ltgwiki", timeout=1)
    with pytest.raises(LockError, match="cannot connect to ZooKeeper"):
        lock.acquire()

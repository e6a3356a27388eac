"""One run per wiki at a time: a local file lock (embedded default) or a ZooKeeper lock.

``acquire()`` never waits: a second run for the same wiki gets ``LockHeld`` at once.
``lost`` turns true when a ZooKeeper session is suspended or expires; the job checks it
between pages, stops after the current one, commits and exits with code 4.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Protocol

from runner.config import LockSection

log = logging.getLogger("runner.lock")


class LockHeld(RuntimeError):
    """Another run holds the wiki's lock."""


class LockError(RuntimeError):
    """The lock service could not be reached."""


class WikiLock(Protocol):
    @property
    def lost(self) -> bool: ...

    def acquire(self) -> None: ...

    def release(self) -> None: ...


def _identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class FileLock:
    """``fcntl.flock`` on ``<dir>/<wiki>.lock``; the kernel drops it if the process dies."""

    def __init__(self, directory: str, wiki: str) -> None:
        self.path = Path(directory) / f"{wiki}.lock"
        self.wiki = wiki
        self._fd: int | None = None

    @property
    def lost(self) -> bool:
        return False

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise LockError(f"lock.dir: cannot open {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise LockHeld(f"{self.wiki}: another run holds {self.path} ({holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, _identity().encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class ZooKeeperLock:
    """kazoo's Lock recipe on ``<root>/<wiki>/lock``; session trouble means the lock is lost."""

    def __init__(self, hosts: str, wiki: str, root: str = "/addlink",
                 timeout: float = 10.0) -> None:
        from kazoo.client import KazooClient

        self.wiki = wiki
        self.path = f"{root.rstrip('/')}/{wiki}/lock"
        self.timeout = timeout
        self.client = KazooClient(hosts=hosts, timeout=timeout)
        self._lock = None
        self._lost = threading.Event()
        self._held = False

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def _listener(self, state: str) -> None:
        # SUSPENDED: the connection dropped, the session may expire any moment (another run
        # may then take the lock); LOST: it did. Either way this run no longer owns the wiki.
        if self._held and state in ("SUSPENDED", "LOST"):
            self._lost.set()
            log.error("ZooKeeper session trouble: lock considered lost",
                      extra={"wiki": self.wiki, "state": state})

    def acquire(self) -> None:
        from kazoo.handlers.threading import KazooTimeoutError

        try:
            self.client.start(timeout=self.timeout)
        except KazooTimeoutError:
            self.client.close()
            raise LockError(f"lock.hosts: cannot connect to ZooKeeper at "
                            f"{self.client.hosts}") from None
        self.client.add_listener(self._listener)
        self._lock = self.client.Lock(self.path, identifier=_identity())
        if not self._lock.acquire(blocking=False):
            holders = ", ".join(self._lock.contenders()) or "unknown"
            self._stop()
            raise LockHeld(f"{self.wiki}: another run holds {self.path} ({holders})")
        self._held = True

    def release(self) -> None:
        if self._lock is not None and self._held and not self.lost:
            try:
                self._lock.release()
            except Exception as e:  # noqa: BLE001 - the session may be gone; it frees the lock
                log.warning("lock release failed: %s", e, extra={"wiki": self.wiki})
        self._held = False
        self._stop()

    def _stop(self) -> None:
        try:
            self.client.stop()
        finally:
            self.client.close()


def open_lock(cfg: LockSection, wiki: str, shard: tuple[int, int] | None = None) -> WikiLock:
    """The lock of one wiki, or of one shard of it (``--shard i/N``: the shards of a backfill
    run side by side, each shard one at a time)."""
    sharded = shard is not None and shard[1] > 1
    name = f"{wiki}/shard-{shard[0]}-of-{shard[1]}" if sharded else wiki
    if cfg.type == "zookeeper":
        return ZooKeeperLock(cfg.hosts, name, cfg.root, cfg.timeout)
    return FileLock(cfg.dir, name.replace("/", "."))

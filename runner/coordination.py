"""How many more tasks a run may add: the pool target, local or shared between shards.

The job ``claim()``s a slot right before it stores a success, then ``confirm()``s it once the
row is committed, or ``release()``s it if the write failed. ``remaining()`` tells the job
when to stop taking pages.

``LocalPoolTarget`` (the embedded default, file lock) counts in one process from the pool
size it saw at start. ``ZooKeeperPoolTarget`` (chosen when ``lock.type`` is ``zookeeper``)
shares one global budget between every process filling a wiki, e.g. the ``--shard i/N``
pods of a backfill, so that together they stop at the target, not N x target.

Shared pool target recipe (ZooKeeper + the store)
-------------------------------------------------
The store (a MySQL database shared by all shards) is the truth about the pool size; ZooKeeper
only holds the slots *in flight*: one EPHEMERAL_SEQUENTIAL znode per claim under
``<lock.root>/<wiki>/claims/``. There is no counter to keep in step with the store.

``claim()``:
  1. create ``claims/claim-<seq>`` (ephemeral, sequential);
  2. list the children, THEN read the store's pool size ``P`` (in that order);
  3. ``ahead`` = the claims with a lower sequence number than mine;
     ``P + ahead < target``: granted. ``P >= target``: refused (node deleted).
     Otherwise the claims ahead decide (each is one row being committed, or a dead
     process's until its session expires): wait for the children to change, go to 2;
     after ``wait`` seconds refuse (conservative).
``confirm()``: delete my node AFTER the row is committed. ``release()``: delete it.

Why no overshoot: of two granted claims, the later one (higher sequence) counted the earlier
one either as a node (it still existed when the children were listed) or in ``P`` (its node
was deleted, which happens only after its row was committed, and ``P`` is read after the
listing). A claim committed but not yet deleted is counted twice: that only makes a claim
wait a moment. So the pool never exceeds the target through the runner's claims, whatever
the number of processes. (A session lost between grant and commit drops the node before the
row lands: at most one page over per such loss; the job stops on the lost session.)

A shard that dies leaves its share to the others: there are no per-shard quotas, and its
ephemeral claims vanish when its session expires (``lock.timeout`` seconds).

``remaining()`` = ``target - P - (others' claims)``, but at least 1 while ``P < target``
(claims in flight may still be released; the next ``claim()`` decides exactly). It is
re-read at most every ``refresh`` seconds (2), since the job asks between every two
pages: a shard may go on evaluating that long after the target is reached elsewhere (its
claims are then refused). The pool size is one ``COUNT`` over the recommendations table
per claim and per refresh: ~0.2 s at a million rows (NULL rows included) on MariaDB,
which is what bounds the claim rate on very large wikis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from runner.errors import ServiceUnavailable

if TYPE_CHECKING:
    from runner.config import Config
    from runner.run import RunOptions

log = logging.getLogger("runner.coordination")


@dataclass(frozen=True)
class Slot:
    """One claimed place in the pool (``name``: the claim znode, or "local"); ``topics``:
    the per-topic pools it counts for (runner/topics.py), none for the wiki-wide target."""

    name: str
    topics: tuple[str, ...] = ()


class PoolTarget(Protocol):
    def remaining(self, topic: str | None = None) -> int:
        """Slots still needed to reach the target (<= 0: reached); of one topic's pool
        when ``topic`` is given (per-topic targets, runner/topics.py)."""
        ...

    def claim(self, topics: Iterable[str] = (), primary: str | None = None) -> Slot | None:
        """Take one slot for a success about to be stored; None when none is left.
        ``topics``: the topics of the page, ``primary`` the one it was found for (per-topic
        targets only)."""
        ...

    def confirm(self, slot: Slot) -> None:
        """The slot's row is committed (it now counts in the pool size)."""
        ...

    def release(self, slot: Slot) -> None:
        """Give back a claimed slot whose success was not stored."""
        ...

    def close(self) -> None: ...


class LocalPoolTarget:
    """One process's view: target minus the pool size it saw at start minus its successes."""

    def __init__(self, target: int, current: int) -> None:
        self.target = target
        self._left = target - current
        self._mutex = threading.Lock()

    def remaining(self, topic: str | None = None) -> int:
        return self._left

    def claim(self, topics: Iterable[str] = (), primary: str | None = None) -> Slot | None:
        with self._mutex:
            if self._left <= 0:
                return None
            self._left -= 1
            return Slot("local")

    def confirm(self, slot: Slot) -> None:
        pass

    def release(self, slot: Slot) -> None:
        with self._mutex:
            self._left += 1

    def close(self) -> None:
        pass


class UnlimitedTarget:
    """Backfill and revalidation: every good page is stored, whatever the pool size."""

    def remaining(self, topic: str | None = None) -> int:
        return 1 << 62

    def claim(self, topics: Iterable[str] = (), primary: str | None = None) -> Slot | None:
        return Slot("unlimited")

    def confirm(self, slot: Slot) -> None:
        pass

    def release(self, slot: Slot) -> None:
        pass

    def close(self) -> None:
        pass


def _zk_errors() -> tuple[type[BaseException], ...]:
    try:
        from kazoo.exceptions import KazooException
        from kazoo.handlers.threading import KazooTimeoutError
    except ImportError:  # pragma: no cover - kazoo is a runtime dependency
        return (RuntimeError,)
    return (KazooException, KazooTimeoutError)


ZK_ERRORS = _zk_errors()


def delete_claim(client: Any, node: str, timeout: float, what: str) -> None:
    """Delete a claim's znode: a refused one, or one whose page was stored or let go.

    Already gone is fine. Should the delete fail, the znode is ephemeral and goes with the
    session; until then other shards see one claim more than there is: they wait or stop
    early, never overshoot the target.
    """
    from kazoo.exceptions import NoNodeError

    try:
        client.delete_async(node).get(timeout=timeout)
    except NoNodeError:
        pass
    except ZK_ERRORS as e:
        log.warning("%s: cannot delete claim %s: %s", what, node, e)


def _seq(name: str) -> int:
    return int(name.rsplit("-", 1)[-1])


class ZooKeeperPoolTarget:
    """The global target of one wiki (see the module docstring for the recipe)."""

    PREFIX = "claim-"

    def __init__(self, client: Any, path: str, target: int, pool_size: Callable[[], int], *,
                 refresh: float = 2.0, wait: float = 30.0, owns_client: bool = False) -> None:
        self.client, self.path, self.target = client, path.rstrip("/"), target
        self.pool_size, self.refresh, self.wait = pool_size, refresh, wait
        self._owns_client = owns_client
        self._mine: set[str] = set()  # names of my claim nodes not yet confirmed/released
        self._cached: tuple[float, int] | None = None  # (monotonic time, remaining)
        # Every operation has a deadline (the session timeout): kazoo's synchronous calls
        # have none, and a silent partition would block a claim for good.
        timeout = getattr(client, "_session_timeout", 10000) / 1000.0
        self.op_timeout = max(1.0, min(timeout, 30.0))
        self._op(self.client.ensure_path_async(self.path))

    def _op(self, async_result: Any) -> Any:
        """The result of a kazoo async call, or KazooTimeoutError after ``op_timeout``."""
        return async_result.get(timeout=self.op_timeout)

    @classmethod
    def connect(cls, hosts: str, path: str, target: int, pool_size: Callable[[], int], *,
                timeout: float = 10.0, **kw: Any) -> ZooKeeperPoolTarget:
        """With a ZooKeeper session of its own (closed by ``close()``)."""
        from kazoo.client import KazooClient
        from kazoo.handlers.threading import KazooTimeoutError

        client = KazooClient(hosts=hosts, timeout=timeout)
        try:
            client.start(timeout=timeout)
        except KazooTimeoutError:
            client.close()
            raise ServiceUnavailable("ZooKeeper", f"lock.hosts: cannot connect to {hosts} "
                                     f"within {timeout:g} s") from None
        return cls(client, path, target, pool_size, owns_client=True, **kw)

    # ------------------------------------------------------------------ reading
    def _children(self, watch: Callable[[Any], None] | None = None) -> list[str]:
        names = self._op(self.client.get_children_async(self.path, watch=watch))
        return sorted((n for n in names if n.startswith(self.PREFIX)), key=_seq)

    def in_flight(self) -> list[str]:
        """Claim nodes of every process, oldest first."""
        return self._children()

    def remaining(self, topic: str | None = None) -> int:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.refresh:
            return self._cached[1]
        try:
            others = [n for n in self._children() if n not in self._mine]
        except ZK_ERRORS as e:  # the lock's session trouble stops the job anyway
            log.warning("pool target: cannot list claims: %s", e)
            return self._cached[1] if self._cached else 0
        pool = self.pool_size()
        left = self.target - pool - len(others)
        if left <= 0 and pool < self.target:
            left = 1  # claims in flight may still be released: a claim() decides exactly
        self._cached = (now, left)
        return left

    # ------------------------------------------------------------------ claims
    def claim(self, topics: Iterable[str] = (), primary: str | None = None) -> Slot | None:

        if not self.client.connected:
            # Suspended or lost: no claim can be made, and waiting op_timeout for each of
            # the pages still in flight would hold a partitioned run far past its bound.
            log.warning("pool target: ZooKeeper not connected; no claim")
            return None
        try:
            node = self._op(self.client.create_async(f"{self.path}/{self.PREFIX}",
                                                     ephemeral=True, sequence=True))
        except ZK_ERRORS as e:
            log.warning("pool target: cannot create a claim: %s", e)
            return None
        name = node.rsplit("/", 1)[-1]
        mine = _seq(name)
        deadline = time.monotonic() + self.wait
        try:
            while True:
                changed = threading.Event()
                children = self._children(watch=lambda _event, ev=changed: ev.set())
                ahead = [n for n in children if _seq(n) < mine]
                pool = self.pool_size()  # read AFTER listing: a race only counts twice
                if pool + len(ahead) < self.target:
                    self._mine.add(name)
                    self._cached = (time.monotonic(),
                                    self.target - pool - len(ahead) - 1)
                    return Slot(name)
                if pool >= self.target:
                    self._cached = (time.monotonic(), self.target - pool)
                    break
                if time.monotonic() >= deadline:
                    log.warning("pool target: claims ahead undecided after %.0f s; refused",
                                self.wait, extra={"claims": ahead})
                    break
                changed.wait(min(0.5, max(0.0, deadline - time.monotonic())))
        except ZK_ERRORS as e:
            log.warning("pool target: claim failed: %s", e)
        delete_claim(self.client, node, self.op_timeout, "pool target (refused)")
        return None

    def _drop(self, slot: Slot) -> None:
        if slot.name not in self._mine:
            return
        self._mine.discard(slot.name)
        self._cached = None
        delete_claim(self.client, f"{self.path}/{slot.name}", self.op_timeout, "pool target")

    def confirm(self, slot: Slot) -> None:
        self._drop(slot)

    def release(self, slot: Slot) -> None:
        self._drop(slot)

    def close(self) -> None:
        for name in list(self._mine):
            self._drop(Slot(name))
        if self._owns_client:
            try:
                self.client.stop()
            finally:
                self.client.close()


def claims_path(root: str, wiki: str) -> str:
    return f"{root.rstrip('/')}/{wiki}/claims"


def pool_target_factory(cfg: Config, wiki: str, options: RunOptions,
                        pool_size: Callable[[], int],
                        client: Any = None) -> Callable[[int, int], PoolTarget]:
    """How a run draws its budget: ``factory(target, pool_size_at_start) -> PoolTarget``.

    ``lock.type: zookeeper`` (production): the target is shared by every process filling
    the wiki (shards, an overlapping CronJob run), through ``client`` (the lock's session)
    or a session of its own. Otherwise, and for dry runs (which store nothing), the count is
    local to the process: shards under a file lock would each fill up to the target.
    """
    lock = cfg.lock
    if options.dry_run or lock.type != "zookeeper":
        return LocalPoolTarget
    path = claims_path(lock.root, wiki)
    wait = max(30.0, 2 * lock.timeout)  # a dead holder's claims last one session timeout

    def make(target: int, current: int) -> PoolTarget:
        try:
            if client is not None:
                return ZooKeeperPoolTarget(client, path, target, pool_size, wait=wait)
            return ZooKeeperPoolTarget.connect(lock.hosts, path, target, pool_size,
                                               timeout=lock.timeout, wait=wait)
        except ZK_ERRORS as e:
            raise ServiceUnavailable("ZooKeeper", f"{path}: {type(e).__name__}: {e}") \
                from None

    return make

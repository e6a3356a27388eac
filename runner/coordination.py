"""How many more tasks a run may add: the pool target, local or shared between shards.

The job asks ``claim()`` right before it stores a success and ``release()``s the slot if the
write fails, so a target is never overshot by more than the pages already in flight. With
``--shard i/N`` every shard must draw from one global budget: that implementation (a
ZooKeeper counter under ``<root>/<wiki>/``, issue 4) plugs in behind the same interface.
"""

from __future__ import annotations

import threading
from typing import Protocol


class PoolTarget(Protocol):
    def remaining(self) -> int:
        """Slots still needed to reach the target (<= 0: reached)."""
        ...

    def claim(self) -> bool:
        """Take one slot for a success about to be stored; False when none is left."""
        ...

    def release(self) -> None:
        """Give back a claimed slot whose success was not stored."""
        ...

    def close(self) -> None: ...


class LocalPoolTarget:
    """One process's view: target minus the pool size it saw at start minus its successes."""

    def __init__(self, target: int, current: int) -> None:
        self.target = target
        self._left = target - current
        self._mutex = threading.Lock()

    def remaining(self) -> int:
        return self._left

    def claim(self) -> bool:
        with self._mutex:
            if self._left <= 0:
                return False
            self._left -= 1
            return True

    def release(self) -> None:
        with self._mutex:
            self._left += 1

    def close(self) -> None:
        pass


class UnlimitedTarget:
    """Backfill and revalidation: every good page is stored, whatever the pool size."""

    def remaining(self) -> int:
        return 1 << 62

    def claim(self) -> bool:
        return True

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


def pool_target_factory(shard: tuple[int, int] | None) -> type[LocalPoolTarget]:
    """How a run draws its budget: ``factory(target, current_pool_size) -> PoolTarget``.

    The one place to choose a shared implementation for ``--shard i/N`` (a ZooKeeper
    counter of "still needed" under ``<lock.root>/<wiki>/``, issue 4). Until then every
    process, sharded or not, counts locally from the pool size it saw when it started, so N
    shards together may overshoot the target by up to N-1 times what was missing.
    """
    return LocalPoolTarget

"""What a run is asked to do, how it ended, and the errors that decide its exit code.

Kept apart from ``runner.job`` so that the adapters (coordination, repair, app) can name a
run's options and result without importing the loop, and so that every place that ends a run
maps it to the one exit-code table (``model/exitcodes.py``) the same way.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from model.exitcodes import ExitCode
from runner.errors import (
    STATUS_CODES,
    ModelInvalid,
    PagesNotFound,
    ServiceUnavailable,
    one_line,
    status_of,
)
from runner.events import PublishStats
from runner.workers import DEFAULT_RECOMMENDER

# SIGTERM/SIGINT: pages in flight get STOP_GRACE seconds to finish (then they are abandoned,
# uncommitted, for the next run), the outbox STOP_PUBLISH more seconds; the process exits
# within SIGNAL_EXIT_BOUND seconds of the signal (the manifests' grace period is above it).
__all__ = ["ModelInvalid", "PagesNotFound", "ServiceUnavailable", "RunOptions", "RunResult",
           "StopFlag", "one_line", "status_of"]

STOP_GRACE = 3.0
STOP_PUBLISH = 3.0
SIGNAL_EXIT_BOUND = 10.0


@dataclass(frozen=True)
class RunOptions:
    command: str = "refresh"  # refresh | backfill | revalidate
    target: int | None = None  # overrides the wiki's pool_target
    dry_run: bool = False  # evaluate and recommend, write nothing
    workers: int | None = None
    max_runtime: float | None = None
    shard: tuple[int, int] | None = None
    batch_size: int | None = None
    limit: int | None = None  # candidates to evaluate at most
    force: bool = False  # backfill --force: skip the criteria that may be skipped
    titles: tuple[str, ...] | None = None  # backfill: exactly these pages
    topic: str | None = None
    recommender: str = DEFAULT_RECOMMENDER
    progress: bool = False  # a progress line on stderr (the CLI: a terminal, not --quiet)

    @property
    def shard_label(self) -> str:
        return f"{self.shard[0]}/{self.shard[1]}" if self.shard else ""


@dataclass
class RunResult:
    wiki: str
    status: str = "ok"  # a key of STATUS_CODES
    stop_reason: str = ""
    outcomes: Counter = field(default_factory=Counter)
    pool_before: int = 0
    pool_after: int = 0
    target: int = 0
    upkeep_removed: int = 0
    seconds: float = 0.0
    events: PublishStats = field(default_factory=PublishStats)
    error: str = ""
    dry_run: bool = False
    topics: dict = field(default_factory=dict)  # per-topic pools: runner/topics.figures

    @property
    def evaluated(self) -> int:
        return sum(self.outcomes.values())

    @property
    def exit_code(self) -> ExitCode:
        code = STATUS_CODES.get(self.status, ExitCode.FAILURE)
        if code == ExitCode.OK and (self.events.pending or self.events.failed):
            return ExitCode.EVENTS_UNDELIVERED  # pending after the retries, or dead-lettered
        return code

    def fail(self, error: BaseException) -> None:
        """Record the error that ends the run (the first one wins)."""
        if self.status in ("ok", "interrupted"):
            self.status = status_of(error)
        self.error = self.error or one_line(error)

    def as_dict(self) -> dict:
        return {"wiki": self.wiki, "status": self.status, "stop_reason": self.stop_reason,
                "outcomes": dict(sorted(self.outcomes.items())), "evaluated": self.evaluated,
                "pool_before": self.pool_before, "pool_after": self.pool_after,
                "target": self.target, "upkeep_removed": self.upkeep_removed,
                "seconds": round(self.seconds, 3), "events_sent": self.events.sent,
                "events_failed": self.events.failed, "events_pending": self.events.pending,
                "exit_code": int(self.exit_code), "dry_run": self.dry_run,
                "error": self.error, **({"topics": self.topics} if self.topics else {})}


class StopFlag:
    """Set from a signal handler; read between pages. ``at``: when it was set (monotonic).

    Never test it for truth to decide whether one was given: an unset flag is falsy.
    """

    def __init__(self) -> None:
        self.reason = ""
        self.at = 0.0

    def set(self, reason: str) -> None:
        if not self.reason:
            self.reason, self.at = reason, time.monotonic()

    @property
    def by_signal(self) -> bool:
        return self.reason in ("SIGTERM", "SIGINT")

    def left(self, grace: float) -> float | None:
        """Seconds left of ``grace`` after the stop (None: no stop asked)."""
        return max(0.0, self.at + grace - time.monotonic()) if self.reason else None

    def __bool__(self) -> bool:
        return bool(self.reason)

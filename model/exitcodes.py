"""The project's one exit-code table (documented in docs/runner.md, "Exit codes").

Every command of the project (``python -m model``, ``python -m runner``, ``python -m service``)
exits with one of these, so an operator or a CronJob reads a failure the same way whichever
command met it. It lives in ``model/`` because ``model/`` depends on nothing of ours and both
``runner/`` and ``service/`` import it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes; with several wikis in one run the most severe wins (``SEVERITY``)."""

    OK = 0  # done (also a clean stop at --max-runtime before the target)
    FAILURE = 1  # the work failed for a reason not listed below
    USAGE = 2  # bad usage, configuration or input (an invalid title, a missing file)
    LOCK_HELD = 3  # the wiki's lock is held by another run: skipped at once
    LOCK_LOST = 4  # the ZooKeeper lock was lost mid-run (work done so far is committed)
    SIGNAL = 5  # stopped by SIGTERM/SIGINT (finished pages committed)
    UNAVAILABLE = 6  # a service is unreachable or partitioned (names it: MySQL, ZooKeeper...)
    EVENTS_UNDELIVERED = 7  # events still pending or dead-lettered after the retries
    MODEL_INVALID = 8  # a model is missing, unreadable, or fails its checksums


# Most severe first: the code a multi-wiki run exits with is the first one any wiki reached.
SEVERITY = (
    ExitCode.USAGE,
    ExitCode.MODEL_INVALID,
    ExitCode.FAILURE,
    ExitCode.UNAVAILABLE,
    ExitCode.LOCK_LOST,
    ExitCode.SIGNAL,
    ExitCode.EVENTS_UNDELIVERED,
    ExitCode.LOCK_HELD,
    ExitCode.OK,
)


def most_severe(codes) -> ExitCode:
    """The code of a run made of several parts (one per wiki): the most severe one."""
    present = {ExitCode(c) for c in codes}
    return next((c for c in SEVERITY if c in present), ExitCode.OK)

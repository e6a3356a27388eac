"""The errors that end a run with a code of their own, and how a run's status maps to the
project's one exit-code table (``model/exitcodes.py``). Imports nothing of the runner, so
the store, the sources and the lock can raise them.
"""

from __future__ import annotations

from model.exitcodes import ExitCode
from model.wikis import ConfigError


class ServiceUnavailable(RuntimeError):
    """A service did not answer within its deadline, after the retries (exit UNAVAILABLE).

    The message is one line that starts with the service's name (MySQL, ZooKeeper,
    MediaWiki, EventGate), so an operator knows where to look without a traceback.
    """

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service} unavailable: {detail}")
        self.service = service


class ModelInvalid(RuntimeError):
    """The model is missing, unreadable, fails its checksums or fails on most pages."""


class PagesNotFound(RuntimeError):
    """backfill/revalidate: some of the pages asked for do not exist (exit USAGE)."""


# RunResult.status -> exit code; "ok" may still end EVENTS_UNDELIVERED (see exit_code).
STATUS_CODES = {
    "ok": ExitCode.OK, "lock_held": ExitCode.LOCK_HELD, "lock_lost": ExitCode.LOCK_LOST,
    "interrupted": ExitCode.SIGNAL, "unavailable": ExitCode.UNAVAILABLE,
    "model_invalid": ExitCode.MODEL_INVALID, "not_found": ExitCode.USAGE,
    "usage": ExitCode.USAGE, "failed": ExitCode.FAILURE,
}


def status_of(error: BaseException) -> str:
    """The run status an error ends a run with."""
    if isinstance(error, ServiceUnavailable):
        return "unavailable"
    if isinstance(error, ModelInvalid):
        return "model_invalid"
    if isinstance(error, PagesNotFound):
        return "not_found"
    if isinstance(error, ConfigError):  # found once the run met the wiki (e.g. its search)
        return "usage"
    return "failed"


def one_line(error: BaseException) -> str:
    """An error as the one line a user sees: our own errors by message, others by type too."""
    text = " ".join(str(error).split())
    if isinstance(error, ServiceUnavailable | ModelInvalid | PagesNotFound | ConfigError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__



"""The progress line of refresh, backfill and revalidate when a person watches (tqdm).

Only on a terminal (stderr), never in a pod or CI: there the JSON log is the record. While
the line is shown, log records are written above it (tqdm's logging redirect), so a text log
on the same terminal does not break it. Refresh counts the tasks added toward the target
(evaluated pages beside it); a run over given pages (backfill, revalidate) counts the pages.
"""

from __future__ import annotations

import sys
from typing import Any

from runner import criteria as C


class Progress:
    """No progress line (not a terminal, ``--quiet``): every call does nothing."""

    def start(self, wiki: str, command: str, total: int, *, tasks: bool) -> None:
        pass

    def evaluated(self, outcome: str) -> None:
        pass

    def close(self) -> None:
        pass


class TerminalProgress(Progress):
    def __init__(self) -> None:
        self._bar: Any = None
        self._redirect: Any = None
        self._tasks = False
        self._evaluated = 0

    def start(self, wiki: str, command: str, total: int, *, tasks: bool) -> None:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self._tasks = tasks
        self._bar = tqdm(total=max(0, total), desc=f"{wiki} {command}", file=sys.stderr,
                         unit=" tasks" if tasks else " pages", dynamic_ncols=True,
                         mininterval=0.25, leave=True)
        self._redirect = logging_redirect_tqdm()
        self._redirect.__enter__()

    def evaluated(self, outcome: str) -> None:
        if self._bar is None:
            return
        self._evaluated += 1
        if not self._tasks or outcome == C.SUCCESS:
            self._bar.update(1)
        if self._tasks:
            self._bar.set_postfix_str(f"{self._evaluated} evaluated", refresh=False)

    def close(self) -> None:
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def open_progress(enabled: bool) -> Progress:
    return TerminalProgress() if enabled else Progress()

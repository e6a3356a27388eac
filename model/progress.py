"""The stages of a long command (``model train``, ``backtest``): a bar per stage on a terminal,
one "stage done" log record per stage everywhere (batch jobs and CI read logs).

On a terminal each stage's bar is named (``parse  45%|...| 903/2004 articles``) and stays on
screen when it ends, so the output reads as the list of stages with their counts and
durations; elsewhere the log records carry the same (``stage``, ``items``, ``seconds``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("addlink.model")
_bars = False  # set by setup_logging: a person watches stderr


def setup_logging(level: int = logging.INFO, fmt: str = "auto", bars: bool | None = None
                  ) -> None:
    """Log records on stderr (stdout is the command's JSON result): text on a terminal,
    JSON lines otherwise; ``bars``: show progress bars (default: stderr is a terminal)."""
    from model.jsonlog import configure

    global _bars
    configure(fmt, level, sys.stderr, logger="addlink")
    _bars = sys.stderr.isatty() if bars is None else bars


def progress(items: Iterable[T], stage: str, total: int | None = None,
             unit: str = "items") -> Iterator[T]:
    """Iterate over one stage's items: a named bar on a terminal, then the stage's log
    record (its name, count and duration)."""
    start, count = time.monotonic(), 0
    bar = None
    if _bars:
        from tqdm import tqdm

        bar = tqdm(items, desc=stage, total=total, unit=f" {unit}", file=sys.stderr,
                   dynamic_ncols=True, mininterval=0.25, leave=True)
        items = bar
    try:
        for item in items:
            count += 1
            yield item
    finally:
        if bar is not None:
            bar.close()
    seconds = round(time.monotonic() - start, 2)
    log.info("stage %s done: %d %s in %.2f s", stage, count, unit, seconds,
             extra={"stage": stage, "items": count, "seconds": seconds})


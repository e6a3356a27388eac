"""Progress bars on a terminal, JSON log lines otherwise (batch jobs and CI read logs)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from pythonjsonlogger.json import JsonFormatter

T = TypeVar("T")
log = logging.getLogger("addlink.model")


def setup_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr unless a person is watching a terminal."""
    handler = logging.StreamHandler(sys.stderr)
    if sys.stderr.isatty():
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    else:
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("addlink")
    root.handlers[:] = [handler]
    root.setLevel(level)


def progress(items: Iterable[T], stage: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a bar on a TTY; otherwise log the stage's count and duration at its end."""
    start, count = time.monotonic(), 0
    if sys.stderr.isatty():
        from tqdm import tqdm

        items = tqdm(items, desc=stage, total=total, unit=" items", leave=False)
    for item in items:
        count += 1
        yield item
    log.info(
        "stage done",
        extra={"stage": stage, "items": count, "seconds": round(time.monotonic() - start, 2)},
    )

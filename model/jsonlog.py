"""The project's two log formats, for every command: JSON lines and readable text.

JSON lines (python-json-logger) for programs reading the logs (Kubernetes, CI), text for a
person at a terminal; ``auto`` picks by whether the stream is a terminal. Both carry the
same fields: the JSON record has ``time``, ``level``, ``logger``, ``message`` plus the extra
fields (``wiki``, ``title``, ``outcome``...), the text line shows the extras as key=value.
Timestamps are UTC with milliseconds (``2026-12-01T11:40:10.123Z``): a second's resolution
cannot order the records of one page. It lives in ``model/`` because ``runner/`` and
``service/`` both import ``model/`` and never each other.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

FORMATS = ("auto", "json", "text")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                         "taskName"}


def timestamp(created: float) -> str:
    """A record's time: ISO 8601, UTC, milliseconds."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class _JsonFormatter(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return timestamp(record.created)


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal: time, level, message, then the extra fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return timestamp(record.created)

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items()
                          if k not in _STANDARD and v not in (None, ""))
        return f"{base} {extras}" if extras else base


def resolve(fmt: str, stream: TextIO) -> str:
    """``auto`` -> ``text`` on a terminal, ``json`` otherwise."""
    if fmt != "auto":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def handler(fmt: str = "json", stream: TextIO | None = None) -> logging.Handler:
    """A handler writing ``fmt`` (auto, json or text) records to ``stream`` (stdout)."""
    stream = sys.stdout if stream is None else stream
    h = logging.StreamHandler(stream)
    if resolve(fmt, stream) == "text":
        h.setFormatter(TextFormatter())
    else:
        h.setFormatter(_JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False))
    return h


def json_handler() -> logging.Handler:
    """A stdout handler writing one JSON object per record."""
    return handler("json")


def configure(fmt: str, level: int, stream: TextIO | None = None,
              logger: str = "", quiet_loggers: tuple[str, ...] = ()) -> logging.Handler:
    """Route ``logger`` (the root by default) to one handler of ``fmt`` at ``level``."""
    h = handler(fmt, stream)
    target = logging.getLogger(logger)
    for old in list(target.handlers):
        target.removeHandler(old)
    target.addHandler(h)
    target.setLevel(level)
    for noisy in quiet_loggers:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))
    return h

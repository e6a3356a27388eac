"""The service's logs on stdout: one record per request, plus model and error events.

JSON lines (python-json-logger) under gunicorn and in pods; ``python -m service serve`` on a
terminal writes text unless ``--log-format json`` (the formats: ``model/jsonlog.py``).
"""

from __future__ import annotations

import logging
import sys

from model.jsonlog import configure

NOISY = ("urllib3", "werkzeug")


def setup_logging(level: int = logging.INFO, fmt: str = "json") -> None:
    """Route every logger to stdout (idempotent: the app factory may run twice, and the CLI
    sets the format before it)."""
    root = logging.getLogger()
    if any(getattr(h, "_addlink", False) for h in root.handlers):
        return
    handler = configure(fmt, level, sys.stdout, quiet_loggers=NOISY)
    handler._addlink = True  # type: ignore[attr-defined]

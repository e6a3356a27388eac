"""JSON lines on stdout (python-json-logger): one per request, plus model and error events."""

from __future__ import annotations

import logging

from model.jsonlog import json_handler


def setup_logging(level: int = logging.INFO) -> None:
    """Route every logger to stdout as JSON (idempotent: the app factory may run twice)."""
    root = logging.getLogger()
    if any(getattr(h, "_addlink", False) for h in root.handlers):
        return
    handler = json_handler()
    handler._addlink = True  # type: ignore[attr-defined]
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

"""The project's one JSON-lines log format (python-json-logger), for every command.

``runner/`` and ``service/`` both log JSON lines on stdout with the same field names
(``time``, ``level``, ``logger``, ``message`` plus the extra fields); the formatter lives
here because both import ``model/`` and never each other.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def json_handler() -> logging.Handler:
    """A stdout handler writing one JSON object per record."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z", json_ensure_ascii=False))
    return handler

"""The runner's logs: on stdout (the CronJob's log), JSON lines unless a person watches.

The formats are the project's (``model/jsonlog.py``): ``auto`` writes text on a terminal
and JSON lines otherwise; ``--log-format`` overrides, ``--log-level``/``--quiet`` filter.
"""

from __future__ import annotations

import logging
import sys

from model.jsonlog import TextFormatter, configure

__all__ = ["TextFormatter", "setup_logging"]

NOISY = ("kazoo", "urllib3")  # their INFO lines (reconnects, pools) are not the run's story


def setup_logging(fmt: str = "auto", level: int = logging.INFO) -> None:
    configure(fmt, level, sys.stdout, quiet_loggers=NOISY)

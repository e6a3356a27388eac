"""gunicorn settings of the service: ``gunicorn -c service/gunicorn_conf.py
'service.app:create_app()'`` (the image's service command; docs/service.md).

Sync workers: one request at a time per process, in its main thread, so the per-request
deadline can be a SIGALRM timer. Each worker opens each wiki's model once, lazily.
Overridable through GUNICORN_* environment variables below.
"""

from __future__ import annotations

import os
import shutil

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "sync"
# The request deadline (service.deadline) answers 504 first; this only kills a stuck worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 20
keepalive = 5
# Unlimited request line: gunicorn's own 414 is an HTML page; the app bounds the query itself
# (service.max_sections_to_exclude headings of at most 255 characters) and answers JSON.
limit_request_line = 0
accesslog = None  # the app logs one JSON line per request itself
errorlog = "-"
# One compute thread per worker: the parallelism comes from the worker processes.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")


def on_starting(server) -> None:
    """Empty the Prometheus multiprocess directory: values of a previous run must not count."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if os.path.isdir(full):
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.unlink(full)


def child_exit(server, worker) -> None:
    """A dead worker's live gauges are dropped (counters and histograms stay summed)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

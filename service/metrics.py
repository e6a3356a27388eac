"""Prometheus metrics of the service (``prometheus_client``).

Under gunicorn every worker is a process: with ``PROMETHEUS_MULTIPROC_DIR`` set (an emptyDir
in Kubernetes) each one writes its values to files there, and ``/metrics`` sums them over
the workers (``MultiProcessCollector``); without it (the dev server) the default registry
is used. The variable must be set before this module is imported.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter("addlink_service_requests_total", "HTTP requests answered",
                   ["route", "wiki", "status"])
LATENCY = Histogram("addlink_service_recommendation_seconds",
                    "Time of one recommendation request (fetch included for GET)",
                    ["wiki", "method"],
                    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30))
LINKS = Histogram("addlink_service_links_returned", "Links in one answer", ["wiki"],
                  buckets=(0, 1, 2, 3, 5, 10, 15, 25, 50, 100))
MODEL_OPEN = Histogram("addlink_service_model_open_seconds",
                       "Time to open a wiki's model in a worker (once per worker and wiki)",
                       ["wiki"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

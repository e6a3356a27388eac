"""Metrics adapters: statsd (production) or off. Names come only from ``metric_names``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from runner import metric_names as M
from runner.config import MetricsSection

_KNOWN = frozenset(M.ALL)


def _name(template: str, labels: dict[str, str]) -> str:
    if template not in _KNOWN:
        raise ValueError(f"metric {template!r} is not declared in runner/metric_names.py")
    return template.format(**{k: str(v).replace(".", "_").replace(":", "_")
                              for k, v in labels.items()})


class Metrics:
    """No-op base: the ``off`` adapter. Subclasses send; callers never check which."""

    def incr(self, template: str, count: int = 1, **labels: str) -> None:
        _name(template, labels)

    def gauge(self, template: str, value: float, **labels: str) -> None:
        _name(template, labels)

    def timing(self, template: str, ms: float, **labels: str) -> None:
        _name(template, labels)

    @contextmanager
    def timer(self, template: str, **labels: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timing(template, (time.perf_counter() - t0) * 1000.0, **labels)

    def close(self) -> None:
        pass


class StatsdMetrics(Metrics):
    def __init__(self, host: str, port: int) -> None:
        import statsd

        self.client = statsd.StatsClient(host, port)

    def incr(self, template: str, count: int = 1, **labels: str) -> None:
        self.client.incr(_name(template, labels), count)

    def gauge(self, template: str, value: float, **labels: str) -> None:
        self.client.gauge(_name(template, labels), value)

    def timing(self, template: str, ms: float, **labels: str) -> None:
        self.client.timing(_name(template, labels), ms)

    def close(self) -> None:
        self.client.close()


def open_metrics(cfg: MetricsSection) -> Metrics:
    if cfg.type == "statsd":
        return StatsdMetrics(cfg.host, cfg.port)
    return Metrics()

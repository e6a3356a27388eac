"""Metrics adapters: Prometheus Pushgateway (production), statsd, or off.

Names come only from ``metric_names``. Callers use one interface (``incr``, ``gauge``,
``timing``/``timer``, ``flush``, ``close``) and never check which adapter they have.

Why a push: a refresh is a CronJob that lives minutes, so nothing could scrape it reliably;
it pushes to a Pushgateway every ``interval`` seconds while it runs and once more at the end
of each wiki's run, and Prometheus scrapes the Pushgateway. Each (wiki, shard) is its own
group (grouping key), so the wikis of one pod and the pods of a sharded run never overwrite
each other. Pushes use POST, which replaces only the metrics a push carries: a failed run
that has no new last-success time leaves the previous one in place, which is what lets the
"no successful run for 2 intervals" alert fire (statsd repeats its last gauge instead).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from runner import metric_names as M
from runner.config import MetricsSection
from runner.errors import ServiceUnavailable

if TYPE_CHECKING:  # the job imports this module
    from runner.config import WikiConfig
    from runner.store import Store

log = logging.getLogger("runner.metrics")

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

    def flush(self) -> None:
        """Send what is buffered now (the end of a wiki's run); a no-op where nothing is."""

    def close(self) -> None:
        pass


class StatsdMetrics(Metrics):
    """Dotted names; manifests/statsd-exporter/mapping.yaml turns them into the labelled ones.

    A template declared as a gauge but fed through ``timing`` (the run duration) is sent as
    a gauge in seconds, the unit it has in Prometheus.
    """

    def __init__(self, host: str, port: int) -> None:
        import statsd

        self.client = statsd.StatsClient(host, port)

    def incr(self, template: str, count: int = 1, **labels: str) -> None:
        self.client.incr(_name(template, labels), count)

    def gauge(self, template: str, value: float, **labels: str) -> None:
        if labels.get("topic"):
            # A dotted name has no topic: a per-topic pool size would overwrite the wiki's
            # (counters just add up). Per-topic gauges are on the Prometheus path only.
            _name(template, labels)
            return
        self.client.gauge(_name(template, labels), value)

    def timing(self, template: str, ms: float, **labels: str) -> None:
        name = _name(template, labels)
        if M.prometheus(template, "histogram").kind == "gauge":
            self.client.gauge(name, ms / 1000.0)
        else:
            self.client.timing(name, ms)

    def close(self) -> None:
        self.client.close()


class PrometheusMetrics(Metrics):
    """Labelled metrics in a ``prometheus_client`` registry (``shard`` on every series)."""

    def __init__(self, shard: str = "") -> None:
        import prometheus_client
        from prometheus_client import CollectorRegistry

        prometheus_client.disable_created_metrics()  # no *_created series in the pushes
        self.registry = CollectorRegistry(auto_describe=True)
        self.shard = shard or "all"
        self._metrics: dict[str, tuple[M.PromMetric, Any]] = {}
        self._lock = threading.Lock()
        self.wikis: set[str] = set()  # wikis with samples: the groups to push

    def _child(self, template: str, kind: M.Kind, labels: dict[str, str]) -> tuple[str, Any]:
        _name(template, labels)
        with self._lock:
            if template not in self._metrics:
                from prometheus_client import Counter, Gauge, Histogram

                spec = M.prometheus(template, kind)
                names = (*spec.labels, M.SHARD_LABEL)
                made: Any
                if spec.kind == "counter":
                    made = Counter(spec.name, spec.help, names, registry=self.registry)
                elif spec.kind == "histogram":
                    made = Histogram(spec.name, spec.help, names, registry=self.registry,
                                     buckets=M.BUCKETS)
                else:
                    made = Gauge(spec.name, spec.help, names, registry=self.registry)
                self._metrics[template] = (spec, made)
            spec, metric = self._metrics[template]
        unknown = set(labels) - set(spec.labels)
        if unknown:
            raise ValueError(f"metric {spec.name}: unknown labels {sorted(unknown)}")
        values = {k: str(labels.get(k, "")) for k in spec.labels}
        if "wiki" in values:
            self.wikis.add(values["wiki"])
        return spec.kind, metric.labels(**values, shard=self.shard)

    def incr(self, template: str, count: int = 1, **labels: str) -> None:
        kind, child = self._child(template, "counter", labels)
        if kind != "counter":
            raise TypeError(f"{template}: incr() on a {kind}")
        child.inc(count)

    def gauge(self, template: str, value: float, **labels: str) -> None:
        kind, child = self._child(template, "gauge", labels)
        if kind != "gauge":
            raise TypeError(f"{template}: gauge() on a {kind}")
        child.set(value)

    def timing(self, template: str, ms: float, **labels: str) -> None:
        kind, child = self._child(template, "histogram", labels)
        if kind == "histogram":
            child.observe(ms / 1000.0)
        elif kind == "gauge":
            child.set(ms / 1000.0)
        else:
            raise TypeError(f"{template}: timing() on a {kind}")


class _Group:
    """The samples of one (wiki, shard) in a registry: what one push to its group carries.

    Families without a sample of the group are left out, so a POST does not replace that
    metric's previous value in the Pushgateway with nothing.
    """

    def __init__(self, registry: Any, wiki: str, shard: str) -> None:
        self.registry, self.wiki, self.shard = registry, wiki, shard

    def collect(self) -> Iterator[Any]:
        from prometheus_client.metrics_core import Metric

        for family in self.registry.collect():
            samples = [s for s in family.samples if s.labels.get("wiki") == self.wiki
                       and s.labels.get(M.SHARD_LABEL) == self.shard]
            if samples:
                out = Metric(family.name, family.documentation, family.type, family.unit)
                out.samples = samples
                yield out


class PushgatewayMetrics(PrometheusMetrics):
    """Pushes each wiki's group every ``interval`` seconds and at ``flush``/``close``."""

    def __init__(self, url: str, job: str, interval: float, timeout: float,
                 shard: str = "") -> None:
        super().__init__(shard)
        self.url, self.job, self.interval, self.timeout = url.rstrip("/"), job, interval, timeout
        self.pushes = self.push_errors = 0
        self._push_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="addlink-metrics-push",
                                        daemon=True)
        self._thread.start()

    def grouping_key(self, wiki: str) -> dict[str, str]:
        return {"wiki": wiki, M.SHARD_LABEL: self.shard}

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        from prometheus_client import pushadd_to_gateway

        with self._push_lock:
            for wiki in sorted(self.wikis):
                try:
                    pushadd_to_gateway(self.url, job=self.job,
                                       registry=_Group(self.registry, wiki, self.shard),
                                       grouping_key=self.grouping_key(wiki),
                                       timeout=self.timeout)
                    self.pushes += 1
                except Exception as e:  # noqa: BLE001 - metrics never fail a run
                    self.push_errors += 1
                    log.warning("metrics push to the Pushgateway failed", extra={
                        "wiki": wiki, "url": self.url, "error": f"{type(e).__name__}: {e}"})

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 1)
        self.flush()


def open_metrics(cfg: MetricsSection, shard: str = "") -> Metrics:
    """The configured adapter; ``shard`` ("0/3") labels every Prometheus series."""
    if cfg.type == "pushgateway":
        return PushgatewayMetrics(cfg.url or "", cfg.job, cfg.interval, cfg.timeout, shard)
    if cfg.type == "statsd":
        return StatsdMetrics(cfg.host, cfg.port)
    return Metrics()


def report_run(metrics: Metrics, store: Store, wiki: WikiConfig, *, command: str,
               target: int, dry_run: bool = False) -> None:
    """The state at the end of a wiki's run, read from the store, then a flush.

    State (pool target, last success, schedule, outbox, reviewers' feedback) rather than
    events: each run reports it again, so a lost push or a restarted Pushgateway heals at
    the next run. Never raises: the run's own outcome matters more than its metrics.
    """
    from runner import quality

    name = wiki.name
    try:
        if command == "refresh":
            metrics.gauge(M.POOL_TARGET, target or wiki.pool_target, wiki=name)
            if wiki.schedule_interval:
                metrics.gauge(M.SCHEDULE_INTERVAL, wiki.schedule_interval, wiki=name)
        if not dry_run:
            metrics.gauge(M.LAST_SUCCESS, store.last_success("refresh") or 0.0, wiki=name)
        outbox = store.outbox_counts()
        metrics.gauge(M.EVENTS_PENDING, outbox.get("pending", 0), wiki=name)
        metrics.gauge(M.EVENTS_DEAD, outbox.get("failed", 0), wiki=name)
        for version, row in quality.feedback(store).items():
            for fb in quality.FEEDBACK.values():
                metrics.gauge(M.FEEDBACK, row[fb], wiki=name, model_version=version,
                              feedback=fb)
                metrics.gauge(M.FEEDBACK_RATIO, row[quality.RATE_NAMES[fb]], wiki=name,
                              model_version=version, feedback=fb)
    except ServiceUnavailable as e:  # the run already reports it: one line, no traceback
        log.warning("could not report the run's metrics: %s", e, extra={"wiki": name})
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("could not report the run's metrics", extra={"wiki": name})
    metrics.flush()

"""Every metric the runner emits, in one place: its statsd template and its Prometheus form.

Callers name a metric by its statsd template (``metrics.incr(M.OUTCOME, wiki=..., outcome=...)``)
so that the adapters stay interchangeable; ``PROMETHEUS`` says what each template is in
Prometheus (name, type, labels). The statsd-exporter mapping (manifests/statsd-exporter/),
the Grafana dashboard (manifests/grafana/) and the alert rules (manifests/prometheus/) are
checked against this module by tests, so a renamed metric breaks the build instead of
silently emptying a panel or muting an alert.

Labels: ``wiki`` (the dbname) on every metric; ``shard`` ("0/3", "all" for an unsharded run)
is added by the Prometheus adapter to every series and is part of the Pushgateway grouping
key, so the pods of a sharded run do not overwrite each other; ``topic`` (an ORES topic) on
the pool size, target and outcomes of a wiki with per-topic pools (runner/topics.py), ""
for the wiki-wide figures (absent in PromQL then).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PREFIX = "addlink"

# statsd templates (the dotted names; one per metric). The comment gives the statsd type.
POOL_SIZE = "addlink.{wiki}.pool_size"  # gauge: current rows with data (the Grafana panel)
POOL_TARGET = "addlink.{wiki}.pool_target"  # gauge: the pool size the run fills up to
OUTCOME = "addlink.{wiki}.outcome.{outcome}"  # counter: one per evaluated candidate
RUN_DURATION = "addlink.{wiki}.run_duration"  # gauge (s): the last whole refresh of a wiki
LAST_SUCCESS = "addlink.{wiki}.last_success"  # gauge: unix time the last ok refresh ended
SCHEDULE_INTERVAL = "addlink.{wiki}.schedule_interval"  # gauge (s): the wiki's CronJob period
API_TIME = "addlink.{wiki}.time.api"  # timer (ms): one Action API request
MODEL_TIME = "addlink.{wiki}.time.model"  # timer (ms): one page's recommendation
DB_TIME = "addlink.{wiki}.time.db"  # timer (ms): one store transaction
EVENTS_SENT = "addlink.{wiki}.events.sent"  # counter: events acknowledged by the sink
EVENTS_FAILED = "addlink.{wiki}.events.failed"  # counter: events rejected or not delivered
EVENTS_PENDING = "addlink.{wiki}.events.pending"  # gauge: outbox events left after a pass
EVENTS_DEAD = "addlink.{wiki}.events.dead_letters"  # gauge: events rejected, kept for drift
ERRORS = "addlink.{wiki}.errors.{kind}"  # counter: api, worker, lock, publish, run
RUNS = "addlink.{wiki}.runs.{status}"  # counter: a RunResult status (runner/errors.py)
FEEDBACK = "addlink.{wiki}.feedback.{model_version}.{feedback}"  # gauge: submissions so far
FEEDBACK_RATIO = "addlink.{wiki}.feedback_ratio.{model_version}.{feedback}"  # gauge: share
DRIFT = "addlink.{wiki}.drift.{source}.{kind}"  # gauge: pages the last drift run found

ALL = (
    POOL_SIZE, POOL_TARGET, OUTCOME, RUN_DURATION, LAST_SUCCESS, SCHEDULE_INTERVAL,
    API_TIME, MODEL_TIME, DB_TIME, EVENTS_SENT, EVENTS_FAILED, EVENTS_PENDING, EVENTS_DEAD,
    ERRORS, RUNS, FEEDBACK, FEEDBACK_RATIO, DRIFT,
)

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class PromMetric:
    """A template's Prometheus form. ``labels`` excludes ``shard`` (added to every series).

    A histogram is fed by ``timing`` (milliseconds) and observes seconds; a gauge fed by
    ``timing`` (run duration) is set in seconds too, so every time in Prometheus is seconds.
    """

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str


SHARD_LABEL = "shard"
# Seconds: an API call or a DB transaction takes milliseconds, a page's model call up to
# the page timeout (60 s).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

PROMETHEUS: dict[str, PromMetric] = {
    POOL_SIZE: PromMetric("addlink_pool_size", "gauge", ("wiki", "topic"),
                          "Rows with a recommendation (the task pool), at the start and end "
                          "of a run."),
    POOL_TARGET: PromMetric("addlink_pool_target", "gauge", ("wiki", "topic"),
                            "Pool size the refresh fills up to (pool_target or --target)."),
    OUTCOME: PromMetric("addlink_outcomes_total", "counter", ("wiki", "outcome", "topic"),
                        "Evaluated candidates by outcome (SPEC 5's outcome names)."),
    RUN_DURATION: PromMetric("addlink_run_duration_seconds", "gauge", ("wiki",),
                             "Wall time of the last run of the wiki."),
    LAST_SUCCESS: PromMetric("addlink_last_success_timestamp_seconds", "gauge", ("wiki",),
                             "Unix time the last refresh with status ok finished (from the "
                             "store's run log); 0 if none ever did."),
    SCHEDULE_INTERVAL: PromMetric("addlink_schedule_interval_seconds", "gauge", ("wiki",),
                                  "Seconds between two scheduled refreshes of the wiki "
                                  "(its CronJob's period; wikis.*.schedule_interval)."),
    API_TIME: PromMetric("addlink_api_request_duration_seconds", "histogram", ("wiki",),
                         "One (batched) Action API request or dump lookup."),
    MODEL_TIME: PromMetric("addlink_model_duration_seconds", "histogram", ("wiki",),
                           "One page's recommendation in a worker process."),
    DB_TIME: PromMetric("addlink_db_transaction_duration_seconds", "histogram", ("wiki",),
                        "One store transaction."),
    EVENTS_SENT: PromMetric("addlink_events_sent_total", "counter", ("wiki",),
                            "Search-update events acknowledged by the sink."),
    EVENTS_FAILED: PromMetric("addlink_events_failed_total", "counter", ("wiki",),
                              "Search-update events rejected by the sink."),
    EVENTS_PENDING: PromMetric("addlink_events_pending", "gauge", ("wiki",),
                               "Outbox events still to send (after the last publish pass)."),
    EVENTS_DEAD: PromMetric("addlink_events_dead_letters", "gauge", ("wiki",),
                            "Outbox events rejected as invalid and kept (dead letters)."),
    ERRORS: PromMetric("addlink_errors_total", "counter", ("wiki", "kind"),
                       "Errors by kind: api, worker, lock, publish, run."),
    RUNS: PromMetric("addlink_runs_total", "counter", ("wiki", "status"),
                     "Finished runs by status (ok, lock_held, lock_lost, interrupted, "
                     "failed, ...)."),
    FEEDBACK: PromMetric("addlink_feedback_links", "gauge",
                         ("wiki", "model_version", "feedback"),
                         "Reviewed suggestions in growthexperiments_link_submissions by "
                         "feedback (accepted, rejected, skipped) and model version."),
    FEEDBACK_RATIO: PromMetric("addlink_feedback_ratio", "gauge",
                               ("wiki", "model_version", "feedback"),
                               "Share of reviewed suggestions with this feedback (acceptance, "
                               "rejection and skip rate) per model version."),
    DRIFT: PromMetric("addlink_drift_pages", "gauge", ("wiki", "source", "kind"),
                      "Pages the last drift run found inconsistent (before repairing them): "
                      "kind tag_without_row or row_without_tag; source search (the index) "
                      "or record (acknowledged events)."),
}


def prometheus(template: str, kind: Kind = "gauge") -> PromMetric:
    """The Prometheus form of a template; an undeclared one is derived, never dropped.

    Deriving (dots to underscores, placeholders to labels, ``kind`` from the call) keeps a
    metric added to ``ALL`` without a ``PROMETHEUS`` entry visible; tests/test_metrics.py
    requires the entry anyway.
    """
    spec = PROMETHEUS.get(template)
    if spec is not None:
        return spec
    if template not in ALL:
        raise ValueError(f"metric {template!r} is not declared in runner/metric_names.py")
    parts = template.split(".")
    labels = tuple(p[1:-1] for p in parts if p.startswith("{"))
    name = "_".join(p for p in parts if not p.startswith("{"))
    name += "_total" if kind == "counter" else "_seconds" if kind == "histogram" else ""
    return PromMetric(name, kind, labels, f"{template} (derived)")

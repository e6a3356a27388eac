"""Every statsd metric name the runner emits, in one place.

The Grafana dashboard (manifests/grafana/) is checked against this module by a test, so a
renamed metric breaks the build instead of silently emptying a panel. Names are templates
over ``wiki`` (the dbname) and, for outcomes and errors, the label.
"""

PREFIX = "addlink"

POOL_SIZE = "addlink.{wiki}.pool_size"  # gauge: current rows with data (the Grafana panel)
OUTCOME = "addlink.{wiki}.outcome.{outcome}"  # counter: one per evaluated candidate
RUN_DURATION = "addlink.{wiki}.run_duration"  # timer (ms): one whole refresh of a wiki
API_TIME = "addlink.{wiki}.time.api"  # timer (ms): one Action API request
MODEL_TIME = "addlink.{wiki}.time.model"  # timer (ms): one page's recommendation
DB_TIME = "addlink.{wiki}.time.db"  # timer (ms): one store transaction
EVENTS_SENT = "addlink.{wiki}.events.sent"  # counter: events acknowledged by the sink
EVENTS_FAILED = "addlink.{wiki}.events.failed"  # counter: events rejected or not delivered
ERRORS = "addlink.{wiki}.errors.{kind}"  # counter: api, worker, lock, publish
RUNS = "addlink.{wiki}.runs.{status}"  # counter: ok, lock_held, failed, lost_lock

ALL = (
    POOL_SIZE, OUTCOME, RUN_DURATION, API_TIME, MODEL_TIME, DB_TIME,
    EVENTS_SENT, EVENTS_FAILED, ERRORS, RUNS,
)

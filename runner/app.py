"""Opens one wiki's adapters from the configuration, runs a job, closes everything."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack

from runner import metric_names as M
from runner import topics
from runner.config import Config, ConfigError
from runner.coordination import pool_target_factory
from runner.errors import one_line, status_of
from runner.events import EventFactory, Publisher, open_sink
from runner.job import RunOptions, RunResult, StopFlag, WikiJob
from runner.lock import LockError, LockHeld, WikiLock, open_lock
from runner.metrics import Metrics
from runner.preflight import preflight
from runner.sources import TimedSource, open_source
from runner.store import SchemaError, Store, StoreError, open_store

log = logging.getLogger("runner")


class NoLock:
    """Dry runs write nothing, so they do not compete with real runs for the lock."""

    lost = False

    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass


class Adapters:
    """The opened adapters of one wiki, closed by the ExitStack given to ``open``."""

    def __init__(self, cfg: Config, wiki: str, metrics: Metrics, stack: ExitStack) -> None:
        w = cfg.wiki(wiki)
        ua = cfg.runner.user_agent
        self.source = TimedSource(open_source(w, ua), metrics, wiki)
        stack.callback(self.source.close)
        self.store: Store = open_store(cfg.store, wiki)
        stack.callback(self.store.close)
        self.sink = open_sink(cfg.events, wiki, ua)
        stack.callback(self.sink.close)
        e = cfg.events
        self.publisher = Publisher(self.store, self.sink, metrics, batch_size=e.batch_size,
                                   max_attempts=e.max_attempts, backoff=e.backoff)
        self.events = EventFactory(wiki, e.stream, e.schema_uri, w.domain)


def failed(wiki: str, stop_reason: str, error: BaseException) -> RunResult:
    """A run that ended before its job started, with the status its error stands for."""
    status = status_of(error)
    if status == "failed" and isinstance(error, StoreError | SchemaError | ConfigError):
        status = "usage"  # a store location that cannot be used as configured
    log.error("%s: %s", stop_reason, one_line(error),
              extra={"wiki": wiki, "error": one_line(error)})
    return RunResult(wiki, status=status, stop_reason=stop_reason, error=one_line(error))


def locked(cfg: Config, wiki: str, options: RunOptions, metrics: Metrics,
           body: Callable[[WikiLock], RunResult]) -> RunResult:
    """Run ``body`` holding the wiki's lock; a held lock is reported at once."""
    try:
        preflight(cfg, wiki, options)
    except Exception as e:  # noqa: BLE001 - each problem has its one line and status
        res = failed(wiki, "preflight", e)
        metrics.incr(M.RUNS, wiki=wiki, status=res.status)
        return res
    lock: WikiLock = NoLock() if options.dry_run else open_lock(cfg.lock, wiki, options.shard)
    try:
        lock.acquire()
    except LockHeld as e:
        log.error("lock held by another run; exiting", extra={"wiki": wiki, "error": str(e)})
        metrics.incr(M.RUNS, wiki=wiki, status="lock_held")
        return RunResult(wiki, status="lock_held", stop_reason="lock_held", error=str(e))
    except LockError as e:
        metrics.incr(M.ERRORS, wiki=wiki, kind="lock")
        return failed(wiki, "lock_error", e)
    try:
        return body(lock)
    except Exception as e:  # noqa: BLE001 - e.g. the store gone while revalidate reads it
        return failed(wiki, "failed", e)
    finally:
        lock.release()


def run_wiki(cfg: Config, wiki: str, options: RunOptions, metrics: Metrics,
             stop: StopFlag | None = None) -> RunResult:
    """refresh/backfill of one wiki, from lock to summary."""

    def body(lock: WikiLock) -> RunResult:
        with ExitStack() as stack:
            try:
                a = Adapters(cfg, wiki, metrics, stack)
            except Exception as e:  # noqa: BLE001 - any adapter failing to open is fatal
                return failed(wiki, "setup", e)
            # The shared target rides on the lock's ZooKeeper session when there is one:
            # if that session goes, the run stops and its claims go with it.
            client = getattr(lock, "client", None)
            target = pool_target_factory(cfg, wiki, options, a.store.pool_size, client=client)
            per_topic = topics.target_factory(cfg, wiki, options, a.store, client=client)
            job = WikiJob(cfg, cfg.wiki(wiki), source=a.source, store=a.store,
                          publisher=a.publisher, metrics=metrics, lock=lock,
                          options=options, stop=stop, pool_target=target,
                          topic_target=per_topic)
            return job.run()

    return locked(cfg, wiki, options, metrics, body)

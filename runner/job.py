"""The refresh loop of one wiki: select -> fetch -> evaluate -> recommend -> prune -> store ->
publish, with SPEC §5's stop rules.

Stops: the pool target is reached; a whole batch yields no success (search/random: the
candidate supply is exhausted; not for the allpages walk, which goes to its end); no more
candidates; ``--limit`` candidates evaluated; ``--max-runtime`` passed; the lock was lost;
SIGTERM/SIGINT. Whatever the stop, pages in flight finish and are committed.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from runner import candidates as select
from runner import criteria as C
from runner import metric_names as M
from runner import topics as T
from runner.config import AUTO, Config, WikiConfig, resolve_criteria
from runner.coordination import LocalPoolTarget, PoolTarget, UnlimitedTarget
from runner.events import EventFactory, Publisher
from runner.lock import WikiLock
from runner.lookups import LookupQueue, lookup
from runner.metrics import Metrics, report_run
from runner.preflight import model_manifest
from runner.progress import open_progress
from runner.recommenders import start_workers
from runner.records import Candidate, Evaluation, PageData
from runner.run import (
    STOP_GRACE,
    STOP_PUBLISH,
    ModelInvalid,
    PagesNotFound,
    RunOptions,
    RunResult,
    StopFlag,
)
from runner.sources import TimedSource
from runner.stages import decide, screen
from runner.store import Store
from runner.upkeep import upkeep
from runner.workers import Task, TaskResult, WorkerPool

__all__ = ["RunOptions", "RunResult", "StopFlag", "WikiJob"]

log = logging.getLogger("runner.job")

FETCH_CHUNK = 50  # titles per fetch (the Action API's limit without apihighlimits)
FETCH_AHEAD = 3  # chunks fetched ahead of the workers
IO_THREADS = 3  # concurrent source requests (fetches, lookups, next candidate batch)
MAX_MODEL_FAILURES = 25  # at least this many, and most model calls failed: stop the run


class Abandoned(Exception):
    """The stop grace after a signal ran out: pages still in flight are left to the next run."""

    def __init__(self, in_flight: int = 0) -> None:
        super().__init__(in_flight)
        self.in_flight = in_flight


class WikiJob:
    """One run of one wiki over already-opened adapters (the CLI opens and closes them)."""

    def __init__(self, cfg: Config, wiki: WikiConfig, *, source: TimedSource, store: Store,
                 publisher: Publisher, metrics: Metrics, lock: WikiLock,
                 options: RunOptions, stop: StopFlag | None = None,
                 pool_target: Callable[[int, int], PoolTarget] | None = None,
                 topic_target: Callable[[T.Plan], PoolTarget] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if wiki.criteria.minimum_link_score == AUTO:
            wiki, origin = resolve_criteria(wiki, model_manifest(Path(wiki.model)))
            log.info("minimum_link_score auto: %s (%s)", wiki.criteria.minimum_link_score,
                     origin, extra={"wiki": wiki.name, "minimum_link_score":
                                    wiki.criteria.minimum_link_score, "origin": origin})
        self.cfg, self.wiki, self.options = cfg, wiki, options
        self.source, self.store, self.publisher = source, store, publisher
        self.metrics, self.lock, self.clock = metrics, lock, clock
        # Not "stop or StopFlag()": an unset flag is falsy, and the signal handler's would
        # be dropped.
        self.stop = stop if stop is not None else StopFlag()
        self.make_target = pool_target or LocalPoolTarget
        self.make_topic_target = topic_target or T.LocalTopicTarget
        self.plan: T.Plan | None = None  # per-topic pools (runner/topics.py)
        self._topic: str | None = None  # the topic of the batch being evaluated
        self.events = EventFactory(wiki.name, cfg.events.stream, cfg.events.schema_uri,
                                   wiki.domain)
        self.result = RunResult(wiki.name, dry_run=options.dry_run)
        self.started = time.monotonic()
        self.workers: WorkerPool | None = None
        self.workers_startup = 0.0  # seconds spent starting the workers (model opens)
        self.target: PoolTarget = UnlimitedTarget()
        self._key = 0
        self._taken = 0  # candidates taken into evaluation (for --limit)
        self._io = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="addlink-io")
        self._model_calls = self._model_failures = 0
        # Recommendations with links, waiting for their lookups (the plan is read per group:
        # it is made when the run starts).
        self.lookups = LookupQueue(
            lambda group: lookup(self.source, group, self._needed_links(), self.plan),
            self._io.submit, self._wait)
        self._taken_ids: list[int] = []  # page ids taken in the current batch, in order
        self._done_ids: set[int] = set()  # page ids with an outcome
        self._missing: list[str] = []  # titles asked for that are no page
        self._last_model_error = ""
        self.progress = open_progress(options.progress)

    # ------------------------------------------------------------------ top level
    def run(self) -> RunResult:
        res, opts, name = self.result, self.options, self.wiki.name
        run_id = None
        try:
            run_id = None if opts.dry_run else self.store.start_run(opts.command,
                                                                    opts.shard_label)
            self._publish()
            if opts.command == "refresh":
                self.upkeep()
            res.pool_before = self.store.pool_size()
            self.metrics.gauge(M.POOL_SIZE, res.pool_before, wiki=name)
            if T.enabled(self.wiki, opts):
                self.plan = T.plan(self.wiki, opts, self.source, self.store, self._size())
                self.target = self.make_topic_target(self.plan)
                res.target = next(iter(self.plan.targets.values()))
                res.topics = T.figures(self.plan, self.target)
                T.report(self.metrics, name, res.topics, "start")
            elif opts.titles is None:
                res.target = self.wiki.pool_target if opts.target is None else opts.target
                self.target = self.make_target(res.target, res.pool_before)
            self._start_progress()
            res.stop_reason = self._loop()
            self._judge()
        except Abandoned as gone:
            res.stop_reason = self.stop.reason
            # Said in the log so an operator knows why pages evaluated before the stop are
            # missing from the pool: nothing of them was written, the next run has them.
            log.warning("stop grace ran out: %s", f"{gone.in_flight} pages in flight left for "
                        "the next run" if gone.in_flight else "a request still unanswered",
                        extra={"wiki": name, "in_flight": gone.in_flight})
        except Exception as e:
            if self.lock.lost:  # a ZooKeeper error after the session went: the lost lock
                res.status, res.stop_reason = "lock_lost", "lock_lost"
            res.fail(e)
            self.metrics.incr(M.ERRORS, wiki=name, kind="run")
            log.error("run failed: %s", res.error, extra={"wiki": name, "error": res.error},
                      exc_info=res.status == "failed")  # a bug: keep its traceback in the log
        finally:
            self._finish_run(run_id)
        return res

    def _judge(self) -> None:
        """How the loop's end reads: lost lock, signal, a failing model, missing pages."""
        res = self.result
        if self.lock.lost:
            res.status, res.stop_reason = "lock_lost", "lock_lost"
            res.error = res.error or ("ZooKeeper: the lock's session was lost mid-run; "
                                      "the pages done so far are committed")
            return
        if self.stop.by_signal:
            res.status = "interrupted"
            return
        calls, failed = self._model_calls, self._model_failures
        if failed and failed * 2 > calls:
            raise ModelInvalid(f"model {self.wiki.model}: failed on {failed} of {calls} "
                               f"pages; last error: {self._last_model_error}")
        if self._missing and self.options.command == "backfill":
            shown = ", ".join(repr(t) for t in self._missing[:5])
            more = f" and {len(self._missing) - 5} more" if len(self._missing) > 5 else ""
            raise PagesNotFound(f"backfill: no such article on {self.wiki.name}: "
                                f"{shown}{more}")

    def _start_progress(self) -> None:
        opts, res = self.options, self.result
        if opts.titles is None:
            self.progress.start(self.wiki.name, opts.command,
                                max(0, res.target - res.pool_before), tasks=True)
        else:
            self.progress.start(self.wiki.name, opts.command, len(opts.titles), tasks=False)

    def _finish_run(self, run_id: int | None) -> None:
        """Stop the stages, publish what is committed (a few seconds only after a signal),
        record the run. Each step's failure is logged; the run's first error is kept."""
        res, name = self.result, self.wiki.name
        self.progress.close()
        if self.stop.by_signal and res.status == "ok":
            res.status = "interrupted"
        # Do not wait for requests still in flight after a signal or an error: one stuck on a
        # partition would hold the end of the run for another full deadline.
        self._io.shutdown(wait=res.status == "ok" and not self.stop, cancel_futures=True)
        if self.workers:
            self.workers.close()
        try:
            self.target.close()
        except Exception as e:  # noqa: BLE001 - the ZooKeeper session may be gone
            log.warning("pool target close failed: %s", e, extra={"wiki": name})
        try:
            self._publish(STOP_PUBLISH if self.stop else None)
            res.pool_after = self.store.pool_size()
            self.metrics.gauge(M.POOL_SIZE, res.pool_after, wiki=name)
            if self.plan:
                res.topics = T.figures(self.plan, self.target)
                T.report(self.metrics, name, res.topics, "end")
        except Exception as e:  # noqa: BLE001 - report, keep the first error if any
            res.fail(e)
            log.error("final publish failed: %s", e, extra={"wiki": name})
        ev = res.events
        if res.status == "ok" and (ev.pending or ev.failed) and not res.error:
            sink = "EventGate" if self.cfg.events.type == "eventgate" else "events file"
            res.error = (f"{sink}: {ev.pending} events pending after the retries"
                         f"{f' ({ev.error})' if ev.error and ev.pending else ''}, "
                         f"{ev.failed} dead-lettered by this run (status shows them; "
                         "drift repairs)")
        res.seconds = time.monotonic() - self.started
        self.metrics.timing(M.RUN_DURATION, res.seconds * 1000.0, wiki=name)
        self.metrics.incr(M.RUNS, wiki=name, status=res.status)
        if run_id is not None:
            try:
                self.store.finish_run(run_id, res.status, res.stop_reason,
                                      dict(res.outcomes), res.pool_after)
            except Exception as e:  # noqa: BLE001 - the run's own outcome matters more
                log.error("could not record the run: %s", e, extra={"wiki": name})
        report_run(self.metrics, self.store, self.wiki, command=self.options.command,
                   target=res.target, dry_run=self.options.dry_run)

    def _publish(self, seconds: float | None = None) -> None:
        if self.options.dry_run:
            return
        deadline = None if seconds is None else time.monotonic() + seconds
        stats = self.publisher.drain(deadline=deadline)
        ev = self.result.events
        ev.sent += stats.sent
        ev.failed += stats.failed
        ev.pending = stats.pending
        ev.dead = stats.dead
        ev.error = stats.error or ev.error

    def _wait(self, fut: Future):
        """The result of an I/O future. After a signal, wait at most the stop grace: a
        request stuck on a partition must not hold the exit."""
        while not fut.done():
            left = self.stop.left(STOP_GRACE)
            if left == 0.0:
                raise Abandoned()
            futures.wait([fut], timeout=0.25 if left is None else min(0.25, left))
        return fut.result()

    def _io_call(self, fn: Callable, *args: object):
        return self._wait(self._io.submit(fn, *args))

    # ------------------------------------------------------------------ upkeep
    def upkeep(self) -> int:
        """Drop rows whose revision is no longer the page's latest; queue clear events."""
        self.result.upkeep_removed = upkeep(
            self.store, self.source, call=self._io_call, in_shard=self._in_shard,
            stopped=lambda: bool(self.lock.lost or self.stop), clear=self.events.clear,
            wiki=self.wiki.name, dry_run=self.options.dry_run, metrics=self.metrics)
        return self.result.upkeep_removed

    # ------------------------------------------------------------------ candidates
    def _batches(self) -> Iterator[select.Batch]:
        return select.batches(self.options, self.wiki.candidates, self.source, self.store,
                              self._size(), in_shard=self._in_shard, stopping=self._stopping,
                              topic_done=self._topic_done, prefetch=self._prefetched)

    def _topic_done(self, topic: str | None) -> bool:
        """Per-topic pools only: the topic is full, or a batch of it found nothing."""
        return bool(self.plan) and (topic in self.plan.exhausted
                                    or self.target.remaining(topic) <= 0)

    def _size(self) -> int:
        return self.options.batch_size or self.wiki.candidates.batch_size \
            or self.cfg.runner.batch_size

    def _in_shard(self, page_id: int) -> bool:
        """``--shard i/N`` owns the pages with ``page_id % N == i``. The sources filter
        already where they can; this check also covers candidates known by title only
        (after the fetch) and sources that cannot filter."""
        shard = self.options.shard
        return shard is None or shard[1] <= 1 or page_id % shard[1] == shard[0]

    def _prefetched(self, batches: Iterator[list[Candidate]]) -> Iterator[list[Candidate]]:
        """Ask the source for the next batch while this one is being evaluated."""
        fut = self._io.submit(next, batches, None)
        while True:
            batch = self._wait(fut)
            if batch is None:
                return
            fut = self._io.submit(next, batches, None)
            yield batch

    def _save_resume_point(self) -> None:
        last = select.resume_after(self._taken_ids, self._done_ids)
        if last:
            self.store.set_resume_point(select.resume_key(self.options), last)

    def _stopping(self) -> str:
        """The reason to stop taking new pages, or ''."""
        if self.lock.lost:
            return "lock_lost"
        if self.stop:
            return self.stop.reason
        mr = self.options.max_runtime or self.cfg.runner.max_runtime
        if mr is not None and time.monotonic() - self.started >= mr:
            return "max_runtime"
        if self.target.remaining() <= 0:
            return "target_reached"
        return ""

    def _limit_left(self) -> int | None:
        limit = self.options.limit
        return None if limit is None else max(0, limit - self._taken)

    def _loop(self) -> str:
        reason = self._stopping()
        if reason:
            return reason
        strategy = "titles" if self.options.titles is not None \
            else self.wiki.candidates.strategy
        for topic, batch in self._batches():
            self._topic = topic
            successes = self._run_batch(batch)
            if strategy == "allpages" and not self.options.dry_run:
                self._save_resume_point()
            reason = self._stopping() or ("limit_reached" if self._limit_left() == 0 else "")
            if reason:
                return reason
            if successes == 0 and strategy in ("search", "random"):
                log.info("a whole batch without success: candidates exhausted",
                         extra={"wiki": self.wiki.name, "topic": topic})
                if not (self.plan and topic is not None):
                    return "batch_without_success"
                T.exhausted(self.plan, self.target, topic, self.wiki.name)
                if len(self.plan.fill) == 1:
                    return "batch_without_success"
        return "titles_done" if self.options.titles is not None else "candidates_exhausted"

    # ------------------------------------------------------------------ one batch
    def _apply_criteria(self, chunk: list[Candidate], pages: list[PageData]) -> list[PageData]:
        """Record the outcome of every page a rule rejects; return the pages that pass."""
        revs = [p.rev_id for p in pages]
        out = screen(chunk, pages, self.store.revision_states(revs),
                     self.store.prior_submissions(revs), self.wiki.criteria,
                     force=self.options.force, now=self.clock(), in_shard=self._in_shard)
        self._missing.extend(out.missing)
        self._done_ids.update(out.elsewhere)
        for ev in out.rejected:
            self._record(ev)
        return list(out.passing)

    def _pool(self) -> WorkerPool:
        if self.workers is None:
            self.workers, self.workers_startup = start_workers(self.cfg, self.wiki,
                                                               self.options)
        return self.workers

    def _run_batch(self, batch: list[Candidate]) -> int:
        """Evaluate one batch; returns its number of successes.

        Page data is fetched by I/O threads, FETCH_AHEAD chunks ahead, while the workers
        recommend; the parent applies the criteria, dispatches, prunes and stores. It only
        blocks on a fetch when no worker has anything to do.
        """
        self._taken_ids, self._done_ids = [], set()
        todo = deque(batch[i:i + FETCH_CHUNK] for i in range(0, len(batch), FETCH_CHUNK))
        fetching: deque[tuple[list[Candidate], Future]] = deque()
        ready: deque[PageData] = deque()
        inflight: dict[int, PageData] = {}
        successes = 0

        def top_up() -> None:
            while todo and len(fetching) < FETCH_AHEAD:
                chunk = todo.popleft()
                left = self._limit_left()
                if left is not None:
                    chunk = chunk[:left]
                    if not chunk:
                        todo.clear()
                        return
                self._taken += len(chunk)
                self._taken_ids.extend(c.page_id or 0 for c in chunk)
                fetching.append((chunk, self._io.submit(self.source.fetch,
                                                        [c.title for c in chunk])))

        def feed() -> None:
            while not self._stopping():
                top_up()
                if not ready:
                    if not fetching:
                        return
                    chunk, fut = fetching[0]
                    if not fut.done() and inflight:
                        return  # the workers are busy; collect their results first
                    fetching.popleft()
                    ready.extend(self._apply_criteria(chunk, self._wait(fut)))
                    continue
                pool = self._pool()
                if not pool.idle:
                    return
                page = ready.popleft()
                self._key += 1
                inflight[self._key] = page
                pool.submit(Task(self._key, page.title, page.page_id, page.rev_id,
                                 page.wikitext))

        feed()
        while inflight or self.lookups:
            if self.stop.left(STOP_GRACE) == 0.0:
                raise Abandoned(len(inflight))  # uncommitted: the next run has them
            waiting_io = (bool(fetching) and not ready) or bool(self.lookups)
            results = self.workers.wait(timeout=0.01 if waiting_io else 0.5) \
                if self.workers and inflight else []
            feed()  # give idle workers their next page before the parent's own work
            for res in results:
                successes += self._finish(inflight.pop(res.key), res)
            successes += self._drain_post(block=not inflight)
            feed()
        for _, fut in fetching:
            fut.cancel()
        return successes

    # ------------------------------------------------------------------ one page
    def _finish(self, page: PageData, res: TaskResult) -> int:
        """A worker's answer: failures are recorded now; a recommendation with links waits
        for its target and revision lookups, done for a group of pages at once by an I/O
        thread (``self.lookups``)."""
        name = self.wiki.name
        self._model_calls += 1
        self.metrics.timing(M.MODEL_TIME, res.seconds * 1000.0, wiki=name)
        if not res.ok or not isinstance(res.recommendation, dict):
            self.metrics.incr(M.ERRORS, wiki=name, kind="worker")
            self._record(Evaluation(page.title, C.OTHER, page.page_id, page.rev_id,
                                    detail=f"recommendation failed: {res.error}"), error=True)
            self._model_failures += 1
            self._last_model_error = res.error
            if self._model_failures >= MAX_MODEL_FAILURES \
                    and self._model_failures * 2 > self._model_calls:
                raise ModelInvalid(f"model {self.wiki.model}: failed on "
                                   f"{self._model_failures} of {self._model_calls} pages; "
                                   f"last error: {res.error}")
            return 0
        if not res.recommendation.get("links"):
            return self._complete(page, res.recommendation, {}, None)
        self.lookups.add(page, res.recommendation)
        return 0

    def _needed_links(self) -> int:
        return 1 if self.options.force else max(1, self.wiki.criteria.minimum_links_per_task)

    def _drain_post(self, block: bool) -> int:
        """Complete the recommendations whose lookups are done (all of them if ``block``)."""
        return sum(self._complete(page, rec, targets, latest.get(page.page_id),
                                  found.get(page.page_id, set()))
                   for page, rec, (targets, latest, found) in self.lookups.answered(block))

    def _complete(self, page: PageData, rec: dict, targets: dict, latest: int | None,
                  found: set | frozenset = frozenset()) -> int:
        """Decide, then store the row and its event (one transaction) within the target
        (per topic: the page's topics in the index, and the one it was found under)."""
        name, crit = self.wiki.name, self.wiki.criteria
        rejected = self.store.rejected_targets(page.page_id, crit.rejection_limit) \
            if rec.get("links") else set()
        d = decide(page, rec, targets, latest, rejected, crit, force=self.options.force,
                   now=self.clock())
        if d.store_null and not self.options.dry_run:
            with self.metrics.timer(M.DB_TIME, wiki=name):
                self.store.save_null(page.page_id, page.rev_id, page.title, self.events.clear)
        if not d.success:
            self._record(d.evaluation)
            return 0
        slot = self.target.claim(found, self._topic)
        if slot is None:
            log.info("target reached by others; result dropped",
                     extra={"wiki": name, "title": page.title, "page_id": page.page_id})
            return 0
        if not self.options.dry_run:
            try:
                with self.metrics.timer(M.DB_TIME, wiki=name):
                    self.store.save_recommendation(page.page_id, page.rev_id, page.title,
                                                   d.evaluation.recommendation,
                                                   self.events.set(page.page_id, page.title),
                                                   topics=slot.topics)
            except BaseException:
                self.target.release(slot)
                raise
        self.target.confirm(slot)  # after the commit: the row now counts in the pool size
        self._record(d.evaluation)
        return 1

    def _record(self, ev: Evaluation, error: bool = False) -> None:
        if ev.page_id:
            self._done_ids.add(ev.page_id)
        self.result.outcomes[ev.outcome] += 1
        self.progress.evaluated(ev.outcome)
        self.metrics.incr(M.OUTCOME, wiki=self.wiki.name, outcome=ev.outcome,
                          topic=self._topic or "")
        (log.warning if error else log.info)("evaluated", extra={
            "wiki": self.wiki.name, "title": ev.title, "outcome": ev.outcome,
            "topic": self._topic,
            "page_id": ev.page_id, "rev_id": ev.rev_id, "detail": ev.detail})


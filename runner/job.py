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
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

from model.exitcodes import ExitCode
from runner import criteria as C
from runner import metric_names as M
from runner.config import Config, WikiConfig
from runner.coordination import LocalPoolTarget, PoolTarget, UnlimitedTarget
from runner.events import EventFactory, Publisher, PublishStats
from runner.lock import WikiLock
from runner.metrics import Metrics
from runner.prune import prune
from runner.records import Candidate, Evaluation, PageData
from runner.sources import TimedSource
from runner.store import Store
from runner.workers import DEFAULT_RECOMMENDER, Task, TaskResult, WorkerPool, available_cpus

log = logging.getLogger("runner.job")

# Exit codes of the CLI: the project's one table (model/exitcodes.py, docs/runner.md).
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = ExitCode.OK, ExitCode.FAILURE, ExitCode.USAGE
EXIT_LOCK_HELD, EXIT_LOCK_LOST = ExitCode.LOCK_HELD, ExitCode.LOCK_LOST

FETCH_CHUNK = 50  # titles per fetch (the Action API's limit without apihighlimits)
FETCH_AHEAD = 3  # chunks fetched ahead of the workers
IO_THREADS = 3  # concurrent source requests (fetches, lookups, next candidate batch)
MAX_MODEL_FAILURES = 25  # at least this many, and most model calls failed: stop the run
# Recommendations wait for their red-link and revision lookups in groups: one request each
# for up to LOOKUP_BATCH pages (instead of two per page), sent once the group is full, has
# waited LOOKUP_WAIT seconds, or the workers have nothing else to do.
LOOKUP_BATCH, LOOKUP_WAIT = 25, 0.05


def datasets_url(cfg: Config, wiki: str) -> str:
    """The store's MySQL URL with its password, for ``model.open_model(..., store=URL)``.

    It goes to the worker processes through their pipe only; it is never logged.
    """
    url = urlsplit(cfg.store.location(wiki))
    password = cfg.store.password.reveal() if cfg.store.password else ""
    if password:
        user = url.username or "root"
        host = url.hostname or "127.0.0.1"
        port = f":{url.port}" if url.port else ""
        url = url._replace(netloc=f"{quote(user)}:{quote(password, safe='')}@{host}{port}")
    return urlunsplit(url)


@dataclass(frozen=True)
class RunOptions:
    command: str = "refresh"  # refresh | backfill | revalidate
    target: int | None = None  # overrides the wiki's pool_target
    dry_run: bool = False  # evaluate and recommend, write nothing
    workers: int | None = None
    max_runtime: float | None = None
    shard: tuple[int, int] | None = None
    batch_size: int | None = None
    limit: int | None = None  # candidates to evaluate at most
    force: bool = False  # backfill --force: skip the criteria that may be skipped
    titles: tuple[str, ...] | None = None  # backfill: exactly these pages
    topic: str | None = None
    recommender: str = DEFAULT_RECOMMENDER

    @property
    def shard_label(self) -> str:
        return f"{self.shard[0]}/{self.shard[1]}" if self.shard else ""


@dataclass
class RunResult:
    wiki: str
    status: str = "ok"  # ok | lock_held | lock_lost | interrupted | failed
    stop_reason: str = ""
    outcomes: Counter = field(default_factory=Counter)
    pool_before: int = 0
    pool_after: int = 0
    target: int = 0
    upkeep_removed: int = 0
    seconds: float = 0.0
    events: PublishStats = field(default_factory=PublishStats)
    error: str = ""
    dry_run: bool = False

    @property
    def evaluated(self) -> int:
        return sum(self.outcomes.values())

    @property
    def exit_code(self) -> int:
        return {"ok": EXIT_OK, "lock_held": EXIT_LOCK_HELD,
                "lock_lost": EXIT_LOCK_LOST}.get(self.status, EXIT_FAILURE)

    def as_dict(self) -> dict:
        return {"wiki": self.wiki, "status": self.status, "stop_reason": self.stop_reason,
                "outcomes": dict(sorted(self.outcomes.items())), "evaluated": self.evaluated,
                "pool_before": self.pool_before, "pool_after": self.pool_after,
                "target": self.target, "upkeep_removed": self.upkeep_removed,
                "seconds": round(self.seconds, 3), "events_sent": self.events.sent,
                "events_failed": self.events.failed, "events_pending": self.events.pending,
                "dry_run": self.dry_run, "error": self.error}


class StopFlag:
    """Set from a signal handler; read between pages."""

    def __init__(self) -> None:
        self.reason = ""

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason

    def __bool__(self) -> bool:
        return bool(self.reason)


class WikiJob:
    """One run of one wiki over already-opened adapters (the CLI opens and closes them)."""

    def __init__(self, cfg: Config, wiki: WikiConfig, *, source: TimedSource, store: Store,
                 publisher: Publisher, metrics: Metrics, lock: WikiLock,
                 options: RunOptions, stop: StopFlag | None = None,
                 pool_target: Callable[[int, int], PoolTarget] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg, self.wiki, self.options = cfg, wiki, options
        self.source, self.store, self.publisher = source, store, publisher
        self.metrics, self.lock, self.clock = metrics, lock, clock
        self.stop = stop or StopFlag()
        self.make_target = pool_target or LocalPoolTarget
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
        self._post: dict[Future, list[tuple[PageData, dict]]] = {}  # groups in lookup
        self._waiting: list[tuple[PageData, dict]] = []  # the next group
        self._waiting_since = 0.0
        self._taken_ids: list[int] = []  # page ids taken in the current batch, in order
        self._done_ids: set[int] = set()  # page ids with an outcome

    # ------------------------------------------------------------------ top level
    def run(self) -> RunResult:
        res, opts, name = self.result, self.options, self.wiki.name
        run_id = None if opts.dry_run else self.store.start_run(opts.command, opts.shard_label)
        try:
            self._publish()
            if opts.command == "refresh":
                self.upkeep()
            res.pool_before = self.store.pool_size()
            self.metrics.gauge(M.POOL_SIZE, res.pool_before, wiki=name)
            if opts.titles is None:
                res.target = self.wiki.pool_target if opts.target is None else opts.target
                self.target = self.make_target(res.target, res.pool_before)
            res.stop_reason = self._loop()
            if self.lock.lost:
                res.status, res.stop_reason = "lock_lost", "lock_lost"
            elif self.stop.reason in ("SIGTERM", "SIGINT"):
                res.status = "interrupted"
        except Exception as e:
            res.status, res.error = "failed", f"{type(e).__name__}: {e}"
            self.metrics.incr(M.ERRORS, wiki=name, kind="run")
            log.exception("run failed", extra={"wiki": name})
        finally:
            self._io.shutdown(wait=True, cancel_futures=True)
            if self.workers:
                self.workers.close()
            self.target.close()
            try:
                self._publish()
                res.pool_after = self.store.pool_size()
                self.metrics.gauge(M.POOL_SIZE, res.pool_after, wiki=name)
            except Exception as e:  # noqa: BLE001 - report, keep the first error if any
                if res.status == "ok":
                    res.status, res.error = "failed", f"{type(e).__name__}: {e}"
                log.exception("final publish failed", extra={"wiki": name})
            res.seconds = time.monotonic() - self.started
            self.metrics.timing(M.RUN_DURATION, res.seconds * 1000.0, wiki=name)
            self.metrics.incr(M.RUNS, wiki=name, status=res.status)
            if run_id is not None:
                try:
                    self.store.finish_run(run_id, res.status, res.stop_reason,
                                          dict(res.outcomes), res.pool_after)
                except Exception:  # noqa: BLE001 - the run's own outcome matters more
                    log.exception("could not record the run", extra={"wiki": name})
        return res

    def _publish(self) -> None:
        if self.options.dry_run:
            return
        stats = self.publisher.drain()
        ev = self.result.events
        ev.sent += stats.sent
        ev.failed += stats.failed
        ev.pending = stats.pending
        ev.error = stats.error or ev.error

    # ------------------------------------------------------------------ upkeep
    def upkeep(self) -> int:
        """Drop rows whose revision is no longer the page's latest; queue clear events."""
        removed = 0
        for batch in self.store.iter_pooled_pages(500):
            if self.lock.lost:
                break
            batch = [(p, rev) for p, rev in batch if self._in_shard(p)]  # each shard its own
            latest = self.source.latest_revisions([p for p, _ in batch])
            stale = [p for p, rev in batch if latest.get(p) != rev]
            if not stale:
                continue
            titles = self.store.pool_titles(stale)
            missing = [p for p in stale if p not in titles]
            if missing:
                titles.update(self.source.page_titles(missing))
            for p in stale:
                log.info("pooled page changed or gone: row removed", extra={
                    "wiki": self.wiki.name, "page_id": p, "title": titles.get(p),
                    "outcome": "upkeep_removed", "dry_run": self.options.dry_run})
            if not self.options.dry_run:
                with self.metrics.timer(M.DB_TIME, wiki=self.wiki.name):
                    self.store.remove_pages([(p, titles.get(p)) for p in stale],
                                            self.events.clear)
            removed += len(stale)
        self.result.upkeep_removed = removed
        return removed

    # ------------------------------------------------------------------ candidates
    def _batches(self) -> Iterator[tuple[str | None, list[Candidate]]]:
        opts = self.options
        size = opts.batch_size or self.wiki.candidates.batch_size or self.cfg.runner.batch_size
        if opts.titles is not None:
            titles = list(opts.titles)
            for i in range(0, len(titles), size):
                yield None, [Candidate(t) for t in titles[i:i + size]]
            return
        strategy = self.wiki.candidates.strategy
        topics: list[str | None] = [opts.topic] if opts.topic else (
            list(self.wiki.candidates.topics) if strategy == "search" else [])
        for topic in topics or [None]:
            resume = self.store.resume_point(self._resume_key()) \
                if strategy == "allpages" else None
            for batch in self._prefetched(self.source.candidates(
                    strategy, batch_size=size, topic=topic, resume_from=resume,
                    shard=opts.shard)):
                batch = [c for c in batch if c.page_id is None or self._in_shard(c.page_id)]
                if not batch:
                    continue  # another shard's pages only (a source that cannot filter)
                yield topic, batch
                if self._stopping():
                    return
            if strategy == "allpages" and not opts.dry_run and not self._stopping():
                self.store.set_resume_point(self._resume_key(), None)  # walk done: restart

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
            batch = fut.result()
            if batch is None:
                return
            fut = self._io.submit(next, batches, None)
            yield batch

    def _save_resume_point(self) -> None:
        """Resume after the longest run of taken pages that all got an outcome."""
        last = 0
        for pid in self._taken_ids:
            if not pid or pid not in self._done_ids:
                break
            last = pid
        if last:
            self.store.set_resume_point(self._resume_key(), last)

    def _resume_key(self) -> str:
        return "allpages" + (f":{self.options.shard_label}" if self.options.shard else "")

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
        exhausted_topic: str | None | bool = False
        for topic, batch in self._batches():
            if exhausted_topic is not False and topic == exhausted_topic:
                continue
            successes = self._run_batch(batch)
            if strategy == "allpages" and not self.options.dry_run:
                self._save_resume_point()
            reason = self._stopping() or ("limit_reached" if self._limit_left() == 0 else "")
            if reason:
                return reason
            if successes == 0 and strategy in ("search", "random"):
                log.info("a whole batch without success: candidates exhausted",
                         extra={"wiki": self.wiki.name, "topic": topic})
                if len(self.wiki.candidates.topics) <= 1 or self.options.topic:
                    return "batch_without_success"
                exhausted_topic = topic
        return "titles_done" if self.options.titles is not None else "candidates_exhausted"

    # ------------------------------------------------------------------ one batch
    def _apply_criteria(self, chunk: list[Candidate], pages: list[PageData]) -> list[PageData]:
        """Record the outcome of every page a rule rejects; return the pages that pass."""
        found = {p.title for p in pages}
        for c in chunk:
            if c.title not in found and not any(_same(c.title, t) for t in found):
                self._record(Evaluation(c.title, C.OTHER, c.page_id,
                                        detail="page not found or not an article"))
        revs = [p.rev_id for p in pages]
        states = self.store.revision_states(revs)
        subs = self.store.prior_submissions(revs)
        now = self.clock()
        passing = []
        for p in pages:
            if not self._in_shard(p.page_id):
                self._done_ids.add(p.page_id)  # another shard's page: no outcome here
                continue
            if p.namespace != 0 or p.is_redirect:
                self._record(Evaluation(p.title, C.OTHER, p.page_id, p.rev_id,
                                        detail="not an article (namespace or redirect)"))
                continue
            state = C.StoreState(p.rev_id in states, states.get(p.rev_id, False),
                                 p.rev_id in subs)
            verdict = C.evaluate(p, self.wiki.criteria, state, force=self.options.force,
                                 now=now)
            if verdict.outcome:
                self._record(Evaluation(p.title, verdict.outcome, p.page_id, p.rev_id,
                                        detail=verdict.detail))
            else:
                passing.append(p)
        return passing

    def _pool(self) -> WorkerPool:
        if self.workers is None:
            crit = self.wiki.criteria
            options = {"threshold": crit.minimum_link_score,
                       "max_recommendations": crit.maximum_links_per_task,
                       "excluded_sections": tuple(crit.excluded_sections)}
            if self.wiki.model_datasets == "store":
                options["datasets_url"] = datasets_url(self.cfg, self.wiki.name)
            n = self.options.workers or self.cfg.runner.workers or available_cpus()
            self.workers = WorkerPool(self.wiki.model, workers=n,
                                      page_timeout=self.cfg.runner.page_timeout,
                                      options=options, recommender=self.options.recommender)
            t0 = time.monotonic()
            self.workers.start()
            self.workers_startup = time.monotonic() - t0
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
                    ready.extend(self._apply_criteria(chunk, fut.result()))
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
        while inflight or self._post or self._waiting:
            waiting_io = (bool(fetching) and not ready) or bool(self._post or self._waiting)
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
        thread (``self._waiting``, then ``self._post``)."""
        name = self.wiki.name
        self._model_calls += 1
        self.metrics.timing(M.MODEL_TIME, res.seconds * 1000.0, wiki=name)
        if not res.ok or not isinstance(res.recommendation, dict):
            self.metrics.incr(M.ERRORS, wiki=name, kind="worker")
            self._record(Evaluation(page.title, C.OTHER, page.page_id, page.rev_id,
                                    detail=f"recommendation failed: {res.error}"), error=True)
            self._model_failures += 1
            if self._model_failures >= MAX_MODEL_FAILURES \
                    and self._model_failures * 2 > self._model_calls:
                raise RuntimeError(f"the model failed on {self._model_failures} of "
                                   f"{self._model_calls} pages; last error: {res.error}")
            return 0
        if not res.recommendation.get("links"):
            return self._complete(page, res.recommendation, {}, None)
        if not self._waiting:
            self._waiting_since = time.monotonic()
        self._waiting.append((page, res.recommendation))
        if len(self._waiting) >= LOOKUP_BATCH:
            self._send_lookups()
        return 0

    def _send_lookups(self) -> None:
        group, self._waiting = self._waiting, []
        if group:
            self._post[self._io.submit(self._lookup, group)] = group

    def _needed_links(self) -> int:
        return 1 if self.options.force else max(1, self.wiki.criteria.minimum_links_per_task)

    def _lookup(self, group: list[tuple[PageData, dict]]) -> tuple[dict, dict[int, int]]:
        """(I/O thread) Existence of the link targets of a group of recommendations and,
        for the pages that can still succeed, their latest revision (SPEC §5: it must
        still be the one recommended for)."""
        targets = self.source.targets({x["link_target"] for _, rec in group
                                       for x in rec["links"]})
        needed = [page.page_id for page, rec in group
                  if len(rec["links"]) >= self._needed_links()]
        latest = self.source.latest_revisions(needed) if needed else {}
        return targets, latest

    def _drain_post(self, block: bool) -> int:
        """Complete the recommendations whose lookups are done (all of them if ``block``)."""
        if self._waiting and (block or time.monotonic() - self._waiting_since >= LOOKUP_WAIT):
            self._send_lookups()
        successes = 0
        for fut in list(self._post):
            if block or fut.done():
                group = self._post.pop(fut)
                targets, latest = fut.result()
                for page, rec in group:
                    successes += self._complete(page, rec, targets,
                                                latest.get(page.page_id))
        return successes

    def _complete(self, page: PageData, rec: dict, targets: dict, latest: int | None) -> int:
        """Prune, check the revision, store the row and its event (one transaction)."""
        name, crit = self.wiki.name, self.wiki.criteria
        links = list(rec.get("links") or [])
        rejected = self.store.rejected_targets(page.page_id, crit.rejection_limit) \
            if links else set()
        pr = prune(links, targets, rejected, crit, force=self.options.force)
        if pr.outcome != C.SUCCESS:
            if pr.remember_unavailable and not self.options.dry_run:
                with self.metrics.timer(M.DB_TIME, wiki=name):
                    self.store.save_null(page.page_id, page.rev_id, page.title,
                                         self.events.clear)
            self._record(Evaluation(page.title, pr.outcome, page.page_id, page.rev_id,
                                    detail=pr.detail))
            return 0
        if latest != page.rev_id:
            self._record(Evaluation(page.title, C.OTHER, page.page_id, page.rev_id,
                                    detail=f"page changed meanwhile (now revision {latest})"))
            return 0
        slot = self.target.claim()
        if slot is None:
            log.info("target reached by others; result dropped",
                     extra={"wiki": name, "title": page.title, "page_id": page.page_id})
            return 0
        data = {"links": list(pr.links),
                "meta": {**(rec.get("meta") or {}), "task_timestamp": int(self.clock())}}
        if not self.options.dry_run:
            try:
                with self.metrics.timer(M.DB_TIME, wiki=name):
                    self.store.save_recommendation(page.page_id, page.rev_id, page.title, data,
                                                   self.events.set(page.page_id, page.title))
            except BaseException:
                self.target.release(slot)
                raise
        self.target.confirm(slot)  # after the commit: the row now counts in the pool size
        self._record(Evaluation(page.title, C.SUCCESS, page.page_id, page.rev_id,
                                recommendation=data, detail=pr.detail))
        return 1

    def _record(self, ev: Evaluation, error: bool = False) -> None:
        if ev.page_id:
            self._done_ids.add(ev.page_id)
        self.result.outcomes[ev.outcome] += 1
        self.metrics.incr(M.OUTCOME, wiki=self.wiki.name, outcome=ev.outcome)
        (log.warning if error else log.info)("evaluated", extra={
            "wiki": self.wiki.name, "title": ev.title, "outcome": ev.outcome,
            "page_id": ev.page_id, "rev_id": ev.rev_id, "detail": ev.detail})


def _same(a: str, b: str) -> bool:
    na = a.replace("_", " ").strip()
    nb = b.replace("_", " ").strip()
    return na[:1].upper() + na[1:] == nb[:1].upper() + nb[1:]

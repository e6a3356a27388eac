"""Repair tools (SPEC §5): revalidate stored rows, and fix drift between table and search.

``revalidate`` picks rows with data that fail a check (made before a date, by another model,
with a link scoring below X, or all), removes them with a clear event, and evaluates those
pages again (like ``backfill``): what still qualifies comes back with a set event.

``drift`` reconciles the table with the search index itself where the wiki has CirrusSearch
(runner/search.py: tagged pages without a row, rows whose page is not tagged), elsewhere
with what the index was told and ACKNOWLEDGED (``addlink_acked``, written when the sink
accepts an event; ``addlink_pool`` is written with the row, before delivery, so it cannot
see an event that was never delivered). It first drains the outbox; then a tag without a
data row gets a clear event, a data row without a tag a set event (dead-lettered events
included: they are then dropped); pages with events still pending (and, against the index,
acknowledged within its lag) are left alone. ``--resend`` re-announces every pooled page
(after a search index rebuild); ``--clear`` removes rows without a tag instead.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from runner import metric_names as M
from runner import search
from runner.app import Adapters, locked
from runner.config import Config, ConfigError
from runner.job import RunOptions, RunResult, StopFlag, WikiJob
from runner.lock import WikiLock
from runner.metrics import Metrics
from runner.store import StoredRow

log = logging.getLogger("runner.repair")


def parse_when(text: str, now: float | None = None) -> float:
    """'2024-05-01', '2024-05-01T12:00:00Z', a unix time, or an age such as '30d', '12h'."""
    now = time.time() if now is None else now
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip())
    if m:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        return now - float(m.group(1)) * unit
    if re.fullmatch(r"\d{9,}", text.strip()):
        return float(text)
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--older-than: cannot read {text!r} (use 2024-05-01, a unix time "
                         "or an age like 30d)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@dataclass(frozen=True)
class RevalidateSpec:
    older_than: float | None = None  # task_timestamp before this unix time
    checksums: dict | None = None  # rows made with other dataset checksums than these
    score_below: float | None = None  # rows with any link scoring below this
    all: bool = False
    delete_null: bool = False  # also forget NULL rows (criteria became more permissive)
    limit: int | None = None


def why_stale(row: StoredRow, spec: RevalidateSpec) -> str:
    """The first check a row fails, or '' when it is still good."""
    data = row.data or {}
    meta = data.get("meta") or {}
    if spec.all:
        return "all"
    if spec.checksums is not None and (meta.get("dataset_checksums") or {}) != spec.checksums:
        return "checksum_mismatch"
    if spec.older_than is not None and float(meta.get("task_timestamp") or 0) < spec.older_than:
        return "older_than"
    if spec.score_below is not None:
        scores = [float(x.get("score", 0)) for x in data.get("links") or []]
        if not scores or min(scores) < spec.score_below:
            return "score_below"
    return ""


def revalidate(cfg: Config, wiki: str, spec: RevalidateSpec, options: RunOptions,
               metrics: Metrics, stop: StopFlag | None = None) -> RunResult:
    def body(lock: WikiLock) -> RunResult:
        from contextlib import ExitStack

        with ExitStack() as stack:
            a = Adapters(cfg, wiki, metrics, stack)
            picked: list[tuple[StoredRow, str]] = []
            for row in a.store.iter_data_rows():
                reason = why_stale(row, spec)
                if reason:
                    picked.append((row, reason))
                    if spec.limit is not None and len(picked) >= spec.limit:
                        break
            nulls = list(a.store.iter_null_rows()) if spec.delete_null else []
            pages = [r.page_id for r, _ in picked]
            titles = a.store.pool_titles(pages)
            titles.update(a.source.page_titles([p for p in pages if p not in titles]))
            reasons = Counter(reason for _, reason in picked)
            for row, reason in picked:
                log.info("row to revalidate", extra={
                    "wiki": wiki, "page_id": row.page_id, "rev_id": row.rev_id,
                    "title": titles.get(row.page_id), "reason": reason,
                    "dry_run": options.dry_run})
            if options.dry_run:
                res = RunResult(wiki, stop_reason="dry_run", dry_run=True)
                res.outcomes.update({f"would_revalidate_{k}": v for k, v in reasons.items()})
                if nulls:
                    res.outcomes["would_delete_null_row"] = len(nulls)
                return res
            for page, rev in nulls:
                a.store.delete_null_row(page, rev)
            a.store.remove_pages([(p, titles.get(p)) for p in pages], a.events.clear)
            redo = tuple(dict.fromkeys(titles[p] for p in pages if p in titles))
            job = WikiJob(cfg, cfg.wiki(wiki), source=a.source, store=a.store,
                          publisher=a.publisher, metrics=metrics, lock=lock,
                          options=RunOptions(command="revalidate", titles=redo,
                                             force=options.force, workers=options.workers,
                                             recommender=options.recommender,
                                             progress=options.progress),
                          stop=stop)
            res = job.run()
            res.outcomes.update({f"revalidated_{k}": v for k, v in reasons.items()})
            if nulls:
                res.outcomes["deleted_null_row"] = len(nulls)
            return res

    return locked(cfg, wiki, options, metrics, body)


def drift(cfg: Config, wiki: str, *, resend: bool, options: RunOptions,
          metrics: Metrics, source: str | None = None, clear: bool = False) -> RunResult:
    """Reconcile the table with the search index (``source`` "search", the default where the
    wiki has CirrusSearch) or with the acknowledged-event record ("record", elsewhere).

    Tags without a row get a clear event. Rows without a tag get a set event, or with
    ``clear`` are removed (the index is the truth: production's ``--db-table`` fix);
    ``resend`` announces every pooled page again (after an index rebuild). The counts found
    go to the metrics (``addlink_drift_pages``) before any repair."""
    def body(lock: WikiLock) -> RunResult:
        from contextlib import ExitStack

        res = RunResult(wiki, stop_reason="drift", dry_run=options.dry_run)
        with ExitStack() as stack:
            a = Adapters(cfg, wiki, metrics, stack)
            if not options.dry_run:
                a.publisher.drain()  # what can be delivered first; the rest stays pending
            indexed = search.has_index(a.source)
            by = source or ("search" if indexed else "record")
            if by == "search" and not indexed:
                raise ConfigError(f"drift --source search: {wiki} has no CirrusSearch "
                                  "(hasrecommendation:link); use --source record")
            rows = {r.page_id: r.rev_id for r in a.store.iter_data_rows()}
            pending, dead = a.store.pending_pages(), a.store.dead_letter_pages()
            if by == "search":
                found = search.drift(a.source, a.store, cfg.wiki(wiki).source.search_lag)
                to_clear, missing = found.tag_without_row, found.row_without_tag
                res.outcomes["settling"] = found.settling
            else:
                entries = {p: t for p, _, t in a.store.iter_pool_entries()}
                acked = {p: t for p, tagged, t in a.store.iter_acked() if tagged}
                # addlink_pool entries without a row too: stores from before addlink_acked
                to_clear = {p: t for p, t in {**entries, **acked}.items()
                            if p not in rows and p not in pending}
                missing = [p for p in rows if p not in pending and p not in acked]
            for kind, n in (("tag_without_row", len(to_clear)),
                            ("row_without_tag", len(missing))):
                res.outcomes[kind] = n
                metrics.gauge(M.DRIFT, n, wiki=wiki, source=by, kind=kind)
            removed = missing if clear else []
            to_set = [p for p in rows if p not in pending] if resend else \
                ([] if clear else missing)
            titles = a.store.pool_titles(to_set)
            titles.update(a.source.page_titles([p for p in to_set if p not in titles]))
            unknown = [p for p in to_set if p not in titles]
            res.outcomes["dead_letters"] = len(dead)
            res.outcomes.update({"clear": len(to_clear) + len(removed),
                                 "set": len(to_set) - len(unknown), "no_title": len(unknown)})
            for p in unknown:
                log.warning("row without a resolvable title: cannot announce it",
                            extra={"wiki": wiki, "page_id": p})
            log.info("drift", extra={"wiki": wiki, "source": by, **res.outcomes})
            if options.dry_run:
                return res
            now = time.time()
            a.store.forget_dead_letters()  # their pages are reconciled right here
            a.store.forget_pool_entries(to_clear)
            if removed:
                a.store.remove_pages([(p, None) for p in removed], a.events.clear)
            a.store.queue_events(
                [(p, a.events.clear(p, t, now)) for p, t in to_clear.items()]
                + [(p, a.events.set(p, titles[p], now)) for p in to_set if p in titles],
                pool=[(p, rows[p], titles[p]) for p in to_set if p in titles])
            stats = a.publisher.drain()
            res.events = stats
            res.pool_after = res.pool_before = a.store.pool_size()
        return res

    return locked(cfg, wiki, options, metrics, body)

"""Pool upkeep, the first thing a refresh does: drop the rows of pages edited since.

SPEC §5: a task must be for the page's latest revision. A pooled row whose page has a newer
revision, or is gone, is removed with a "clear" event for the search index, before the run
counts the pool and fills it. Each shard checks its own pages only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from runner import metric_names as M
from runner.metrics import Metrics
from runner.store import Store

log = logging.getLogger("runner.job")  # a run's records, under the one name operators filter on


def upkeep(store: Store, source, *, call: Callable, in_shard: Callable[[int], bool],
           stopped: Callable[[], bool], clear: Callable, wiki: str, dry_run: bool,
           metrics: Metrics) -> int:
    """Rows removed (or, in a dry run, that would be). ``call(fn, *args)`` runs a source
    request the way the run waits for one (bounded after a signal); ``clear`` makes a
    page's clear event; ``stopped`` ends the walk early (a signal, the lock lost)."""
    removed = 0
    for batch in store.iter_pooled_pages(500):
        if stopped():
            break
        batch = [(p, rev) for p, rev in batch if in_shard(p)]
        latest = call(source.latest_revisions, [p for p, _ in batch])
        stale = [p for p, rev in batch if latest.get(p) != rev]
        if not stale:
            continue
        titles = store.pool_titles(stale)
        missing = [p for p in stale if p not in titles]
        if missing:
            titles.update(call(source.page_titles, missing))
        for p in stale:
            log.info("pooled page changed or gone: row removed", extra={
                "wiki": wiki, "page_id": p, "title": titles.get(p),
                "outcome": "upkeep_removed", "dry_run": dry_run})
        if not dry_run:
            with metrics.timer(M.DB_TIME, wiki=wiki):
                store.remove_pages([(p, titles.get(p)) for p in stale], clear)
        removed += len(stale)
    return removed

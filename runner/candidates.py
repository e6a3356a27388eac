"""The select stage: the batches of candidates a run evaluates, in order.

A backfill of named pages evaluates exactly those titles. Otherwise the source's strategy
gives the candidates (SPEC §5: search per topic, random, or the allpages walk), one topic
after another where per-topic pools are on, each shard keeping its own pages. The allpages
walk resumes where the last run's longest run of finished pages ended, and starts again from
the beginning once it has gone through the whole wiki.

The caller decides when to stop (``stopping``) and when a topic is done (``topic_done``),
and how the next batch is fetched while this one is evaluated (``prefetch``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from runner.config import CandidatesSection
from runner.records import Candidate
from runner.run import RunOptions
from runner.store import Store

Batch = tuple[str | None, list[Candidate]]  # (topic or None, candidates)


def resume_key(options: RunOptions) -> str:
    """The allpages walk's resume point is one per shard: each walks its own pages."""
    return "allpages" + (f":{options.shard_label}" if options.shard else "")


def resume_after(taken: Iterable[int], done: set[int]) -> int:
    """The page id to resume the walk after: the last of the longest leading run of taken
    pages that all got an outcome (0: none). A page still in flight at a stop, or a title
    taken without its id, ends the run, so the next walk evaluates it again."""
    last = 0
    for page_id in taken:
        if not page_id or page_id not in done:
            break
        last = page_id
    return last


def batches(options: RunOptions, candidates: CandidatesSection, source, store: Store,
            size: int, *, in_shard: Callable[[int], bool], stopping: Callable[[], str],
            topic_done: Callable[[str | None], bool],
            prefetch: Callable[[Iterator[list[Candidate]]], Iterator[list[Candidate]]],
            ) -> Iterator[Batch]:
    """The run's batches of at most ``size`` candidates, each with its topic."""
    if options.titles is not None:
        titles = list(options.titles)
        for i in range(0, len(titles), size):
            yield None, [Candidate(t) for t in titles[i:i + size]]
        return
    strategy = candidates.strategy
    topics: list[str | None] = [options.topic] if options.topic else (
        list(candidates.topics) if strategy == "search" else [])
    for topic in topics or [None]:
        if topic_done(topic):
            continue  # full already
        resume = store.resume_point(resume_key(options)) if strategy == "allpages" else None
        for batch in prefetch(source.candidates(strategy, batch_size=size, topic=topic,
                                                resume_from=resume, shard=options.shard)):
            batch = [c for c in batch if c.page_id is None or in_shard(c.page_id)]
            if not batch:
                continue  # another shard's pages only (a source that cannot filter)
            yield topic, batch
            if stopping():
                return
            if topic_done(topic):
                break  # this topic is done: the next one
        if strategy == "allpages" and not options.dry_run and not stopping():
            store.set_resume_point(resume_key(options), None)  # walk done: restart

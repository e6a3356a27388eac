"""Wiki sources: where candidates and page data come from (Action API or XML dump)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from runner import metric_names as M
from runner.config import WikiConfig
from runner.metrics import Metrics
from runner.records import Candidate, PageData, TargetInfo


class WikiSource(Protocol):
    """The narrow interface every wiki source implements.

    ``candidates`` yields batches (lists) so that the job can apply the "a whole batch with
    zero successes" stop rule; strategies: "search" (per topic when ``topic`` is given),
    "random", "allpages" (resumable: ``resume_from`` is the last page id done).
    """

    def candidates(
        self,
        strategy: str,
        *,
        batch_size: int,
        topic: str | None = None,
        resume_from: int | None = None,
        shard: tuple[int, int] | None = None,
    ) -> Iterator[list[Candidate]]: ...

    def fetch(self, titles: Iterable[str]) -> list[PageData]:
        """Latest revision data of each existing page, in batches of at most 50 titles."""
        ...

    def targets(self, titles: Iterable[str]) -> dict[str, TargetInfo]:
        """Existence and page id of link targets (red-link pruning), batched."""
        ...

    def latest_revisions(self, page_ids: Iterable[int]) -> dict[int, int]:
        """page id -> latest revision id, for pool upkeep; missing pages are left out."""
        ...

    def page_titles(self, page_ids: Iterable[int]) -> dict[int, str]:
        """page id -> title of existing pages (the title a clear/set event needs when only
        the page id is stored); missing pages are left out."""
        ...


def open_source(wiki: WikiConfig, user_agent: str) -> WikiSource:
    """The configured source of one wiki (``source.type``: api or dump)."""
    s = wiki.source
    if s.type == "dump":
        from runner.sources.dump import DumpSource

        return DumpSource(s.path or "", complete=s.complete, cache_dir=s.cache_dir,
                          seed=wiki.candidates.seed)
    from runner.sources.api import ApiSource

    return ApiSource.from_config(wiki, user_agent=user_agent)


class TimedSource:
    """Wraps a source to time its calls as the API timer (one call = one batched request)."""

    def __init__(self, inner: WikiSource, metrics: Metrics, wiki: str) -> None:
        self.inner, self.metrics, self.wiki = inner, metrics, wiki

    def candidates(self, strategy: str, **kw: object) -> Iterator[list[Candidate]]:
        it = self.inner.candidates(strategy, **kw)  # type: ignore[arg-type]
        while True:
            with self.metrics.timer(M.API_TIME, wiki=self.wiki):
                batch = next(it, None)
            if batch is None:
                return
            yield batch

    def fetch(self, titles: Iterable[str]) -> list[PageData]:
        with self.metrics.timer(M.API_TIME, wiki=self.wiki):
            return self.inner.fetch(titles)

    def targets(self, titles: Iterable[str]) -> dict[str, TargetInfo]:
        with self.metrics.timer(M.API_TIME, wiki=self.wiki):
            return self.inner.targets(titles)

    def latest_revisions(self, page_ids: Iterable[int]) -> dict[int, int]:
        with self.metrics.timer(M.API_TIME, wiki=self.wiki):
            return self.inner.latest_revisions(page_ids)

    def page_titles(self, page_ids: Iterable[int]) -> dict[int, str]:
        """page id -> title when the source can tell (optional; used for clear events)."""
        fn = getattr(self.inner, "page_titles", None)
        if fn is None:
            return {}
        with self.metrics.timer(M.API_TIME, wiki=self.wiki):
            return fn(page_ids)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close:
            close()

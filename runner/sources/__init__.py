"""Wiki sources: where candidates and page data come from (Action API or XML dump)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

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

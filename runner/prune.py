"""Pruning of a recommendation and the good-links rule (SPEC §5), as one pure function.

Order: red links, targets rejected ``rejection_limit``+ times on this page, score below
``minimum_link_score``; then at most ``maximum_links_per_task``; fewer than
``minimum_links_per_task`` left is ``good_links_count_too_small``. As in the reference, a
"nothing usable" verdict is only remembered (NULL row) when no red link was pruned: red links
turn blue when someone creates the page, and the page may then become a good task.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.config import Criteria
from runner.criteria import ALL_RECOMMENDATIONS_PRUNED, GOOD_LINKS_COUNT_TOO_SMALL, SUCCESS
from runner.records import TargetInfo


@dataclass(frozen=True)
class PruneResult:
    outcome: str  # success, all_recommendations_pruned or good_links_count_too_small
    links: tuple[dict, ...]
    red_links: int = 0
    rejected: int = 0
    low_score: int = 0
    capped: int = 0

    @property
    def remember_unavailable(self) -> bool:
        """Write a NULL row for this revision (do not evaluate it again)."""
        return self.outcome != SUCCESS and self.red_links == 0

    @property
    def detail(self) -> str:
        return (f"{len(self.links)} links kept; pruned red={self.red_links} "
                f"rejected={self.rejected} low_score={self.low_score} capped={self.capped}")


def prune(links: list[dict], targets: dict[str, TargetInfo], rejected_ids: set[int],
          criteria: Criteria, *, force: bool = False) -> PruneResult:
    """``force`` (backfill --force) accepts a single good link, as in the reference."""
    red = rej = low = 0
    survivors: list[dict] = []
    for link in links:
        info = targets.get(link["link_target"])
        if info is not None and info.known and info.page_id is None:
            red += 1
        elif info is not None and info.page_id is not None and info.page_id in rejected_ids:
            rej += 1
        else:
            survivors.append(link)
    if links and not survivors:
        return PruneResult(ALL_RECOMMENDATIONS_PRUNED, (), red, rej)
    good = [x for x in survivors if float(x["score"]) >= criteria.minimum_link_score]
    low = len(survivors) - len(good)
    capped = max(0, len(good) - criteria.maximum_links_per_task)
    good = good[:criteria.maximum_links_per_task]
    needed = 1 if force else max(1, criteria.minimum_links_per_task)
    outcome = SUCCESS if len(good) >= needed else GOOD_LINKS_COUNT_TOO_SMALL
    return PruneResult(outcome, tuple(good), red, rej, low, capped)

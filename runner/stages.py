"""The per-page stages of the refresh loop, as functions of their inputs: the job
(runner/job.py) schedules them, does the I/O around them and records what they decide.

- ``screen``: the candidates of one fetch against SPEC §5's criteria (before the model);
- ``decide``: a recommendation against pruning and the page's latest revision (after it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from runner import criteria as C
from runner.config import Criteria
from runner.prune import prune
from runner.records import Candidate, Evaluation, PageData


@dataclass(frozen=True)
class Screened:
    passing: tuple[PageData, ...]  # go to the model
    rejected: tuple[Evaluation, ...]  # an outcome already
    missing: tuple[str, ...]  # titles asked for that are no page
    elsewhere: tuple[int, ...]  # another shard's page ids: no outcome here


def screen(chunk: list[Candidate], pages: list[PageData], states: dict[int, bool],
           submissions: set[int], criteria: Criteria, *, force: bool, now: float,
           in_shard: Callable[[int], bool]) -> Screened:
    """``states``/``submissions``: the store's rows and user submissions by revision."""
    found = {p.title for p in pages}
    missing = tuple(c.title for c in chunk
                    if c.title not in found and not any(same_title(c.title, t) for t in found))
    rejected = [Evaluation(c.title, C.OTHER, c.page_id,
                           detail="page not found or not an article")
                for c in chunk if c.title in missing]
    passing, elsewhere = [], []
    for p in pages:
        if not in_shard(p.page_id):
            elsewhere.append(p.page_id)
            continue
        if p.namespace != 0 or p.is_redirect:
            rejected.append(Evaluation(p.title, C.OTHER, p.page_id, p.rev_id,
                                       detail="not an article (namespace or redirect)"))
            continue
        state = C.StoreState(p.rev_id in states, states.get(p.rev_id, False),
                             p.rev_id in submissions)
        verdict = C.evaluate(p, criteria, state, force=force, now=now)
        if verdict.outcome:
            rejected.append(Evaluation(p.title, verdict.outcome, p.page_id, p.rev_id,
                                       detail=verdict.detail))
        else:
            passing.append(p)
    return Screened(tuple(passing), tuple(rejected), missing, tuple(elsewhere))


@dataclass(frozen=True)
class Decision:
    evaluation: Evaluation  # the outcome (for a success: with the row's data)
    store_null: bool = False  # remember "nothing usable" for this revision (a NULL row)

    @property
    def success(self) -> bool:
        return self.evaluation.outcome == C.SUCCESS


def decide(page: PageData, rec: dict, targets: dict, latest: int | None, rejected: set[int],
           criteria: Criteria, *, force: bool, now: float) -> Decision:
    """Prune the links, check the page is still at the recommended revision (SPEC §5)."""
    pr = prune(list(rec.get("links") or []), targets, rejected, criteria, force=force)
    if pr.outcome != C.SUCCESS:
        return Decision(Evaluation(page.title, pr.outcome, page.page_id, page.rev_id,
                                   detail=pr.detail), store_null=pr.remember_unavailable)
    if latest != page.rev_id:
        return Decision(Evaluation(page.title, C.OTHER, page.page_id, page.rev_id,
                                   detail=f"page changed meanwhile (now revision {latest})"))
    data = {"links": list(pr.links),
            "meta": {**(rec.get("meta") or {}), "task_timestamp": int(now)}}
    return Decision(Evaluation(page.title, C.SUCCESS, page.page_id, page.rev_id,
                               recommendation=data, detail=pr.detail))


def same_title(a: str, b: str) -> bool:
    na = a.replace("_", " ").strip()
    nb = b.replace("_", " ").strip()
    return na[:1].upper() + na[1:] == nb[:1].upper() + nb[1:]

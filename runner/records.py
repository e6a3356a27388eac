"""Small immutable records passed between the pipeline stages.

select -> ``Candidate``; fetch -> ``PageData``; evaluate/recommend/prune -> ``Evaluation``;
store/publish work on ``Evaluation`` and event dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    """A page proposed by a candidate strategy; only the title is required."""

    title: str
    page_id: int | None = None


@dataclass(frozen=True)
class PageData:
    """What the evaluation needs to know about one page's latest revision."""

    page_id: int
    title: str  # normalized: spaces, first letter as the wiki spells it
    rev_id: int
    timestamp: float  # unix time of the latest revision
    content_model: str  # "wikitext" for articles
    wikitext: str
    tags: tuple[str, ...] = ()  # change tags of the latest revision
    parent_tags: tuple[str, ...] | None = None  # tags of the revision before, when known
    templates: tuple[str, ...] = ()  # titles with namespace prefix, e.g. "Template:Dablink"
    categories: tuple[str, ...] = ()  # titles with namespace prefix
    props: tuple[tuple[str, str], ...] = ()  # page props, e.g. (("disambiguation", ""),)
    namespace: int = 0
    is_redirect: bool = False


@dataclass(frozen=True)
class TargetInfo:
    """Existence of a link target, for red-link pruning and rejected-target lookups."""

    title: str
    page_id: int | None  # None when the page does not exist (red link)
    known: bool = True  # False when the source cannot tell (a slice of a dump)


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one candidate, and the recommendation when one was made."""

    title: str
    outcome: str
    page_id: int | None = None
    rev_id: int | None = None
    recommendation: dict | None = field(default=None, compare=False)
    detail: str = ""

"""SPEC §5's candidate rules, in their order, with the production outcome names.

The outcome strings are metric labels that dashboards use; they are GrowthExperiments'
``NotGoodCause`` values. Checks without a named cause (no page, not wikitext, word count)
count as ``other``, as in the reference. ``--force`` skips every rule after the content
check except ``already_stored``, as in the reference.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from runner.config import Criteria
from runner.records import PageData

SUCCESS = "success"
OTHER = "other"
MINIMUM_TIME = "minimum_time_since_last_edit_did_not_pass"
DISAMBIGUATION = "disambiguation_page"
EXCLUDED_TEMPLATE = "excluded_template"
EXCLUDED_CATEGORY = "excluded_category"
LAST_EDIT_LINK_RECOMMENDATION = "last_edit_link_recommendation"
LAST_EDIT_LINK_RECOMMENDATION_REVERT = "last_edit_link_recommendation_revert"
ALREADY_STORED = "already_stored"
KNOWN_UNAVAILABLE = "known_unavailable"
HAS_PRIOR_SUBMISSION = "has_prior_submission"
ALL_RECOMMENDATIONS_PRUNED = "all_recommendations_pruned"
GOOD_LINKS_COUNT_TOO_SMALL = "good_links_count_too_small"

OUTCOMES = (
    SUCCESS, OTHER, MINIMUM_TIME, DISAMBIGUATION, EXCLUDED_TEMPLATE, EXCLUDED_CATEGORY,
    LAST_EDIT_LINK_RECOMMENDATION, LAST_EDIT_LINK_RECOMMENDATION_REVERT, ALREADY_STORED,
    KNOWN_UNAVAILABLE, HAS_PRIOR_SUBMISSION, ALL_RECOMMENDATIONS_PRUNED,
    GOOD_LINKS_COUNT_TOO_SMALL,
)

# The change tag of an edit made through the Add-a-Link task, and MediaWiki's revert tags.
ADD_LINK_TAG = "newcomer task add link"
REVERT_TAGS = ("mw-rollback", "mw-undo", "mw-manual-revert")

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Verdict:
    outcome: str | None  # None: the page passes, go on to recommend
    detail: str = ""


@dataclass(frozen=True)
class StoreState:
    """What the store knows about a revision (looked up in batches by the job)."""

    has_row: bool = False
    has_data: bool = False
    has_submission: bool = False


def normalize_name(name: str) -> str:
    """Template/category name without namespace: first letter upper, spaces, trimmed."""
    name = name.replace("_", " ").strip()
    if ":" in name:
        name = name.split(":", 1)[1].strip()
    name = " ".join(name.split())
    return name[:1].upper() + name[1:]


def _names(titles: tuple[str, ...]) -> set[str]:
    return {normalize_name(t) for t in titles}


def word_count(wikitext: str) -> int:
    return sum(1 for _ in _WORD.finditer(wikitext))


def evaluate(page: PageData, criteria: Criteria, state: StoreState, *, force: bool = False,
             now: float | None = None) -> Verdict:
    """Apply the rules that need no recommendation; the first failing rule names the outcome."""
    if page.content_model != "wikitext":
        return Verdict(OTHER, f"content model is {page.content_model}, not wikitext")
    if not force:
        verdict = _page_rules(page, criteria, time.time() if now is None else now)
        if verdict.outcome:
            return verdict
    if state.has_row and state.has_data:
        return Verdict(ALREADY_STORED, f"revision {page.rev_id} has a stored recommendation")
    if state.has_row and not force:
        return Verdict(KNOWN_UNAVAILABLE, f"revision {page.rev_id} is known to have none")
    if state.has_submission and not force:
        return Verdict(HAS_PRIOR_SUBMISSION, f"revision {page.rev_id} already has feedback")
    return Verdict(None)


def _page_rules(page: PageData, c: Criteria, now: float) -> Verdict:
    if c.minimum_word_count > 0 or c.maximum_word_count is not None:  # else: no need to count
        words = word_count(page.wikitext)
        if words < c.minimum_word_count:
            return Verdict(OTHER, f"word count too small ({words})")
        if c.maximum_word_count is not None and words > c.maximum_word_count:
            return Verdict(OTHER, f"word count too large ({words})")
    age = now - page.timestamp
    if age < c.minimum_time_since_last_edit:
        return Verdict(MINIMUM_TIME, f"last edit {int(age)} s ago")
    templates = _names(page.templates)
    props = dict(page.props)
    if "disambiguation" in props:
        return Verdict(DISAMBIGUATION, "page prop disambiguation")
    dab = templates & _names(c.disambiguation_templates)
    if dab:
        return Verdict(DISAMBIGUATION, f"template {sorted(dab)[0]}")
    hit = templates & _names(c.excluded_templates)
    if hit:
        return Verdict(EXCLUDED_TEMPLATE, f"template {sorted(hit)[0]}")
    hit = _names(page.categories) & _names(c.excluded_categories)
    if hit:
        return Verdict(EXCLUDED_CATEGORY, f"category {sorted(hit)[0]}")
    if ADD_LINK_TAG in page.tags:
        return Verdict(LAST_EDIT_LINK_RECOMMENDATION, "last edit was an Add-a-Link edit")
    if any(t in page.tags for t in REVERT_TAGS) and page.parent_tags is not None \
            and ADD_LINK_TAG in page.parent_tags:
        return Verdict(LAST_EDIT_LINK_RECOMMENDATION_REVERT,
                       "last edit reverted an Add-a-Link edit")
    return Verdict(None)

"""SPEC §5 rules in order, on real pages of the English sample, and pruning."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runner import criteria as C
from runner.config import Criteria
from runner.prune import prune
from runner.records import TargetInfo
from runner.sources.dump import DumpSource
from tests.model_fixtures import EN_DUMP

DUMP = str(EN_DUMP)
CRIT = Criteria(disambiguation_templates=("Disambiguation", "Dab"))
FRESH = C.StoreState()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    src = DumpSource(DUMP, cache_dir=tmp_path_factory.mktemp("cache"))
    got = {p.title: p for p in src.fetch(["Anarchism", "Alien", "Achilles", "Acid"])}
    src.close()
    return got


def test_an_ordinary_article_passes(pages):
    assert C.evaluate(pages["Anarchism"], CRIT, FRESH).outcome is None


def test_content_model_and_word_counts_are_other(pages):
    a = pages["Anarchism"]
    assert C.evaluate(replace(a, content_model="css"), CRIT, FRESH).outcome == C.OTHER
    words = C.word_count(a.wikitext)
    v = C.evaluate(a, replace(CRIT, minimum_word_count=words + 1), FRESH)
    assert (v.outcome, v.detail) == (C.OTHER, f"word count too small ({words})")
    v = C.evaluate(a, replace(CRIT, maximum_word_count=words - 1), FRESH)
    assert v.outcome == C.OTHER and "too large" in v.detail


def test_minimum_time_since_last_edit(pages):
    a = pages["Anarchism"]
    v = C.evaluate(a, CRIT, FRESH, now=a.timestamp + 3600)
    assert v.outcome == C.MINIMUM_TIME
    assert C.evaluate(a, CRIT, FRESH, now=a.timestamp + 86400).outcome is None


def test_disambiguation_by_template_and_by_page_prop(pages):
    assert C.evaluate(pages["Alien"], CRIT, FRESH).outcome == C.DISAMBIGUATION
    assert C.evaluate(pages["Alien"], Criteria(), FRESH).outcome is None  # not configured
    a = replace(pages["Anarchism"], props=(("disambiguation", ""),))
    assert C.evaluate(a, Criteria(), FRESH).outcome == C.DISAMBIGUATION


def test_excluded_templates_and_categories_any_spelling(pages):
    acid = pages["Acid"]  # has {{Lead rewrite}} and [[Category:Acids]]
    assert "Template:Lead rewrite" in acid.templates and "Category:Acids" in acid.categories
    v = C.evaluate(acid, replace(CRIT, excluded_templates=("Template:lead_rewrite",)), FRESH)
    assert (v.outcome, v.detail) == (C.EXCLUDED_TEMPLATE, "template Lead rewrite")
    v = C.evaluate(acid, replace(CRIT, excluded_categories=("acids",)), FRESH)
    assert v.outcome == C.EXCLUDED_CATEGORY
    # order: template before category (SPEC §5)
    both = replace(CRIT, excluded_templates=("Lead rewrite",), excluded_categories=("Acids",))
    assert C.evaluate(acid, both, FRESH).outcome == C.EXCLUDED_TEMPLATE


def test_last_edit_tags(pages):
    a = pages["Achilles"]
    tagged = replace(a, tags=("newcomer task add link",))
    assert C.evaluate(tagged, CRIT, FRESH).outcome == C.LAST_EDIT_LINK_RECOMMENDATION
    revert = replace(a, tags=("mw-undo",), parent_tags=("newcomer task add link",))
    assert C.evaluate(revert, CRIT, FRESH).outcome == C.LAST_EDIT_LINK_RECOMMENDATION_REVERT
    other_revert = replace(a, tags=("mw-undo",), parent_tags=("visualeditor",))
    assert C.evaluate(other_revert, CRIT, FRESH).outcome is None


def test_store_state_and_force(pages):
    a = pages["Anarchism"]
    stored = C.StoreState(has_row=True, has_data=True)
    null = C.StoreState(has_row=True, has_data=False)
    sub = C.StoreState(has_submission=True)
    assert C.evaluate(a, CRIT, stored).outcome == C.ALREADY_STORED
    assert C.evaluate(a, CRIT, null).outcome == C.KNOWN_UNAVAILABLE
    assert C.evaluate(a, CRIT, sub).outcome == C.HAS_PRIOR_SUBMISSION
    # --force skips the page rules and known_unavailable, never already_stored
    alien = pages["Alien"]
    assert C.evaluate(alien, CRIT, null, force=True).outcome is None
    assert C.evaluate(alien, CRIT, stored, force=True).outcome == C.ALREADY_STORED
    assert C.evaluate(replace(alien, content_model="json"), CRIT, FRESH,
                      force=True).outcome == C.OTHER


def test_outcome_names_are_the_production_labels():
    assert {C.MINIMUM_TIME, C.DISAMBIGUATION, C.EXCLUDED_TEMPLATE, C.EXCLUDED_CATEGORY,
            C.LAST_EDIT_LINK_RECOMMENDATION, C.LAST_EDIT_LINK_RECOMMENDATION_REVERT,
            C.ALREADY_STORED, C.KNOWN_UNAVAILABLE, C.ALL_RECOMMENDATIONS_PRUNED,
            C.GOOD_LINKS_COUNT_TOO_SMALL} == {
        "minimum_time_since_last_edit_did_not_pass", "disambiguation_page",
        "excluded_template", "excluded_category", "last_edit_link_recommendation",
        "last_edit_link_recommendation_revert", "already_stored", "known_unavailable",
        "all_recommendations_pruned", "good_links_count_too_small"}


# ---------------------------------------------------------------- pruning

def link(target: str, score: float) -> dict:
    return {"link_text": target.lower(), "link_target": target, "score": score}


TARGETS = {"Blue": TargetInfo("Blue", 1), "Red": TargetInfo("Red", None),
           "Rejected": TargetInfo("Rejected", 3), "Unknown": TargetInfo("Unknown", None, False),
           "Also": TargetInfo("Also", 4), "More": TargetInfo("More", 5)}


def test_prune_red_rejected_low_score():
    links = [link("Blue", 0.9), link("Red", 0.9), link("Rejected", 0.9), link("Unknown", 0.8),
             link("Also", 0.5)]
    r = prune(links, TARGETS, {3}, Criteria())
    assert r.outcome == C.SUCCESS
    assert [x["link_target"] for x in r.links] == ["Blue", "Unknown"]
    assert (r.red_links, r.rejected, r.low_score) == (1, 1, 1)


def test_all_pruned_and_null_row_rule():
    r = prune([link("Red", 0.9), link("Rejected", 0.9)], TARGETS, {3}, Criteria())
    assert r.outcome == C.ALL_RECOMMENDATIONS_PRUNED and not r.remember_unavailable
    r = prune([link("Rejected", 0.9)], TARGETS, {3}, Criteria())
    assert r.outcome == C.ALL_RECOMMENDATIONS_PRUNED and r.remember_unavailable


def test_good_links_count_too_small():
    r = prune([link("Blue", 0.9), link("Also", 0.59)], TARGETS, set(), Criteria())
    assert r.outcome == C.GOOD_LINKS_COUNT_TOO_SMALL and r.remember_unavailable
    assert prune([], TARGETS, set(), Criteria()).outcome == C.GOOD_LINKS_COUNT_TOO_SMALL
    # a red link pruned: the page may become good when the page is created; no NULL row
    r = prune([link("Blue", 0.9), link("Red", 0.9)], TARGETS, set(), Criteria())
    assert r.outcome == C.GOOD_LINKS_COUNT_TOO_SMALL and not r.remember_unavailable
    # --force accepts a single good link
    r = prune([link("Blue", 0.9)], TARGETS, set(), Criteria(), force=True)
    assert r.outcome == C.SUCCESS


def test_maximum_links_per_task():
    links = [link(t, 0.9) for t in ("Blue", "Also", "More", "Unknown")]
    r = prune(links, TARGETS, set(), Criteria(maximum_links_per_task=3))
    assert r.outcome == C.SUCCESS and len(r.links) == 3 and r.capped == 1

"""Sentence boundaries that know abbreviations, on real anchors of the shared dumps."""

from __future__ import annotations

import json

import mwparserfromhell
import pytest

from model import open_model
from model.datasets import SENTENCES_FILE
from model.dump import pages
from model.text import learn_abbreviations, listed_abbreviations, probe_sentences, sentences
from tests.model_fixtures import DUMPS


def _cut(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(start < b < end for _, b in spans[:-1])


def _sentence_with(dump: str, anchor: str) -> tuple[str, str]:
    """A real line of the dump holding the anchor, as plain text, and the wiki's language."""
    path = next(DUMPS.glob(f"{dump}-*"))
    from model.dump import site_info

    for page in pages(path):
        if page.namespace or anchor not in page.text:
            continue
        for line in page.text.splitlines():
            text = mwparserfromhell.parse(line).strip_code()
            if anchor in text and f"{anchor}." not in text:
                return text, site_info(path).language
    pytest.fail(f"{anchor!r} not found in {path.name}")


@pytest.mark.parametrize(
    "dump, anchor",
    [
        ("enwiki", "Edwin B. Willis"),  # initials: the commonest anchor with a period
        ("elwiki", "Γκλεν Θ. Σίμποργκ"),
        ("ukwiki", "Т. Шевченко"),
        ("mrwiki", "डॉ. बाबासाहेब आंबेडकर"),  # a letter with a vowel sign
        ("bnwiki", "লে. জেনারেল"),
        ("ltgwiki", "1914. godā"),  # an ordinal date: the next word is lower-case
    ],
)
def test_real_anchors_with_periods_stay_in_one_sentence(dump, anchor):
    text, language = _sentence_with(dump, anchor)
    start = text.index(anchor)
    end = start + len(anchor)
    assert _cut(probe_sentences(text), start, end), "the legacy rule (probes) is unchanged"
    assert not _cut(sentences(text, listed_abbreviations(language)), start, end), text


def test_learnt_abbreviations_join_what_the_rule_alone_cuts():
    """Punkt learns "м." (місто) from Ukrainian text; a period after it ends nothing."""
    path = next(DUMPS.glob("ukwiki-*"))
    texts = [p.text for p in pages(path) if p.namespace == 0 and not p.redirect][:200]
    learnt = learn_abbreviations(mwparserfromhell.parse(t).strip_code() for t in texts)
    assert "м" in learnt and "р" in learnt
    text = "Народився у м. Київ у 1990 р. Потім переїхав."
    assert [text[a:b] for a, b in sentences(text, learnt)] == [text]
    assert len(probe_sentences(text)) == 3
    english = "He moved to St. Petersburg and the U.S. Army. Then he left."
    spans = sentences(english, listed_abbreviations("en"))
    assert [english[a:b] for a, b in spans] == [
        "He moved to St. Petersburg and the U.S. Army.",
        "Then he left.",
    ]


def test_line_breaks_control_characters_and_real_ends_still_split():
    abbreviations = listed_abbreviations("en") | {"st"}
    text = "Reiga ir golvysmīsts.\nLatgola ir regions. Tys ir lobs\x00Cyts teikums st.\nNext"
    got = [text[a:b] for a, b in sentences(text, abbreviations)]
    assert got == ["Reiga ir golvysmīsts.", "Latgola ir regions.", "Tys ir lobs",
                   "Cyts teikums st.", "Next"]


def test_boundaries_do_not_collapse_on_real_pages():
    """Abbreviations join few sentences: most of the legacy rule's boundaries remain."""
    for dump in sorted(DUMPS.glob("*.xml.*")):
        from model.dump import site_info

        abbreviations = listed_abbreviations(site_info(dump).language)
        legacy = mine = 0
        for page in pages(dump):
            if page.namespace or page.redirect:
                continue
            text = mwparserfromhell.parse(page.text).strip_code()
            legacy += len(probe_sentences(text))
            mine += len(sentences(text, abbreviations))
            if legacy > 1500:
                break
        assert mine >= 0.85 * legacy, dump.name


def test_the_model_stores_and_loads_its_abbreviations(ltg_model):
    stored = json.loads((ltg_model / SENTENCES_FILE).read_text(encoding="utf-8"))
    manifest = json.loads((ltg_model / "manifest.json").read_text())
    assert stored["abbreviations"] and manifest["counts"]["abbreviations"] == len(
        stored["abbreviations"]
    )
    model = open_model(ltg_model)
    try:
        assert model.abbreviations == frozenset(stored["abbreviations"])
    finally:
        model.close()

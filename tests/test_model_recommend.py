"""Recommending on real articles: format, offsets, skipped markup, sections, linked targets."""

from __future__ import annotations

import itertools
import json

import mwparserfromhell
import pytest
from mwparserfromhell.nodes import Text

from model import open_model, recommend
from model.dump import pages
from model.recommend import Scored, link_records
from model.wikitext import TextSpan, WikitextError, parse
from tests.model_fixtures import EN_DUMP, FIXTURES, LTG_DUMP


@pytest.fixture(scope="module")
def ltg_articles():
    return [p for p in pages(LTG_DUMP) if p.namespace == 0 and not p.redirect]


@pytest.fixture(scope="module")
def ltg_results(ltg, ltg_articles):
    """Recommendations at a low threshold for many real articles: lots of links to check."""
    out = []
    for page in ltg_articles[:400]:
        result = recommend(ltg, page.text, title=page.title, threshold=0.2, max_recommendations=50)
        out.append((page, result))
    assert sum(r["links_count"] for _, r in out) >= 50, "too few links to test anything"
    return out


def top_level_text_ranges(wikitext: str) -> list[tuple[int, int]]:
    """Offsets of top-level text nodes, computed independently of model.wikitext."""
    ranges, offset = [], 0
    for node in mwparserfromhell.parse(wikitext).nodes:
        n = len(str(node))
        if isinstance(node, Text):
            ranges.append((offset, offset + n))
        offset += n
    return ranges


def test_every_offset_points_at_its_link_text_and_contexts(ltg_results):
    for page, result in ltg_results:
        for link in result["links"]:
            start = link["wikitext_offset"]
            end = start + len(link["link_text"])
            assert page.text[start:end] == link["link_text"]
            assert page.text[start - len(link["context_before"]) : start] == link["context_before"]
            assert page.text[end : end + len(link["context_after"])] == link["context_after"]
            assert len(link["context_before"]) <= 10 and len(link["context_after"]) <= 10


def test_links_only_in_top_level_text_never_in_markup(ltg_results):
    for page, result in ltg_results:
        ranges = top_level_text_ranges(page.text)
        for link in result["links"]:
            start = link["wikitext_offset"]
            end = start + len(link["link_text"])
            assert any(a <= start and end <= b for a, b in ranges), (page.title, link)


def test_no_target_already_linked_nor_the_page_itself(ltg, ltg_results):
    for page, result in ltg_results:
        linked = {link.target for link in parse(page.text).links}
        linked = set(ltg.resolve(linked).values()) | linked
        targets = [link["link_target"] for link in result["links"]]
        assert len(targets) == len(set(targets))
        assert not set(targets) & linked
        assert page.title not in targets
        texts = [link["link_text"] for link in result["links"]]
        assert len(texts) == len(set(texts)), "only the first occurrence of a mention is linked"


def test_link_index_order_scores_and_threshold(ltg_results):
    for _, result in ltg_results:
        links = result["links"]
        assert [link["link_index"] for link in links] == list(range(len(links)))
        assert [link["wikitext_offset"] for link in links] == sorted(
            link["wikitext_offset"] for link in links
        )
        assert all(0.2 <= link["score"] <= 1.0 for link in links)
        assert result["links_count"] == len(links)


def _a_suggestion(ltg, ltg_results):
    for page, result in ltg_results:
        for link in result["links"]:
            if link["score"] > 0.5:
                return page, link
    pytest.fail("no confident suggestion in the sample")


@pytest.mark.parametrize(
    "wrap",
    [
        "{{{{Template|{0}}}}}",
        "<ref>{0}</ref>",
        "'''{0}'''",
        "''{0}''",
        '\n{{| class="wikitable"\n|-\n| {0}\n|}}\n',  # a table starts a line
        "\n== {0} ==\n",  # a heading starts a line
        "[[{0}]]",
        "[[File:X.jpg|thumb|{0}]]",
        "<!-- {0} -->",
        "<div>{0}</div>",
    ],
)
def test_a_mention_wrapped_in_markup_is_never_suggested(ltg, ltg_results, wrap):
    page, link = _a_suggestion(ltg, ltg_results)
    start = link["wikitext_offset"]
    end = start + len(link["link_text"])
    wrapped = page.text[:start] + wrap.format(link["link_text"]) + page.text[end:]
    result = recommend(ltg, wrapped, title=page.title, threshold=0.0, max_recommendations=100)
    for found in result["links"]:
        s = found["wikitext_offset"]
        inside = s >= start and s < start + len(wrap.format(link["link_text"]))
        assert not inside, (wrap, found)


def test_excluded_sections_and_lead(ltg, ltg_articles):
    checked = 0
    for page in ltg_articles:
        full = recommend(ltg, page.text, title=page.title, threshold=0.0, max_recommendations=100)
        sections = {
            s.offset: s.section for s in parse(page.text).spans
        }  # span offset -> section name

        def section_of(offset: int, sections: dict[int, str] = sections) -> str:
            return sections[max(o for o in sections if o <= offset)]

        named = {section_of(link["wikitext_offset"]) for link in full["links"]}
        for excluded in named:
            again = recommend(
                ltg,
                page.text,
                title=page.title,
                threshold=0.0,
                max_recommendations=100,
                excluded_sections=[excluded.upper()],  # matched case-insensitively
            )
            assert all(section_of(x["wikitext_offset"]) != excluded for x in again["links"])
            checked += 1
        if checked >= 20:
            break
    assert checked >= 5


def test_lead_exclusion_keyword(ltg, ltg_articles):
    page = next(p for p in ltg_articles if "\n==" in p.text and len(p.text) > 3000)
    first_heading = page.text.index("\n==")
    result = recommend(
        ltg, page.text, title=page.title, threshold=0.0, excluded_sections=["%LEAD%"]
    )
    assert all(link["wikitext_offset"] > first_heading for link in result["links"])


def test_linking_a_target_elsewhere_removes_its_suggestion(ltg, ltg_results):
    page, link = _a_suggestion(ltg, ltg_results)
    text = page.text + f"\n\n[[{link['link_target']}]]"
    result = recommend(ltg, text, title=page.title, threshold=0.0, max_recommendations=100)
    assert link["link_target"] not in {x["link_target"] for x in result["links"]}
    # ...and the page itself is never its own target.
    result = recommend(ltg, page.text, title=link["link_target"], threshold=0.0)
    assert link["link_target"] not in {x["link_target"] for x in result["links"]}


def test_format_matches_the_reference_fixtures(ltg, ltg_results):
    fixture = json.loads((FIXTURES / "provide_query_post/0/expected_data.json").read_text())
    _, result = next((p, r) for p, r in ltg_results if r["links"])
    assert set(result) == set(fixture)
    assert set(result["meta"]) == set(fixture["meta"])
    assert result["meta"]["format_version"] == 1
    assert set(result["meta"]["dataset_checksums"]) == set(fixture["meta"]["dataset_checksums"])
    assert set(result["links"][0]) == set(fixture["links"][0])
    for key, value in fixture["links"][0].items():
        assert type(result["links"][0][key]) is type(value), key
    json.dumps(result)  # JSON-serialisable as is


@pytest.mark.parametrize(
    "source, expected",
    [
        ("provide_query_post/0/source.wikitext", "provide_query_post/0/expected_data.json"),
        ("T308244/article.wikitext", "T308244/expected.json"),
    ],
)
def test_offsets_match_index_and_contexts_agree_with_the_reference(source, expected):
    """Our offset, match_index and context rules reproduce the reference service's output."""
    wikitext = (FIXTURES / source).read_text(encoding="utf-8")
    want = json.loads((FIXTURES / expected).read_text(encoding="utf-8"))
    spans = parse(wikitext).spans
    chosen = []
    for link in want["links"]:
        start = link["wikitext_offset"]
        span = next(s for s in spans if s.offset <= start < s.offset + len(s.text))
        assert isinstance(span, TextSpan)
        chosen.append(
            Scored(
                start=start,
                end=start + len(link["link_text"]),
                text=link["link_text"],
                key=link["link_text"].lower(),
                length=1,
                target=link["link_target"],
                score=link["score"],
                targets=(link["link_target"],),
                span=span,
            )
        )
    got = link_records(spans, chosen)
    for mine, theirs in zip(got, want["links"], strict=True):
        for key in ("wikitext_offset", "match_index", "context_before", "context_after"):
            assert mine[key] == theirs[key], key


@pytest.mark.parametrize(
    "name, text",
    [
        ("empty", ""),
        ("blank", "   \n\n  "),
        ("unbalanced", "[[Latgola " * 2000 + "{{ a | b " * 2000 + "Latgola ir Latvejis regions."),
        ("giant table", "{|\n" + "|-\n| Latgola || Reiga\n" * 20000 + "|}\nLatgola."),
        ("mixed scripts", "Latgola 東京都 Москва ঢাকা मराठी Αθήνα Reiga. " * 200),
        ("2 MB page", ("Latgola ir regions Latvejā. Reiga ir golvysmīsts. " * 40000)[:2_000_000]),
    ],
)
def test_odd_input_gives_fewer_links_not_a_crash(ltg, name, text):
    result = recommend(ltg, text, title="Odd page", threshold=0.5)
    assert result["links_count"] == len(result["links"]) <= 15
    for link in result["links"]:
        start = link["wikitext_offset"]
        assert text[start : start + len(link["link_text"])] == link["link_text"]


def test_bad_arguments_are_clear_errors(ltg):
    with pytest.raises(ValueError, match="threshold"):
        recommend(ltg, "x", title="X", threshold=1.5)
    with pytest.raises(ValueError, match="max_recommendations"):
        recommend(ltg, "x", title="X", max_recommendations=-1)
    with pytest.raises(WikitextError, match="exceeds"):
        recommend(ltg, "a" * 4_000_001, title="X")


def test_english_model_on_english_articles(en_model):
    model = open_model(en_model)
    found = 0
    for page in itertools.islice(
        (p for p in pages(EN_DUMP) if p.namespace == 0 and not p.redirect), 30
    ):
        result = recommend(
            model, page.text, title=page.title, pageid=page.page_id, revid=page.rev_id
        )
        assert result["pageid"] == page.page_id and result["revid"] == page.rev_id
        found += result["links_count"]
    assert found > 0

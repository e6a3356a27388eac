"""TitleTable reads and writes as the dict it replaces, on the titles of real dumps."""

from __future__ import annotations

import pytest

from model.dump import pages
from model.tables import TitleTable
from tests.model_fixtures import JA_DUMP, LTG_DUMP


@pytest.mark.parametrize("dump", [LTG_DUMP, JA_DUMP], ids=["ltgwiki", "jawiki"])
def test_title_tables_read_as_the_dicts_they_replace(dump):
    articles: dict[str, int] = {}
    redirects: dict[str, str] = {}
    table, redirect_table = TitleTable(), TitleTable("str")
    for page in pages(dump):
        if page.redirect:
            redirects[page.title] = page.redirect
            redirect_table[page.title] = page.redirect
        else:
            articles[page.title] = page.page_id
            table[page.title] = page.page_id
    assert len(articles) > 100 and len(redirects) > 10
    for mine, theirs in ((table, articles), (redirect_table, redirects)):
        assert len(mine) == len(theirs)
        assert list(mine) == list(theirs)  # insertion order
        assert list(mine.items()) == list(theirs.items())
        assert all(mine[k] == v and k in mine for k, v in theirs.items())
    # Misses: other strings, near misses, other types.
    for probe in ["", "x" * 300, *(t + " " for t in list(articles)[:200]), *list(redirects)[:50]]:
        assert (probe in table) == (probe in articles)
        assert table.get(probe, -7) == articles.get(probe, -7)
    assert 5 not in table and table.get(None) is None  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        table["no such title \u2603"]
    # Sets of titles combine with its keys as with a dict's.
    some = set(list(articles)[::3]) | {"not a title"}
    assert some & table.keys() == some & articles.keys()
    assert some - table.keys() == some - articles.keys()


def test_a_repeated_key_keeps_its_place_and_takes_the_new_value():
    table, plain = TitleTable("str"), {}
    for key, value in [("Rēzekne", "A"), ("Daugpiļs", "B"), ("Rēzekne", "Ludza ē"), ("C", "")]:
        table[key] = value
        plain[key] = value
    assert list(table.items()) == list(plain.items())
    table.update([("Daugpiļs", "D")])
    assert table["Daugpiļs"] == "D" and len(table) == 3
    with pytest.raises(TypeError):
        del table["C"]



def test_any_string_is_a_key_as_in_a_dict():
    """Lone surrogates and NUL round-trip (a dict takes them; strict UTF-8 would raise)."""
    odd = ["\ud800", "a\x00b", "", "\U0001f600", "e\u0301"]
    table = TitleTable("str", ((k, k[::-1]) for k in odd))
    assert list(table.items()) == [(k, k[::-1]) for k in odd]
    assert all(k in table for k in odd) and "\udc00" not in table

"""End to end against the real MediaWiki (ltgwiki imported), MariaDB and a local EventGate.

The pool is filled through the Action API; every row is SPEC §3 JSON for the page's latest
revision; one validated event per row; editing a pooled page removes its row (and clears its
search tag) on the next run. The wiki keeps edits across sessions, so nothing here assumes a
page is as the dump has it.
"""

from __future__ import annotations

import secrets
import time

import pytest

from runner import criteria as C
from runner.app import run_wiki
from runner.config import parse_config
from runner.job import RunOptions
from runner.metrics import Metrics
from runner.store import open_store
from tests.conftest import USER_AGENT
from tests.eventgate import EventGate
from tests.runner_support import drop_database

LINK_FIELDS = {"link_text", "link_target", "wikitext_offset", "match_index", "context_before",
               "context_after", "score", "link_index"}


@pytest.fixture
def scratch_db(mysql_url):
    """A database of its own for each test (created by the store), dropped afterwards."""
    url = f"{mysql_url}_{secrets.token_hex(3)}"
    yield url
    drop_database(url)


def make_config(tmp_path, mediawiki, model, db, eventgate_url, **criteria):
    doc = {"runner": {"workers": 2, "user_agent": USER_AGENT},
           "store": {"type": "mysql", "url": db, "create_database": True},
           "events": {"type": "eventgate", "url": eventgate_url, "batch_size": 50},
           "lock": {"type": "file", "dir": str(tmp_path / "locks")},
           "wikis": {"ltgwiki": {
               "language": "ltg", "domain": "ltg.wikipedia.org", "model": str(model),
               "pool_target": 4,
               "source": {"type": "api", "api_url": mediawiki.api_url},
               "candidates": {"strategy": "allpages", "batch_size": 100},
               "criteria": {"disambiguation_templates": ["Zeimeibu škiršona"], **criteria}}}}
    return parse_config(doc, env={})


def data_rows(cfg) -> dict[int, tuple[int, dict]]:
    store = open_store(cfg.store, "ltgwiki")
    try:
        return {r.page_id: (r.rev_id, r.data) for r in store.iter_data_rows()}
    finally:
        store.close()


def titles_of(mediawiki, page_ids) -> dict[int, str]:
    doc = mediawiki.get(action="query", pageids="|".join(map(str, page_ids)))
    return {p["pageid"]: p["title"] for p in doc["query"]["pages"]}


def assert_rows_valid(mediawiki, rows: dict) -> None:
    titles = titles_of(mediawiki, rows)
    for page_id, (rev, data) in rows.items():
        page = mediawiki.page(titles[page_id])
        assert page["lastrevid"] == rev  # the page's latest revision
        text = page["revisions"][0]["slots"]["main"]["content"]
        assert set(data) == {"links", "meta"}
        assert data["meta"]["format_version"] == 1
        assert isinstance(data["meta"]["task_timestamp"], int)
        assert 2 <= len(data["links"]) <= 10
        for link in data["links"]:
            assert set(link) == LINK_FIELDS and link["score"] >= 0.6
            off = link["wikitext_offset"]
            assert text[off:off + len(link["link_text"])] == link["link_text"]
            assert mediawiki.page_id(link["link_target"]) is not None  # no red link


@pytest.mark.services
def test_pool_filled_and_edit_removes_page(tmp_path, mediawiki, ltg_model, scratch_db):
    with EventGate() as eg:
        # minimum_time 0: pages edited by earlier sessions stay usable candidates
        cfg = make_config(tmp_path, mediawiki, ltg_model, scratch_db, eg.url,
                          minimum_time_since_last_edit=0)
        res = run_wiki(cfg, "ltgwiki", RunOptions(), Metrics())
        assert (res.status, res.stop_reason, res.pool_after) == ("ok", "target_reached", 4)
        rows = data_rows(cfg)
        assert len(rows) == 4
        assert_rows_valid(mediawiki, rows)
        # one validated event per row (the local EventGate rejects invalid ones)
        assert eg.requests and all(status == 201 for status, _ in eg.requests)
        assert sorted(e["page"]["page_id"] for e in eg.accepted) == sorted(rows)
        assert all(e["weighted_tags"]["set"] == {"recommendation.link": [{"tag": "exists"}]}
                   for e in eg.accepted)

        # edit one pooled page: the next run removes its row and clears its tag
        page_id = min(rows)
        title = titles_of(mediawiki, [page_id])[page_id]
        old_rev = rows[page_id][0]
        text = mediawiki.wikitext(title)
        new_rev = mediawiki.edit(title, text + f"\n\nAddlink test edit {secrets.token_hex(3)}.")
        assert new_rev != old_rev
        n = len(eg.accepted)
        res2 = run_wiki(cfg, "ltgwiki", RunOptions(), Metrics())
        assert res2.upkeep_removed == 1 and res2.pool_before == 3 and res2.pool_after == 4
        new = eg.accepted[n:]
        assert new[0]["page"] == {"page_id": page_id, "page_title": title, "namespace_id": 0,
                                  "is_redirect": False}
        assert new[0]["weighted_tags"] == {"clear": ["recommendation.link"]}
        rows2 = data_rows(cfg)
        assert rows2.get(page_id, (new_rev,))[0] == new_rev  # never the old revision
        assert_rows_valid(mediawiki, rows2)
        # each set event after the clear is for a row now in the table
        assert {e["page"]["page_id"] for e in new[1:]} <= set(rows2)
        assert all("set" in e["weighted_tags"] for e in new[1:])

        # with the production default, a just-edited page is not a candidate
        strict = make_config(tmp_path, mediawiki, ltg_model, scratch_db, eg.url)
        res3 = run_wiki(strict, "ltgwiki",
                        RunOptions(command="backfill", titles=(title,)), Metrics())
        assert res3.outcomes == {C.MINIMUM_TIME: 1}


@pytest.mark.services
def test_change_tags_of_the_last_edit(tmp_path, mediawiki, ltg_model, scratch_db):
    """An Add-a-Link edit, and the undo of one, make a page ineligible (SPEC §5)."""
    with EventGate() as eg:
        cfg = make_config(tmp_path, mediawiki, ltg_model, scratch_db, eg.url,
                          minimum_time_since_last_edit=0)
        title = "18 godu symts"  # not a good task anyway: the rules come before the model
        text = mediawiki.wikitext(title)
        tagged = mediawiki.edit(title, text + f"\n\n<!-- addlink {time.time_ns()} -->",
                                tags=["newcomer task add link"])
        res = run_wiki(cfg, "ltgwiki", RunOptions(command="backfill", titles=(title,)),
                       Metrics())
        assert res.outcomes == {C.LAST_EDIT_LINK_RECOMMENDATION: 1}
        mediawiki.undo(title, tagged)
        res = run_wiki(cfg, "ltgwiki", RunOptions(command="backfill", titles=(title,)),
                       Metrics())
        assert res.outcomes == {C.LAST_EDIT_LINK_RECOMMENDATION_REVERT: 1}
        # --force skips those rules
        res = run_wiki(cfg, "ltgwiki", RunOptions(command="backfill", titles=(title,),
                                                  force=True), Metrics())
        assert C.LAST_EDIT_LINK_RECOMMENDATION_REVERT not in res.outcomes
        assert res.evaluated == 1
        # leave the page with an ordinary last edit for later sessions
        mediawiki.edit(title, mediawiki.wikitext(title) + f"\n<!-- {time.time_ns()} -->")

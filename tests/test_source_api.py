"""ApiSource against the real MediaWiki (ltgwiki imported) and a scripted flaky HTTP server."""

from __future__ import annotations

import bz2
import html
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest

from runner.records import Candidate
from runner.sources.api import ApiSource, ApiSourceError, fill_query, read_query
from tests.conftest import REPO, USER_AGENT
from tests.loopback import LoopbackServer

DUMP = REPO.parent / "shared" / "data" / "dumps" / "ltgwiki-20170901-pages-articles.xml.bz2"
TAG = "newcomer task add link"


@pytest.fixture(scope="module")
def source(mediawiki) -> Iterator[ApiSource]:
    src = ApiSource(mediawiki.api_url, user_agent=USER_AGENT)
    yield src
    src.close()


@pytest.fixture(scope="module")
def db(mediawiki) -> Iterator[sqlite3.Connection]:
    """MediaWiki's own database, read-only: the independent view to check the API against."""
    conn = sqlite3.connect(f"file:{mediawiki.db_path}?mode=ro", uri=True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def dump_pages() -> dict[str, tuple[str, str]]:
    """title -> (timestamp, text) of every page in the ltgwiki dump."""
    with bz2.open(DUMP, "rt", encoding="utf-8") as f:
        xml = f.read()
    out = {}
    for page in re.finditer(r"<page>.*?</page>", xml, re.S):
        body = page.group(0)
        title = html.unescape(re.search(r"<title>(.*?)</title>", body).group(1))
        ts = re.search(r"<timestamp>(.*?)</timestamp>", body).group(1)
        text = re.search(r"<text[^>]*?(?:/>|>(.*?)</text>)", body, re.S).group(1) or ""
        out[title] = (ts, html.unescape(text))
    return out


def articles(db: sqlite3.Connection) -> dict[int, str]:
    rows = db.execute("SELECT page_id, page_title FROM page "
                      "WHERE page_namespace = 0 AND page_is_redirect = 0").fetchall()
    return {pid: t.decode() if isinstance(t, bytes) else t for pid, t in rows}


def flat(batches: list[list[Candidate]]) -> list[Candidate]:
    return [c for b in batches for c in b]


# ----------------------------------------------------------------------------- candidates


def test_allpages_walks_every_article_in_page_id_order(source, db):
    batches = list(source.candidates("allpages", batch_size=100))
    assert all(len(b) == 100 for b in batches[:-1]) and 0 < len(batches[-1]) <= 100
    got = flat(batches)
    ids = [c.page_id for c in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    expected = articles(db)
    assert len(expected) > 900  # 906 articles in the dump, plus pages tests created
    assert {c.page_id: c.title.replace(" ", "_") for c in got} == expected


def test_allpages_resumes_and_shards_partition_the_walk(source, db):
    expected = articles(db)
    resume = sorted(expected)[len(expected) // 2]
    after = flat(list(source.candidates("allpages", batch_size=50, resume_from=resume)))
    assert [c.page_id for c in after] == sorted(p for p in expected if p > resume)
    shards = [flat(list(source.candidates("allpages", batch_size=50, shard=(i, 3))))
              for i in range(3)]
    for i, part in enumerate(shards):
        assert part and all(c.page_id % 3 == i for c in part)
    assert sorted(c.page_id for part in shards for c in part) == sorted(expected)
    # resume point + shard: ids of the shard after the resume point only
    part = flat(list(source.candidates("allpages", batch_size=50, resume_from=resume,
                                       shard=(1, 3))))
    assert [c.page_id for c in part] == sorted(p for p in expected if p > resume and p % 3 == 1)


def test_random_covers_articles_once_without_redirects(source, db):
    batches = list(source.candidates("random", batch_size=200))
    assert all(len(b) <= 200 for b in batches)
    got = flat(batches)
    ids = [c.page_id for c in got]
    assert len(set(ids)) == len(ids)
    assert set(ids) == set(articles(db))
    assert ids[:50] != sorted(ids[:50])  # an actual random order
    sharded = flat(list(source.candidates("random", batch_size=200, shard=(0, 2))))
    assert sharded and all(c.page_id % 2 == 0 for c in sharded)


def test_search_falls_back_to_full_text_without_cirrussearch(source):
    assert source.cirrus is False
    got = flat(list(source.candidates("search", batch_size=20, topic="Rēzekne")))
    assert len(got) > 5 and len({c.page_id for c in got}) == len(got)
    for page in source.fetch([c.title for c in got]):  # full-text hits: the word is there
        assert "rēzekne" in f"{page.title} {page.wikitext}".lower(), page.title
    assert len(got) == source.search_count("Rēzekne")
    assert all(c.page_id for c in got)
    with pytest.raises(ApiSourceError, match="needs a topic"):
        list(source.candidates("search", batch_size=20))
    with pytest.raises(ApiSourceError, match="needs CirrusSearch"):
        source.pool_count("Culture")
    with pytest.raises(ApiSourceError, match="unknown candidate strategy"):
        source.candidates("bytitle", batch_size=10)


def test_cirrussearch_query_templates(mediawiki):
    src = ApiSource(mediawiki.api_url, user_agent=USER_AGENT, cirrus=True)
    assert read_query("candidates") == "-hasrecommendation:link articletopic:{topic}"
    assert read_query("pool") == "hasrecommendation:link articletopic:{topic}"
    assert src.topic_query("candidates", "music") == "-hasrecommendation:link articletopic:music"
    assert src.topic_query("pool", "music") == "hasrecommendation:link articletopic:music"
    assert src.topic_query("pool", None) == "hasrecommendation:link"
    assert fill_query("a {topic} b", None) == "a b"
    assert src._search_params("x")["srsort"] == "random"
    custom = ApiSource(mediawiki.api_url, user_agent=USER_AGENT, cirrus=False,
                       fallback_query="Latgola")
    assert custom.topic_query("candidates", None) == "Latgola"


# ----------------------------------------------------------------------------- page data


def test_fetch_matches_the_database_and_the_dump(source, db, dump_pages):
    # Pages of the dump only: other tests create pages in the same wiki.
    titles = [t.replace("_", " ") for t in sorted(articles(db).values())]
    titles = [t for t in titles if t in dump_pages][::25][:40]
    pages = source.fetch(titles)
    assert [p.title for p in pages] == titles
    unchanged = 0
    for p in pages:
        latest, touched = db.execute(
            "SELECT page_latest, page_id FROM page WHERE page_id = ?", (p.page_id,)).fetchone()
        assert p.rev_id == latest and p.namespace == 0 and not p.is_redirect
        assert p.content_model == "wikitext"
        tpl = {r[0] for r in db.execute(
            "SELECT CASE lt_namespace WHEN 10 THEN 'Taiss:' WHEN 828 THEN 'Modulis:' END "
            "|| REPLACE(CAST(lt_title AS TEXT), '_', ' ') FROM templatelinks "
            "JOIN linktarget ON lt_id = tl_target_id WHERE tl_from = ?", (p.page_id,))}
        assert set(p.templates) == tpl
        cats = {"Kategoreja:" + r[0].replace("_", " ") for r in db.execute(
            "SELECT CAST(cl_to AS TEXT) FROM categorylinks WHERE cl_from = ?", (p.page_id,))}
        assert set(p.categories) == cats
        props = dict(db.execute("SELECT CAST(pp_propname AS TEXT), CAST(pp_value AS TEXT) "
                                "FROM page_props WHERE pp_page = ?", (p.page_id,)).fetchall())
        assert dict(p.props) == props
        ts, text = dump_pages[p.title]
        if time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(p.timestamp)) == ts:
            unchanged += 1
            assert p.wikitext == text
    assert unchanged >= 30  # most were not edited by other tests


def test_fetch_normalizes_skips_missing_and_flags_redirects(source, db):
    redirect = db.execute("SELECT CAST(page_title AS TEXT) FROM page WHERE page_namespace = 0 "
                          "AND page_is_redirect = 1 LIMIT 1").fetchone()[0].replace("_", " ")
    pages = source.fetch(["latgola", f"Nav taida lopa {uuid.uuid4().hex}", redirect, "Latgola",
                          "Bad|title"])
    assert [p.title for p in pages] == ["Latgola", redirect]
    assert pages[0].categories and pages[0].props
    assert pages[1].is_redirect and pages[1].wikitext.lstrip().upper().startswith("#")
    assert source.fetch([]) == []


def test_fetch_merges_continued_templates_and_categories(mediawiki, source, db):
    rows = db.execute("SELECT tl_from FROM templatelinks JOIN page ON page_id = tl_from "
                      "WHERE page_namespace = 0 GROUP BY tl_from "
                      "ORDER BY COUNT(*) DESC LIMIT 60").fetchall()
    titles = list(source.page_titles([r[0] for r in rows]).values())
    assert len(titles) == 60  # two requests of 50 + 10 titles
    tiny = ApiSource(mediawiki.api_url, user_agent=USER_AGENT, link_limit=40)
    whole, paged = source.fetch(titles), tiny.fetch(titles)
    assert whole == paged
    assert sum(len(p.templates) for p in whole) > 300


def test_tags_and_parent_tags_of_a_reverted_add_link_edit(mediawiki, source):
    title = f"Addlink API test {uuid.uuid4().hex[:8]}"
    mediawiki.edit(title, "Pyrmuo versija.")
    tagged = mediawiki.edit(title, "Ūtrō versija ar [[Latgola]].", tags=[TAG])
    page = source.fetch([title])[0]
    assert page.rev_id == tagged and page.tags == (TAG,) and page.parent_tags is None
    undo = mediawiki.undo(title, tagged)
    page = source.fetch([title])[0]
    assert page.rev_id == undo
    assert "mw-undo" in page.tags
    assert page.parent_tags == (TAG,)
    assert page.wikitext == "Pyrmuo versija."


def test_targets_detects_red_links_and_keeps_redirects_blue(source, db):
    redirect_id, redirect = db.execute(
        "SELECT page_id, CAST(page_title AS TEXT) FROM page WHERE page_namespace = 0 "
        "AND page_is_redirect = 1 LIMIT 1").fetchone()
    red = f"Nav taida lopa {uuid.uuid4().hex}"
    names = ["Latgola", "latgola", red, redirect.replace("_", " "), "Bad|title", "",
             "Taiss:Commonscat", "Seviškuo:Random"]
    many = names + [f"Red link {i}" for i in range(120)]  # several batches of 50
    info = source.targets(many)
    assert set(info) == set(many)
    latgola = db.execute("SELECT page_id FROM page WHERE page_namespace = 0 "
                         "AND page_title = 'Latgola'").fetchone()[0]
    assert info["Latgola"].page_id == info["latgola"].page_id == latgola
    assert info[red].page_id is None and info[red].known
    assert info[redirect.replace("_", " ")].page_id == redirect_id
    assert info["Bad|title"].page_id is None and info[""].page_id is None
    assert info["Taiss:Commonscat"].page_id is not None
    assert info["Seviškuo:Random"].page_id is None
    assert all(info[f"Red link {i}"].page_id is None for i in range(120))
    assert info[red].title == red


def test_latest_revisions_follow_a_fresh_edit(mediawiki, source):
    title = f"Addlink API test {uuid.uuid4().hex[:8]}"
    first = mediawiki.edit(title, "Pyrmuo.")
    pid = mediawiki.page_id(title)
    assert source.latest_revisions([pid, 10**8]) == {pid: first}
    second = mediawiki.edit(title, "Ūtrō.")
    assert second > first
    assert source.latest_revisions([pid]) == {pid: second}
    assert source.page_titles([pid]) == {pid: title}


def test_bot_password_login(mediawiki):
    user, password = mediawiki.create_bot_password()
    src = ApiSource(mediawiki.api_url, user_agent=USER_AGENT, username=user, password=password)
    info = src.request(action="query", meta="userinfo")["query"]["userinfo"]
    assert info["name"] == "Admin" and not info.get("anon")
    with pytest.raises(ApiSourceError, match="login as 'Admin@nope' failed"):
        ApiSource(mediawiki.api_url, user_agent=USER_AGENT, username="Admin@nope",
                  password="wrong-password")


def test_configuration_errors_are_clear():
    with pytest.raises(ApiSourceError, match="user_agent"):
        ApiSource("http://127.0.0.1:1/api.php", user_agent="python")
    with pytest.raises(ApiSourceError, match="http"):
        ApiSource("127.0.0.1/api.php", user_agent=USER_AGENT)
    with pytest.raises(ApiSourceError, match="username and password"):
        ApiSource("http://127.0.0.1:1/api.php", user_agent=USER_AGENT, username="Bot@x")


# ----------------------------------------------------------------------------- retries

OK = {"batchcomplete": True, "query": {"pages": [{"pageid": 7, "ns": 0, "title": "Seven",
                                                  "lastrevid": 70}]}}
MAXLAG = {"error": {"code": "maxlag", "info": "Waiting for 10.0.0.1: 7 seconds lagged.",
                    "host": "10.0.0.1", "lag": 7}}


class Scripted(LoopbackServer):
    """A real HTTP server on 127.0.0.1 answering from a script of (status, headers, body, delay)."""

    def __init__(self, script: list[tuple[int, dict, object, float]]) -> None:
        self.script = list(script)
        self.seen: list[tuple[float, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.seen.append((time.monotonic(), parse_qs(urlsplit(self.path).query)))
                status, headers, body, delay = outer.script.pop(0) if outer.script \
                    else (200, {}, OK, 0)
                time.sleep(delay)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._listen(Handler, path="/w/api.php")


def flaky_source(url: str, **kw) -> ApiSource:
    kw = {"retries": 3, "backoff": 0.05, "timeout": 0.5, **kw}
    return ApiSource(url, user_agent=USER_AGENT, **kw)


def test_retries_5xx_with_exponential_backoff():
    page = "<html><body>503 Service Unavailable</body></html>"
    with Scripted([(503, {}, page, 0), (502, {}, page, 0), (200, {}, OK, 0)]) as srv:
        assert flaky_source(srv.url).latest_revisions([7]) == {7: 70}
    times = [t for t, _ in srv.seen]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.05 and times[2] - times[1] >= 0.1  # doubled
    assert all(q["maxlag"] == ["5"] for _, q in srv.seen)
    assert srv.seen[0][1]["pageids"] == ["7"] and srv.seen[0][1]["formatversion"] == ["2"]


def test_maxlag_error_honours_retry_after():
    headers = {"Retry-After": "1", "X-Database-Lag": "7", "Content-Type": "application/json"}
    with Scripted([(200, headers, MAXLAG, 0), (200, {}, OK, 0)]) as srv:
        assert flaky_source(srv.url).latest_revisions([7]) == {7: 70}
    (t0, _), (t1, _) = srv.seen
    assert t1 - t0 >= 1.0  # Retry-After, not the 0.05 s backoff


def test_5xx_json_and_timeouts_are_retried_then_given_up():
    with Scripted([(503, {"Retry-After": "0"}, OK, 0), (200, {}, OK, 0.8),
                   (200, {}, OK, 0)]) as srv:
        assert flaky_source(srv.url).latest_revisions([7]) == {7: 70}
    assert len(srv.seen) == 3
    with Scripted([(503, {}, "down", 0)] * 10) as srv, \
            pytest.raises(ApiSourceError, match="giving up after 3 attempts: HTTP 503"):
        flaky_source(srv.url, retries=2).latest_revisions([7])
    assert len(srv.seen) == 3


def test_connection_refused_and_api_errors():
    with Scripted([]) as srv:
        url = srv.url
    with pytest.raises(ApiSourceError, match="giving up after 2 attempts: ConnectionError"):
        flaky_source(url, retries=1).latest_revisions([7])
    bad = {"error": {"code": "badvalue", "info": "Unrecognized value for parameter \"x\"."}}
    with Scripted([(200, {}, bad, 0)]) as srv, \
            pytest.raises(ApiSourceError, match="API error badvalue"):
        flaky_source(srv.url).latest_revisions([7])
    assert len(srv.seen) == 1  # not retried


def test_a_200_that_is_not_json_is_retried_like_a_5xx():
    truncated = json.dumps(OK)[:40]  # an answer cut short
    error_page = "<html><body>upstream proxy error</body></html>"
    with Scripted([(200, {}, truncated, 0), (200, {"Content-Type": "text/html"}, error_page, 0),
                   (200, {}, OK, 0)]) as srv:
        assert flaky_source(srv.url).latest_revisions([7]) == {7: 70}
    assert len(srv.seen) == 3
    with Scripted([(200, {}, truncated, 0)] * 5) as srv, \
            pytest.raises(ApiSourceError, match="MediaWiki unavailable: .* giving up after 2 "
                                                "attempts: HTTP 200 answer is not JSON"):
        flaky_source(srv.url, retries=1).latest_revisions([7])

"""A stand-in for CirrusSearch: the Action API's ``list=search`` over the local MediaWiki's
articles, for exactly the keywords addlink uses (CirrusSearch and Elasticsearch cannot be
installed here; docs/runner.md "Per-topic pools" says what it reproduces).

- Pages: every namespace-0 non-redirect page of the local MediaWiki (real page ids and titles,
  read once through its API). Topics: each page's ORES-like topics are derived from its
  categories, deterministically: a category belongs to ``TOPICS[sha1(category) % n]``; a page
  is in the topics of all its categories (so many pages are in several topics); a page without
  categories is in the topic of its title's hash (ORES gives every article a topic).
- Tags: ``recommendation.link`` per page, set and cleared ONLY by the weighted-tags events
  that the tests' EventGate (tests/eventgate.py) accepts from the job, applied ``lag``
  seconds after they arrived, in arrival order (as the real index applies its update
  stream), so job -> events -> index -> counts is one loop, and a lost or reordered event
  is a drift the drift command must find. Tests may inject drift directly (``tag``,
  ``untag``) or lose / swap a page's next events (``lose_next``, ``swap_next``).
- Queries: whitespace-separated keywords, each possibly negated with ``-``:
  ``hasrecommendation:link``, ``articletopic:a|b`` (any of), ``pageid:1|2`` (any of).
  Anything else is answered with an API error rather than a silently empty result.
  ``srnamespace`` (0), ``srlimit`` (max 500), ``sroffset`` with ``continue``, ``srsort``
  (``random``: a shuffled order fixed per query string and instance seed, so that paging
  with sroffset is consistent; otherwise page-id order), ``searchinfo.totalhits``.
- ``meta=siteinfo&siprop=extensions`` lists CirrusSearch (how a source detects it).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import requests

from tests.loopback import LoopbackServer

TOPICS = ("biography", "culture", "europe", "geography", "history", "religion", "society",
          "stem")
TAG = "recommendation.link"


def _bucket(text: str, n: int) -> int:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % n


def topics_from_categories(title: str, categories: Iterable[str],
                           topics: tuple[str, ...] = TOPICS) -> frozenset[str]:
    cats = list(categories)
    if not cats:
        return frozenset({topics[_bucket(title, len(topics))]})
    return frozenset(topics[_bucket(c, len(topics))] for c in cats)


@dataclass
class Page:
    page_id: int
    title: str
    topics: frozenset[str]


def load_pages(api_url: str, topics: tuple[str, ...] = TOPICS) -> dict[int, Page]:
    """Articles of the MediaWiki at ``api_url`` with their derived topics."""
    cats: dict[int, list[str]] = {}
    titles: dict[int, str] = {}
    params = {"action": "query", "generator": "allpages", "gapnamespace": 0,
              "gapfilterredir": "nonredirects", "gaplimit": "max", "prop": "categories",
              "cllimit": "max", "format": "json", "formatversion": 2, "continue": ""}
    with requests.Session() as s:
        s.headers["User-Agent"] = "addlink-tests/0.1 (search index stand-in; 127.0.0.1)"
        while True:
            doc = s.get(api_url, params=params, timeout=60).json()
            for p in doc.get("query", {}).get("pages", []):
                titles[p["pageid"]] = p["title"]
                cats.setdefault(p["pageid"], []).extend(
                    c["title"] for c in p.get("categories", []))
            if "continue" not in doc:
                break
            params.update(doc["continue"])
    return {pid: Page(pid, t, topics_from_categories(t, cats[pid], topics))
            for pid, t in titles.items()}


class QueryError(ValueError):
    pass


@dataclass
class SearchIndex(LoopbackServer):
    """``with SearchIndex(pages, lag=0.5) as idx: ... idx.url ...`` (an api.php URL)."""

    pages: dict[int, Page]
    lag: float = 0.0
    seed: int = 0
    tagged: set[int] = field(default_factory=set)
    queue: list[tuple[float, int, bool]] = field(default_factory=list)  # (due, page, set?)
    requests: int = 0
    _lose: set[int] = field(default_factory=set)
    _swap: dict[int, list] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._answer(parse_qs(urlsplit(self.path).query))

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._answer(parse_qs(body.decode("utf-8")))

            def _answer(self, qs: dict[str, list[str]]) -> None:
                params = {k: v[-1] for k, v in qs.items()}
                data = json.dumps(index.answer(params)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._listen(Handler, path="/api.php")

    # ------------------------------------------------------------------ the update stream
    def receive(self, events: list[dict]) -> None:
        """Events EventGate accepted (tests/eventgate.py ``subscribers``), applied after
        ``lag`` seconds in arrival order."""
        now = time.monotonic()
        with self.lock:
            for ev in events:
                page = int((ev.get("page") or {}).get("page_id") or 0)
                tags = ev.get("weighted_tags") or {}
                update = (now + self.lag, page, TAG in (tags.get("set") or {}))
                if TAG not in (tags.get("set") or {}) and TAG not in (tags.get("clear") or []):
                    continue
                if page in self._lose:
                    self._lose.discard(page)
                    continue
                if page in self._swap:
                    held = self._swap[page]
                    held.append(update)
                    if len(held) == 2:  # the later event lands first
                        del self._swap[page]
                        self.queue += [(now + self.lag, page, held[1][2]),
                                       (now + self.lag, page, held[0][2])]
                    continue
                self.queue.append(update)

    def lose_next(self, page_id: int) -> None:
        with self.lock:
            self._lose.add(page_id)

    def swap_next(self, page_id: int) -> None:
        """The page's next two events are applied in the opposite order."""
        with self.lock:
            self._swap[page_id] = []

    def tag(self, page_id: int) -> None:
        with self.lock:
            self.tagged.add(page_id)

    def untag(self, page_id: int) -> None:
        with self.lock:
            self.tagged.discard(page_id)

    def apply_due(self) -> None:
        now = time.monotonic()
        with self.lock:
            due = [u for u in self.queue if u[0] <= now]
            self.queue = [u for u in self.queue if u[0] > now]
            for _, page, is_set in due:
                (self.tagged.add if is_set else self.tagged.discard)(page)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every received event is applied (the lag passed)."""
        deadline = time.monotonic() + timeout
        while True:
            self.apply_due()
            with self.lock:
                if not self.queue:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("search index: events still queued")
            time.sleep(0.05)

    # ------------------------------------------------------------------ counts for tests
    def count(self, topic: str | None = None) -> int:
        self.apply_due()
        with self.lock:
            return sum(1 for p in self.tagged
                       if p in self.pages and (topic is None or topic in self.pages[p].topics))

    def topic_pages(self, topic: str) -> set[int]:
        return {p for p, page in self.pages.items() if topic in page.topics}

    # ------------------------------------------------------------------ the API
    def answer(self, params: dict[str, str]) -> dict:
        with self.lock:
            self.requests += 1
        self.apply_due()
        if params.get("action") != "query":
            return _error("badvalue", f"the stand-in answers action=query only, not "
                          f"{params.get('action')!r}")
        if params.get("meta") == "siteinfo":
            return {"batchcomplete": True, "query": {"extensions": [
                {"type": "other", "name": "CirrusSearch"},
                {"type": "other", "name": "GrowthExperiments"}]}}
        if params.get("list") != "search":
            return _error("badvalue", "the stand-in answers list=search and meta=siteinfo")
        try:
            return self.search(params)
        except QueryError as e:
            return _error("cirrussearch-standin-unsupported", str(e))

    def _matcher(self, query: str):
        tests = []
        for token in query.split():
            neg = token.startswith("-")
            key, _, value = token.lstrip("-").partition(":")
            values = set(value.split("|")) if value else set()
            if key == "hasrecommendation" and values <= {"link"} and values:
                def test(p, tagged=self.tagged):
                    return p.page_id in tagged
            elif key == "articletopic" and values:
                def test(p, vs=frozenset(values)):
                    return bool(p.topics & vs)
            elif key == "pageid" and values and all(v.isdigit() for v in values):
                def test(p, ids=frozenset(int(v) for v in values)):
                    return p.page_id in ids
            else:
                raise QueryError(f"keyword {token!r} is not reproduced by the stand-in")
            tests.append((neg, test))
        if not tests:
            raise QueryError("empty srsearch")
        return lambda p: all(t(p) != neg for neg, t in tests)

    def search(self, params: dict[str, str]) -> dict:
        query = params.get("srsearch", "")
        if params.get("srnamespace", "0") != "0":
            raise QueryError("only srnamespace=0 is indexed")
        limit = params.get("srlimit", "10")
        limit = 500 if limit == "max" else min(500, max(1, int(limit)))
        offset = int(params.get("sroffset", "0") or 0)
        match = self._matcher(query)
        with self.lock:
            hits = [p for _, p in sorted(self.pages.items()) if match(p)]
        if params.get("srsort") == "random":
            random.Random(f"{self.seed}:{query}").shuffle(hits)
        page = hits[offset:offset + limit]
        doc: dict = {"batchcomplete": True, "query": {
            "searchinfo": {"totalhits": len(hits)},
            "search": [{"ns": 0, "title": p.title, "pageid": p.page_id} for p in page]}}
        if offset + limit < len(hits):
            doc["continue"] = {"sroffset": offset + limit, "continue": "-||"}
        return doc


def _error(code: str, info: str) -> dict:
    return {"error": {"code": code, "info": info}}


def topic_wiki(model: str, api_url: str, search_url: str | None, *, per_topic: int = 5,
               batch: int = 10, topics: Iterable[str] = TOPICS, **candidates: object) -> dict:
    """The ltgwiki entry of a config with per-topic pools over the local MediaWiki (tests'
    and benchmarks/topic_bench.py's test-sized settings)."""
    return {"language": "ltg", "domain": "ltg.wikipedia.org", "model": model,
            "source": {"type": "api", "api_url": api_url, "search_lag": 1.0,
                       **({"search_url": search_url} if search_url else {})},
            "candidates": {"strategy": "search", "topics": list(topics), "batch_size": batch,
                           "minimum_tasks_per_topic": per_topic, **candidates},
            # lenient enough that most topics can fill from ltgwiki's 903 articles
            "criteria": {"minimum_link_score": 0.4, "minimum_links_per_task": 1,
                         "disambiguation_templates": ["Zeimeibu škiršona"]}}

"""A ``WikiSource`` over the MediaWiki Action API (``mwapi``): the production source.

Politeness and resilience: every request carries ``maxlag`` and a descriptive User-Agent;
5xx answers, timeouts, connection errors and the API errors ``maxlag``/``readonly``/
``ratelimited`` are retried with exponential backoff, waiting at least what ``Retry-After``
says. Each continued request is retried on its own, so a long walk never restarts.

Candidate strategies:

- ``search``: CirrusSearch queries from ``queries/search/candidates.txt`` (``{topic}`` is
  the ORES topic; without a topic the token holding it is dropped), random order, paged with
  ``sroffset``. A vanilla MediaWiki has no CirrusSearch keywords: there the fallback query
  (``queries/search/fallback.txt`` or ``fallback_query``) is run as ``srwhat=text``.
- ``random``: ``list=random`` over non-redirect articles, continued until the wiki has been
  walked once (MediaWiki's random walk wraps around once and stops).
- ``allpages``: page-id order, because the resume point is a page id and shards are
  ``page_id % N == i``. ``list=allpages`` is ordered by title, so instead ids are asked for
  directly (``pageids=`` with 50 ids of this shard per request, ``prop=info``): missing ids,
  other namespaces and redirects are skipped. The walk ends past the highest page id the wiki
  reports (site statistics' page count, newest page creation in the log and in recent
  changes) once ``gap_limit`` consecutive page ids held no page (of this shard).

Red links (``targets``): redirects are NOT followed. A redirect is an existing page, so a link
to it is not red (its own page id is returned); a missing, invalid or special title has no
page id. ``TargetInfo.title`` is the title as asked, like the dump source.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mwapi
import mwapi.errors
import requests

from runner.errors import ServiceUnavailable
from runner.records import Candidate, PageData, TargetInfo

log = logging.getLogger("runner.sources.api")

SEARCH_DIR = Path(__file__).resolve().parents[2] / "queries" / "search"
ADD_LINK_TAG = "newcomer task add link"
REVERT_TAGS = ("mw-rollback", "mw-undo", "mw-manual-revert")  # as ChangeTags::REVERT_TAGS
RETRY_API_CODES = frozenset({"maxlag", "readonly", "ratelimited"})
TITLES_PER_REQUEST = 50  # the Action API's limit without the apihighlimits right


class ApiSourceError(RuntimeError):
    """The wiki could not answer (after retries), or the request makes no sense for it."""


class ApiUnavailable(ApiSourceError, ServiceUnavailable):
    """The wiki did not answer usefully within the retries (timeouts, 5xx, non-JSON)."""

    def __init__(self, detail: str) -> None:
        ServiceUnavailable.__init__(self, "MediaWiki", detail)


class _Retryable(Exception):
    def __init__(self, what: str, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.retry_after = retry_after


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _unix(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def read_query(name: str, directory: Path = SEARCH_DIR) -> str:
    """A search query template: the file's non-comment lines joined by spaces."""
    path = directory / f"{name}.txt"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ApiSourceError(f"search query template {path}: {e.strerror}") from e
    query = " ".join(x.strip() for x in lines if x.strip() and not x.lstrip().startswith("#"))
    if not query:
        raise ApiSourceError(f"search query template {path} is empty")
    return query


def fill_query(template: str, topic: str | None) -> str:
    """Put the topic into a template; without a topic, drop the tokens that need one."""
    if topic is not None:
        return template.replace("{topic}", topic)
    return " ".join(t for t in template.split() if "{topic}" not in t)


class ApiSource:
    """Candidates and page data of one wiki through its api.php (see the module docstring)."""

    def __init__(
        self,
        api_url: str | None = None,
        *,
        user_agent: str,
        host: str | None = None,
        api_path: str = "/w/api.php",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        maxlag: int | None = 5,
        retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 120.0,
        cirrus: bool | None = None,
        queries: dict[str, str] | None = None,
        fallback_query: str | None = None,
        namespace: int = 0,
        titles_per_request: int = TITLES_PER_REQUEST,
        gap_limit: int = 1000,
        link_limit: int | str = "max",
        session: requests.Session | None = None,
        search_url: str | None = None,
    ) -> None:
        if api_url:
            parts = urlsplit(api_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ApiSourceError(f"api_url must be an http(s) URL of api.php: {api_url!r}")
            host, api_path = f"{parts.scheme}://{parts.netloc}", parts.path or "/api.php"
        if not host:
            raise ApiSourceError("ApiSource needs api_url or host (+ api_path)")
        if not user_agent or len(user_agent.split()) < 2 and "@" not in user_agent \
                and "http" not in user_agent:
            raise ApiSourceError(
                "user_agent must identify the tool and a contact, e.g. "
                "'addlink/1.0 (https://example.org/addlink; ops@example.org)'")
        if bool(username) != bool(password):
            raise ApiSourceError("bot login needs both username and password")
        self.api_url = host.rstrip("/") + api_path
        self.user_agent = user_agent
        self.maxlag, self.retries = maxlag, retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.namespace = namespace
        self.titles_per_request = max(1, min(titles_per_request, 500))
        self.gap_limit = gap_limit
        self.link_limit = link_limit  # tllimit/cllimit per request (small values: tests)
        self._cirrus = cirrus
        self._queries = dict(queries or {})
        self._fallback_query = fallback_query
        self._last = threading.local()
        http = session or requests.Session()
        http.hooks["response"].append(self._remember)
        self.session = mwapi.Session(host.rstrip("/"), user_agent=user_agent, api_path=api_path,
                                     formatversion=2, timeout=timeout, session=http)
        self.username = username
        if username:
            self._login(username, password or "")
        # list=search may go elsewhere (source.search_url): a search cluster's API, or the
        # tests' CirrusSearch stand-in. Same politeness and retries, its own session.
        self.searcher: ApiSource = self
        if search_url and search_url.rstrip("/") != self.api_url:
            self.searcher = ApiSource(search_url, user_agent=user_agent, timeout=timeout,
                                      maxlag=maxlag, retries=retries, backoff=backoff,
                                      max_backoff=max_backoff, cirrus=cirrus, queries=queries,
                                      fallback_query=fallback_query, namespace=namespace)

    @classmethod
    def from_config(cls, wiki: Any, *, user_agent: str) -> ApiSource:
        """From a ``WikiConfig`` (``wiki.source`` is its SourceSection)."""
        s = wiki.source
        password = s.bot_password.reveal() if getattr(s, "bot_password", None) else None
        return cls(s.api_url, user_agent=user_agent, username=s.bot_user, password=password,
                   timeout=s.timeout, maxlag=s.maxlag, retries=s.max_retries,
                   cirrus=getattr(s, "cirrus", None),
                   fallback_query=getattr(s, "fallback_query", None),
                   search_url=getattr(s, "search_url", None))

    def close(self) -> None:
        self.session.session.close()
        if self.searcher is not self:
            self.searcher.close()

    # ------------------------------------------------------------------ requests
    def _remember(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last.status = resp.status_code
        self._last.retry_after = _retry_after(resp.headers.get("Retry-After"))

    def _once(self, method: str, params: dict) -> dict:
        self._last.status, self._last.retry_after = None, None
        try:
            doc = self.session.request(method, dict(params))
        except mwapi.errors.APIError as e:
            if e.code in RETRY_API_CODES:
                raise _Retryable(f"API error {e.code}: {e.info}", self._last.retry_after) from e
            raise ApiSourceError(f"{self.api_url}: API error {e.code}: {e.info}") from e
        except (mwapi.errors.TimeoutError, mwapi.errors.ConnectionError) as e:
            raise _Retryable(f"{type(e).__name__}: {e}") from e
        except mwapi.errors.RequestError as e:
            raise _Retryable(f"request failed: {e}") from e
        except requests.RequestException as e:  # the body timed out or was cut mid-read
            raise _Retryable(f"{type(e).__name__}: {e}") from e
        except ValueError as e:  # not JSON: an error page from a proxy or a dying server,
            # or an answer cut short (a 200 too): retried like a 5xx. A 4xx page is not.
            status = self._last.status
            if status is None or status >= 500 or status == 429 or 200 <= status < 300:
                raise _Retryable(f"HTTP {status} answer is not JSON",
                                 self._last.retry_after) from e
            raise ApiSourceError(f"{self.api_url}: HTTP {status}: {e}") from e
        status = self._last.status
        if status is not None and (status >= 500 or status == 429):
            raise _Retryable(f"HTTP {status}", self._last.retry_after)
        return doc

    def request(self, method: str = "GET", **params: Any) -> dict:
        """One API call with maxlag and retries; raises ApiSourceError when out of retries."""
        if self.maxlag is not None:
            params.setdefault("maxlag", self.maxlag)
        for attempt in range(self.retries + 1):
            try:
                return self._once(method, params)
            except _Retryable as e:
                if attempt >= self.retries:
                    raise ApiUnavailable(
                        f"{self.api_url}: giving up after {attempt + 1} attempts: {e}") from e
                delay = min(self.max_backoff, self.backoff * 2 ** attempt)
                if e.retry_after is not None:
                    delay = max(delay, min(e.retry_after, self.max_backoff))
                log.warning("API request failed (%s); retry %d/%d in %.1f s",
                            e, attempt + 1, self.retries, delay,
                            extra={"api_url": self.api_url, "action": params.get("action")})
                time.sleep(delay)
        raise AssertionError("unreachable")

    def query(self, **params: Any) -> Iterator[dict]:
        """``action=query`` with ``continue`` paging: one document per request."""
        params = {"action": "query", "continue": "", **params}
        while True:
            doc = self.request("GET", **params)
            yield doc
            if "continue" not in doc:
                return
            params.update(doc["continue"])

    def _login(self, username: str, password: str) -> None:
        """Bot-password login (action=login; clientlogin does not take bot passwords)."""
        token = self.request("GET", action="query", meta="tokens",
                             type="login")["query"]["tokens"]["logintoken"]
        result = self.request("POST", action="login", lgname=username, lgpassword=password,
                              lgtoken=token)["login"]
        if result.get("result") != "Success":
            raise ApiSourceError(f"{self.api_url}: login as {username!r} failed: "
                                 f"{result.get('result')} {result.get('reason', '')}".strip())

    # ------------------------------------------------------------------ search
    @property
    def cirrus(self) -> bool:
        """Whether the wiki runs CirrusSearch (asked once from siteinfo unless configured)."""
        if self.searcher is not self:
            return self.searcher.cirrus
        if self._cirrus is None:
            doc = self.request(action="query", meta="siteinfo", siprop="extensions")
            names = {x.get("name") for x in doc["query"].get("extensions", [])}
            self._cirrus = "CirrusSearch" in names
        return self._cirrus

    def topic_query(self, kind: str, topic: str | None) -> str:
        """The search query of ``kind`` ("candidates" or "pool") for a topic."""
        if not self.cirrus:
            if kind == "pool":
                raise ApiSourceError(f"{self.api_url}: pool size by search needs CirrusSearch "
                                     "(hasrecommendation:link); count the store's rows instead")
            template = self._fallback_query or self._queries.get("fallback") \
                or read_query("fallback")
            if "{topic}" in template and topic is None:
                raise ApiSourceError(
                    f"{self.api_url}: no CirrusSearch here; the fallback query {template!r} "
                    "needs a topic (or configure fallback_query, or use random/allpages)")
            return fill_query(template, topic)
        return fill_query(self._queries.get(kind) or read_query(kind), topic)

    def _search_params(self, query: str, random: bool = True) -> dict:
        params = {"list": "search", "srsearch": query, "srnamespace": self.namespace}
        if self.cirrus and random:
            params["srsort"] = "random"
        else:
            params["srwhat"] = "text"
        return params

    def search_count(self, query: str) -> int:
        """Total hits of a search (``srinfo=totalhits``), e.g. pool size per topic."""
        doc = self.searcher.request(action="query", srlimit=1, srinfo="totalhits", srprop="",
                                    **self._search_params(query, random=False))
        return int(doc["query"]["searchinfo"]["totalhits"])

    def pool_count(self, topic: str | None) -> int:
        """Articles with a link recommendation in the search index (CirrusSearch only)."""
        return self.search_count(self.topic_query("pool", topic))

    def search_pages(self, query: str, limit: int = 500) -> Iterator[Candidate]:
        """Every hit of a search in the index's own order (not random: a listing that is
        paged with ``sroffset`` must not reshuffle between its pages)."""
        for doc in self.searcher.query(srlimit=min(limit, 500), srprop="",
                                       **self._search_params(query, random=False)):
            for hit in doc.get("query", {}).get("search", []):
                yield Candidate(hit["title"], hit.get("pageid"))

    # ------------------------------------------------------------------ candidates
    def candidates(self, strategy: str, *, batch_size: int, topic: str | None = None,
                   resume_from: int | None = None,
                   shard: tuple[int, int] | None = None) -> Iterator[list[Candidate]]:
        if batch_size < 1:
            raise ApiSourceError(f"batch_size must be positive, got {batch_size}")
        if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
            raise ApiSourceError(f"shard must be (i, N) with 0 <= i < N, got {shard}")
        if strategy == "search":
            stream = self._search(self.topic_query("candidates", topic), batch_size)
        elif strategy == "random":
            stream = self._random(batch_size)
        elif strategy == "allpages":
            return self._batched(self._allpages(resume_from or 0, shard), batch_size, None)
        else:
            raise ApiSourceError(f"unknown candidate strategy {strategy!r} "
                                 "(search, random, allpages)")
        return self._batched(stream, batch_size, shard)

    @staticmethod
    def _batched(stream: Iterator[Candidate], size: int,
                 shard: tuple[int, int] | None) -> Iterator[list[Candidate]]:
        seen: set[int | str] = set()
        batch: list[Candidate] = []
        for c in stream:
            key = c.page_id if c.page_id is not None else c.title
            if key in seen:
                continue
            if shard and shard[1] > 1 and c.page_id is not None \
                    and c.page_id % shard[1] != shard[0]:
                continue
            seen.add(key)
            batch.append(c)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _search(self, query: str, batch_size: int) -> Iterator[Candidate]:
        limit = min(batch_size, 500)
        for doc in self.searcher.query(srlimit=limit, srprop="",
                                       **self._search_params(query)):
            for hit in doc.get("query", {}).get("search", []):
                yield Candidate(hit["title"], hit.get("pageid"))

    def _random(self, batch_size: int) -> Iterator[Candidate]:
        for doc in self.query(list="random", rnnamespace=self.namespace,
                              rnfilterredir="nonredirects", rnlimit=min(batch_size, 500)):
            for page in doc.get("query", {}).get("random", []):
                yield Candidate(page["title"], page["id"])

    def max_page_id_hint(self) -> int:
        """A page id at or below the wiki's highest one, from counts and the newest creations."""
        doc = self.request(action="query", meta="siteinfo", siprop="statistics",
                           list="logevents|recentchanges", letype="create", lelimit=1,
                           leprop="ids", rctype="new", rclimit=1, rcprop="ids")
        q = doc["query"]
        ids = [int(q["statistics"]["pages"])]
        ids += [int(x.get("pageid") or 0) for x in q.get("logevents", [])]
        ids += [int(x.get("pageid") or 0) for x in q.get("recentchanges", [])]
        return max(ids)

    def _allpages(self, after: int, shard: tuple[int, int] | None) -> Iterator[Candidate]:
        i, n = shard if shard and shard[1] > 1 else (0, 1)
        hint = self.max_page_id_hint()
        pid = after + 1
        pid += (i - pid) % n  # first id of this shard after the resume point
        missing_run = 0
        while pid <= hint or missing_run < self.gap_limit:
            ids = list(range(pid, pid + n * self.titles_per_request, n))
            pid = ids[-1] + n
            doc = self.request(action="query", pageids=ids, prop="info")
            pages = {p["pageid"]: p for p in doc["query"].get("pages", [])}
            for x in ids:
                p = pages.get(x)
                if p is None or p.get("missing"):
                    missing_run += n  # ids of other shards count as seen-missing too
                    continue
                missing_run = 0
                if p["ns"] == self.namespace and not p.get("redirect"):
                    yield Candidate(p["title"], x)

    # ------------------------------------------------------------------ page data
    def fetch(self, titles: Iterable[str]) -> list[PageData]:
        wanted = list(dict.fromkeys(t for t in titles if t and "|" not in t))
        out: list[PageData] = []
        for chunk in _chunks(wanted, self.titles_per_request):
            out.extend(self._fetch_chunk(chunk))
        return out

    def _fetch_chunk(self, titles: list[str]) -> list[PageData]:
        pages: dict[int, dict] = {}
        order: dict[str, str] = {}  # asked title -> normalized title
        for doc in self.query(titles=titles, prop="revisions|info|pageprops|templates|categories",
                              rvprop="ids|timestamp|content|tags|contentmodel", rvslots="main",
                              tllimit=self.link_limit, cllimit=self.link_limit):
            q = doc.get("query", {})
            for n in q.get("normalized", []) + q.get("converted", []):
                order[n["from"]] = n["to"]
            for p in q.get("pages", []):
                if p.get("missing") or p.get("invalid") or "pageid" not in p:
                    continue
                merged = pages.setdefault(p["pageid"], {"templates": [], "categories": [],
                                                        "pageprops": {}})
                for key, value in p.items():
                    if key in ("templates", "categories"):
                        merged[key].extend(x["title"] for x in value)
                    elif key == "pageprops":
                        merged["pageprops"].update(value)
                    elif key == "revisions":
                        merged.setdefault("revisions", value)
                    else:
                        merged[key] = value
        parent_tags = self._parent_tags(pages.values())
        by_title: dict[str, PageData] = {}
        for p in pages.values():
            if not p.get("revisions"):
                continue
            rev = p["revisions"][0]
            slot = rev.get("slots", {}).get("main", {})
            if "content" not in slot:  # hidden (revdeleted) or not sent: nothing to evaluate
                log.warning("no content for %s r%s", p["title"], rev.get("revid"),
                            extra={"title": p["title"]})
                continue
            by_title[p["title"]] = PageData(
                page_id=int(p["pageid"]), title=p["title"], rev_id=int(rev["revid"]),
                timestamp=_unix(rev["timestamp"]),
                content_model=slot.get("contentmodel") or p.get("contentmodel", ""),
                wikitext=slot["content"], tags=tuple(rev.get("tags", ())),
                parent_tags=parent_tags.get(int(rev["revid"])),
                templates=tuple(dict.fromkeys(p["templates"])),
                categories=tuple(dict.fromkeys(p["categories"])),
                props=tuple(sorted((k, str(v)) for k, v in p["pageprops"].items())),
                namespace=int(p["ns"]), is_redirect=bool(p.get("redirect")))
        out = []
        for t in titles:
            title = order.get(t, t)
            title = order.get(title, title)
            page = by_title.pop(title, None)
            if page is not None:
                out.append(page)
        return out + list(by_title.values())

    def _parent_tags(self, pages: Iterable[dict]) -> dict[int, tuple[str, ...]]:
        """revid -> tags of its parent revision, for latest revisions that are reverts.

        Only reverts need them (``last_edit_link_recommendation_revert``); for other pages
        ``PageData.parent_tags`` stays None (unknown), saving a request per batch.
        """
        parents: dict[int, int] = {}
        for p in pages:
            for rev in p.get("revisions", [])[:1]:
                if rev.get("parentid") and set(rev.get("tags", ())) & set(REVERT_TAGS):
                    parents[int(rev["parentid"])] = int(rev["revid"])
        out: dict[int, tuple[str, ...]] = {}
        for chunk in _chunks(list(parents), self.titles_per_request):
            doc = self.request(action="query", prop="revisions", revids=chunk,
                               rvprop="ids|tags")
            for p in doc["query"].get("pages", []):
                for rev in p.get("revisions", []):
                    if rev["revid"] in parents:
                        out[parents[rev["revid"]]] = tuple(rev.get("tags", ()))
        return out

    def targets(self, titles: Iterable[str]) -> dict[str, TargetInfo]:
        asked = list(dict.fromkeys(titles))
        out = {t: TargetInfo(t, None) for t in asked}  # invalid titles stay red
        valid = [t for t in asked if t.strip() and "|" not in t]
        for chunk in _chunks(valid, self.titles_per_request):
            doc = self.request(action="query", titles=chunk, prop="info")
            q = doc["query"]
            to = {n["from"]: n["to"] for n in q.get("normalized", []) + q.get("converted", [])}
            ids = {p["title"]: p.get("pageid") for p in q.get("pages", [])
                   if not p.get("missing") and not p.get("invalid") and p.get("ns", -1) >= 0}
            for t in chunk:
                title = to.get(t, t)
                title = to.get(title, title)
                pid = ids.get(title)
                out[t] = TargetInfo(t, int(pid) if pid else None)
        return out

    def latest_revisions(self, page_ids: Iterable[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for chunk in _chunks(list(dict.fromkeys(int(p) for p in page_ids)),
                             self.titles_per_request):
            doc = self.request(action="query", pageids=chunk, prop="info")
            for p in doc["query"].get("pages", []):
                if not p.get("missing") and p.get("lastrevid"):
                    out[int(p["pageid"])] = int(p["lastrevid"])
        return out

    def page_titles(self, page_ids: Iterable[int]) -> dict[int, str]:
        """page id -> current title (pages that no longer exist are left out)."""
        out: dict[int, str] = {}
        for chunk in _chunks(list(dict.fromkeys(int(p) for p in page_ids)),
                             self.titles_per_request):
            doc = self.request(action="query", pageids=chunk)
            for p in doc["query"].get("pages", []):
                if not p.get("missing"):
                    out[int(p["pageid"])] = p["title"]
        return out

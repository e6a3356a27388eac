"""GET's wikitext: one Action API request to the wiki (SPEC §6), configured, never taken
from the request (the URL, an optional Host header for an internal endpoint, a proxy)."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from model.wikis import Wiki
from service.config import ServiceConfig


class PageMissing(LookupError):
    """No such page or revision (answered 404)."""


class BadTitle(ValueError):
    """MediaWiki refuses the title (answered 400)."""


class UpstreamError(RuntimeError):
    """The Action API could not be reached or answered an error (answered 502)."""


class UpstreamTimeout(UpstreamError):
    """The Action API did not answer within the request's deadline (answered 504)."""


@dataclass(frozen=True)
class Revision:
    title: str
    pageid: int
    revid: int
    wikitext: str


class ActionApi:
    def __init__(self, cfg: ServiceConfig) -> None:
        self.cfg = cfg
        self.http = requests.Session()
        self.http.headers["User-Agent"] = cfg.service.user_agent
        self.http.trust_env = False  # the proxy comes from the config only
        if cfg.service.proxy:
            self.http.proxies = {"http": cfg.service.proxy, "https": cfg.service.proxy}

    def revision(self, wiki: Wiki, title: str, revid: int | None, timeout: float) -> Revision:
        url = self.cfg.api_url(wiki)
        if not url:  # a deployment that serves this wiki by POST only: no page to GET here
            raise PageMissing(f"{wiki.name}: pages cannot be fetched here (no Action API "
                              "configured); POST the wikitext instead")
        params = {"action": "query", "prop": "revisions", "rvprop": "ids|content",
                  "rvslots": "main", "format": "json", "formatversion": "2"}
        if revid is None:
            params["titles"] = title
        else:
            params["revids"] = str(revid)
        headers = {"Host": wiki.domain} if self.cfg.service.host_header and wiki.domain else {}
        try:
            resp = self.http.get(url, params=params, headers=headers,
                                 timeout=min(timeout, self.cfg.service.fetch_timeout))
            resp.raise_for_status()
            data = resp.json()
        except requests.Timeout:
            raise UpstreamTimeout(f"{wiki.name}: the Action API did not answer in time") from None
        except (requests.RequestException, ValueError) as e:
            raise UpstreamError(f"{wiki.name}: Action API request failed: "
                                f"{type(e).__name__}") from None
        if "error" in data:
            raise UpstreamError(f"{wiki.name}: Action API error {data['error'].get('code')}")
        query = data.get("query") or {}
        if query.get("badrevids"):
            raise PageMissing(f"revision {revid} does not exist on {wiki.name}")
        pages = query.get("pages") or []
        if not pages:  # e.g. a title that is only a fragment or an interwiki prefix
            raise BadTitle(f"{title!r} is not a page title of {wiki.name}")
        page = pages[0]
        if page.get("invalid"):
            raise BadTitle(f"invalid title: {page.get('invalidreason', title)}")
        if page.get("missing") or not page.get("revisions"):
            raise PageMissing(f"page {title!r} does not exist on {wiki.name}")
        if revid is not None and _norm(page["title"]) != _norm(title):
            raise PageMissing(f"revision {revid} is not a revision of {title!r} on {wiki.name}")
        rev = page["revisions"][0]
        return Revision(page["title"], int(page["pageid"]), int(rev["revid"]),
                        rev["slots"]["main"].get("content", ""))


def _norm(title: str) -> str:
    t = " ".join(title.replace("_", " ").split())
    return t[:1].upper() + t[1:]

"""What the search index says about a wiki's pool: the truth newcomers see (SPEC §5, §8).

Newcomers find tasks through CirrusSearch (``hasrecommendation:link articletopic:<t>``),
not through the table, so the pool size per topic and the drift check ask the index.
Everything goes through the source's ``list=search`` (``source.search_url``, default the
wiki's api.php); a wiki without CirrusSearch has none of these keywords, and its callers
fall back to the table (``has_index`` is False there).

Queries use exactly the keywords CirrusSearch documents and tests/searchindex.py stands in
for: ``hasrecommendation:link``, ``articletopic:``, ``pageid:a|b|c``, negation with ``-``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PAGEIDS_PER_QUERY = 50  # ids in one pageid: filter (a query string, not a POST body)


def _api(source: Any) -> Any:
    """The Action API source behind a TimedSource (None for a dump source)."""
    inner = getattr(source, "inner", source)
    return inner if hasattr(inner, "search_pages") else None


def has_index(source: Any) -> bool:
    """Whether the wiki's search index has the recommendation and topic keywords."""
    api = _api(source)
    return bool(api is not None and api.cirrus)


def topic_counts(source: Any, topics: Iterable[str]) -> dict[str, int]:
    """Pool size of each topic: total hits of ``hasrecommendation:link articletopic:<t>``."""
    api = _api(source)
    return {t: api.pool_count(t) for t in topics}


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), PAGEIDS_PER_QUERY):
        yield ids[i:i + PAGEIDS_PER_QUERY]


def _hits(api: Any, query: str, ids: list[int]) -> set[int]:
    out: set[int] = set()
    for chunk in _chunks(ids):
        q = f"{query} pageid:{'|'.join(map(str, chunk))}".strip()
        out.update(int(c.page_id) for c in api.search_pages(q) if c.page_id is not None)
    return out


def topics_of(source: Any, page_ids: Iterable[int], topics: Iterable[str]) -> dict[int, set]:
    """page id -> the configured topics the index files it under (one query per topic and
    50 pages): a page counts for each of its topics, as in production."""
    api = _api(source)
    ids = sorted(set(page_ids))
    out: dict[int, set] = {p: set() for p in ids}
    if api is None or not ids:
        return out
    for t in topics:
        for p in _hits(api, f"articletopic:{t}", ids):
            out.setdefault(p, set()).add(t)
    return out


def tagged_pages(source: Any) -> dict[int, str]:
    """page id -> title of every article the index holds as having a recommendation."""
    api = _api(source)
    return {int(c.page_id): c.title for c in api.search_pages(api.topic_query("pool", None))
            if c.page_id is not None}


def untagged(source: Any, page_ids: Iterable[int]) -> set[int]:
    """Those of ``page_ids`` the index does not hold as having a recommendation."""
    api = _api(source)
    ids = sorted(set(page_ids))
    return set(ids) - _hits(api, api.topic_query("pool", None), ids)


# ---------------------------------------------------------------------------- drift

@dataclass
class Drift:
    """What the index and the table disagree on (pages with events pending, or acknowledged
    within the index's lag, are left out: they are on their way)."""

    tag_without_row: dict[int, str] = field(default_factory=dict)  # page -> title
    row_without_tag: list[int] = field(default_factory=list)
    settling: int = 0  # pages left alone: pending or acknowledged within the lag


def drift(source: Any, store: Any, lag: float, now: float | None = None) -> Drift:
    """Compare the index with the table: every tagged page must have a data row, every data
    row a tag. The tagged pages are listed once (``hasrecommendation:link``); the rows are
    checked 50 page ids per query (``pageid:``), so the table side scales with the table."""
    now = time.time() if now is None else now
    rows = [r.page_id for r in store.iter_data_rows()]
    quiet = store.pending_pages() | store.acked_since(now - lag)
    tagged = tagged_pages(source)
    out = Drift()
    row_set = set(rows)
    for p, title in sorted(tagged.items()):
        if p not in row_set:
            if p in quiet:
                out.settling += 1
            else:
                out.tag_without_row[p] = title
    for p in sorted(untagged(source, rows)):
        if p in quiet:
            out.settling += 1
        else:
            out.row_without_tag.append(p)
    return out

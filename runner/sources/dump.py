"""A ``WikiSource`` over a local XML dump (plain, .bz2, .xz): the offline default.

Compressed dumps allow no random access, so the first use streams the dump once (mwxml,
constant memory) into a SQLite cache next to the other runtime files:
``<cache_dir>/dump-<key>.sqlite``, key = path + size + mtime, so a new dump gets a new cache.
Each page keeps its last revision's zlib-compressed text, templates and categories (read
from the wikitext: a dump has no link tables, so templates transcluded indirectly are not
seen). The cache needs about the compressed dump's size on disk and is built in one pass
(the 106-article English sample: well under a second; a full enwiki dump: hours — use the
API source for big wikis). The cache is written under a temporary name and renamed, so a
crash never leaves a half-built cache behind.

Red links: a complete dump (``complete: true``) knows every page, so a missing target is a
red link. In a slice, a target outside the file is "unknown" (``TargetInfo.known=False``)
and is never pruned.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import mwxml
import numpy as np

from model.dump import open_file
from model.text import normalize_title
from runner.records import Candidate, PageData, TargetInfo

log = logging.getLogger("runner.sources.dump")

_TEMPLATE = re.compile(r"\{\{\s*([^{}|\n<>\[\]]+?)\s*(?=\||\}\}|\n)")
_MODIFIERS = re.compile(r"^(?:subst|safesubst|msgnw|raw)\s*:\s*", re.I)
CACHE_VERSION = "1"


class DumpSourceError(ValueError):
    """The dump cannot be read or the request cannot be served from a dump."""


class _Namespaces:
    """Local and canonical names of the Template and Category namespaces of the dump."""

    def __init__(self, site_info: object) -> None:
        self.template = {"template"}
        self.category = {"category"}
        self.any = set()
        for ns in getattr(site_info, "namespaces", None) or ():
            names = {n.lower() for n in (ns.name, getattr(ns, "canonical", None)) if n}
            if ns.id == 10:
                self.template |= names
            elif ns.id == 14:
                self.category |= names
            if ns.id != 0:
                self.any |= names
        cats = "|".join(re.escape(n) for n in sorted(self.category, key=len, reverse=True))
        self.category_re = re.compile(r"\[\[\s*(?:" + cats + r")\s*:\s*([^\]|\n]+)", re.I)

    def templates(self, text: str) -> list[str]:
        out: dict[str, None] = {}
        for m in _TEMPLATE.finditer(text):
            name = _MODIFIERS.sub("", m.group(1).strip())
            if not name or name.startswith("#"):
                continue
            if ":" in name:
                prefix, rest = name.split(":", 1)
                if prefix.strip().lower() not in self.template:
                    continue  # a parser function, magic word or another namespace
                name = rest
            name = normalize_title(name)
            if name:
                out["Template:" + name] = None
        return list(out)

    def categories(self, text: str) -> list[str]:
        out: dict[str, None] = {}
        for m in self.category_re.finditer(text):
            name = normalize_title(m.group(1))
            if name:
                out["Category:" + name] = None
        return list(out)


_SCHEMA = """
CREATE TABLE pages (
  page_id INTEGER PRIMARY KEY, title TEXT NOT NULL, ns INTEGER NOT NULL,
  redirect INTEGER NOT NULL, rev_id INTEGER NOT NULL, ts REAL NOT NULL, model TEXT NOT NULL,
  text BLOB NOT NULL, templates TEXT NOT NULL, categories TEXT NOT NULL
);
CREATE UNIQUE INDEX pages_title ON pages (title);
CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def cache_path(dump: Path, cache_dir: Path) -> Path:
    st = dump.stat()
    key = f"{CACHE_VERSION}|{dump.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return cache_dir / f"dump-{hashlib.sha1(key.encode()).hexdigest()[:16]}.sqlite"


def build_cache(dump: Path, out: Path) -> None:
    """One streaming pass over the dump into a new cache file (atomic rename at the end)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(_SCHEMA)
        try:
            parsed = mwxml.Dump.from_file(open_file(dump))
        except Exception as e:  # mwxml raises bare errors on non-XML input
            raise DumpSourceError(f"source.path: {dump} is not a MediaWiki XML dump: {e}") from e
        ns = _Namespaces(parsed.site_info)
        rows: list[tuple] = []
        count = 0
        for page in parsed:
            last = None
            for revision in page:
                last = revision
            if last is None:
                continue
            text = last.text or ""
            rows.append(
                (
                    page.id,
                    normalize_title(page.title),
                    page.namespace,
                    int(bool(page.redirect)),
                    last.id,
                    float(last.timestamp.unix()) if last.timestamp else 0.0,
                    last.model or "wikitext",
                    zlib.compress(text.encode("utf-8"), 6),
                    "\n".join(ns.templates(text)),
                    "\n".join(ns.categories(text)),
                )
            )
            count += 1
            if len(rows) >= 500:
                conn.executemany("INSERT OR REPLACE INTO pages VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
                rows.clear()
        conn.executemany("INSERT OR REPLACE INTO pages VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        info = {"dbname": parsed.site_info.dbname or "", "dump": str(dump), "pages": str(count)}
        conn.executemany("INSERT INTO info VALUES (?, ?)", list(info.items()))
        conn.commit()
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(tmp, out)
    log.info("dump cache built", extra={"dump": str(dump), "cache": str(out), "pages": count})


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class DumpSource:
    """``WikiSource`` backed by the dump cache; safe to call from several threads."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        complete: bool = False,
        cache_dir: str | os.PathLike = "var/cache",
        seed: int | None = None,
    ) -> None:
        self.dump = Path(path)
        if not self.dump.is_file():
            raise DumpSourceError(f"source.path: no such dump file: {self.dump}")
        self.complete = complete
        self.seed = seed
        self.cache = cache_path(self.dump, Path(cache_dir))
        if not self.cache.is_file():
            build_cache(self.dump, self.cache)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()

    @property
    def conn(self) -> sqlite3.Connection:
        """A read-only connection per thread: the job fetches from I/O threads."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.cache}?mode=ro", uri=True, check_same_thread=False)
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        with self._conns_lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()

    @property
    def dbname(self) -> str:
        row = self.conn.execute("SELECT value FROM info WHERE key = 'dbname'").fetchone()
        return row[0] if row else ""

    # -- candidates
    def candidates(
        self,
        strategy: str,
        *,
        batch_size: int,
        topic: str | None = None,
        resume_from: int | None = None,
        shard: tuple[int, int] | None = None,
    ) -> Iterator[list[Candidate]]:
        if strategy == "allpages":
            return self._allpages(batch_size, resume_from or 0, shard)
        if strategy == "random":
            return self._random(batch_size, shard)
        raise DumpSourceError(
            f"candidates.strategy: a dump source cannot serve {strategy!r} "
            "(it has no search index); use random or allpages"
        )

    def _where_shard(self, shard: tuple[int, int] | None) -> tuple[str, tuple]:
        if shard is None or shard[1] <= 1:
            return "", ()
        return " AND page_id % ? = ?", (shard[1], shard[0])

    def _allpages(
        self, batch_size: int, after: int, shard: tuple[int, int] | None
    ) -> Iterator[list[Candidate]]:
        extra, args = self._where_shard(shard)
        while True:
            rows = self.conn.execute(
                "SELECT page_id, title FROM pages WHERE ns = 0 AND redirect = 0 AND page_id > ?"
                + extra
                + " ORDER BY page_id LIMIT ?",
                (after, *args, batch_size),
            ).fetchall()
            if not rows:
                return
            yield [Candidate(title, pid) for pid, title in rows]
            after = rows[-1][0]

    def _random(self, batch_size: int, shard: tuple[int, int] | None) -> Iterator[list[Candidate]]:
        extra, args = self._where_shard(shard)
        ids = np.fromiter(
            (
                r[0]
                for r in self.conn.execute(
                    "SELECT page_id FROM pages WHERE ns = 0 AND redirect = 0" + extra, args
                )
            ),
            dtype=np.int64,
        )
        order = np.random.default_rng(self.seed).permutation(ids)  # 8 bytes per article
        for i in range(0, len(order), batch_size):
            chunk = [int(x) for x in order[i : i + batch_size]]
            titles = self._titles(chunk)
            yield [Candidate(titles[p], p) for p in chunk if p in titles]

    # -- page data
    def _titles(self, page_ids: list[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for chunk in _chunks(page_ids, 500):
            out.update(self._in("SELECT page_id, title FROM pages WHERE page_id IN ({in})", chunk))
        return out

    def _in(self, sql: str, keys: list) -> list[tuple]:
        return self.conn.execute(sql.replace("{in}", ",".join("?" * len(keys))), keys).fetchall()

    def page_titles(self, page_ids: Iterable[int]) -> dict[int, str]:
        return self._titles(list(page_ids))

    def fetch(self, titles: Iterable[str]) -> list[PageData]:
        wanted = [normalize_title(t) for t in titles]
        found: dict[str, PageData] = {}
        for chunk in _chunks(list(dict.fromkeys(wanted)), 50):
            q = (
                "SELECT page_id, title, ns, redirect, rev_id, ts, model, text, templates, "
                "categories FROM pages WHERE title IN ({in})"
            )
            for pid, title, ns, redirect, rev, ts, model, blob, tpl, cats in self._in(q, chunk):
                found[title] = PageData(
                    page_id=pid,
                    title=title,
                    rev_id=rev,
                    timestamp=ts,
                    content_model=model,
                    wikitext=zlib.decompress(blob).decode("utf-8"),
                    templates=tuple(tpl.split("\n")) if tpl else (),
                    categories=tuple(cats.split("\n")) if cats else (),
                    namespace=ns,
                    is_redirect=bool(redirect),
                )
        return [found[t] for t in dict.fromkeys(wanted) if t in found]

    def targets(self, titles: Iterable[str]) -> dict[str, TargetInfo]:
        titles = list(dict.fromkeys(titles))
        ids: dict[str, int] = {}
        for chunk in _chunks([normalize_title(t) for t in titles], 500):
            ids.update(self._in("SELECT title, page_id FROM pages WHERE title IN ({in})", chunk))
        out = {}
        for t in titles:
            pid = ids.get(normalize_title(t))
            out[t] = TargetInfo(t, pid, known=pid is not None or self.complete)
        return out

    def latest_revisions(self, page_ids: Iterable[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for chunk in _chunks(list(page_ids), 500):
            out.update(self._in("SELECT page_id, rev_id FROM pages WHERE page_id IN ({in})", chunk))
        return out

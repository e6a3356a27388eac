"""Streaming reads of a MediaWiki XML dump (plain, .bz2 or .xz): one page at a time.

A dump may come as several part files (enwiki publishes pages-articles as numbered parts,
each a whole XML document with its own header and footer): ``parts`` puts them in page
order, so the parts read one after the other are the pages of the one file.
"""

from __future__ import annotations

import bz2
import lzma
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import IO

import mwxml

from model.text import normalize_title


class DumpError(ValueError):
    """The dump file is missing or not a MediaWiki XML export."""


@dataclass(frozen=True)
class DumpPage:
    page_id: int
    title: str
    namespace: int
    redirect: str | None  # normalized target title for redirects
    rev_id: int
    timestamp: float  # unix time of the latest revision in the dump
    text: str


@dataclass(frozen=True)
class SiteInfo:
    dbname: str
    language: str
    namespaces: frozenset[str]  # lower-cased local names of every non-article namespace


def open_file(path: str | Path) -> IO[bytes]:
    path = Path(path)
    if not path.is_file():
        raise DumpError(f"dump not found: {path}")
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    if path.suffix == ".xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


def language_of(dbname: str) -> str:
    """'enwiki' -> 'en', 'zh_yuewiki' -> 'zh_yue' (the dump's language code)."""
    return dbname.removesuffix("wiki") or dbname


def _open(path: str | Path) -> mwxml.Dump:
    try:
        return mwxml.Dump.from_file(open_file(path))
    except DumpError:
        raise
    except Exception as e:  # mwxml raises bare errors on non-XML input
        raise DumpError(f"{path} is not a MediaWiki XML dump: {e}") from e


def site_info(path: str | Path) -> SiteInfo:
    dump = _open(path)
    info = dump.site_info
    dbname = info.dbname or Path(path).name.split("-", 1)[0]
    names = set()
    for ns in info.namespaces or ():
        if ns.id != 0 and ns.name:
            names.add(ns.name.lower().replace("_", " "))
    return SiteInfo(dbname, language_of(dbname), frozenset(names))


def parts(dump: str | Path | Sequence[str | Path]) -> list[Path]:
    """A dump given as one file or as part files: its files in page order.

    Parts are ordered by their first page's id (the order of enwiki's numbered parts, which
    a shell glob does not give: ``articles10`` sorts before ``articles2``), so the parts in
    any order are the same pages in the same order as the one file they were cut from. They
    must all be of one wiki; a part without pages goes last.
    """
    paths = [Path(dump)] if isinstance(dump, str | Path) else [Path(p) for p in dump]
    if not paths:
        raise DumpError("no dump given")
    if len(set(paths)) != len(paths):
        raise DumpError("a dump part is given twice")
    if len(paths) == 1:
        return paths
    names = {site_info(p).dbname: p for p in paths}
    if len(names) > 1:
        raise DumpError(f"the dump parts are of different wikis: {', '.join(sorted(names))}")

    def first_id(path: Path) -> float:
        page = next(pages(path), None)
        return page.page_id if page is not None else float("inf")

    return sorted(paths, key=first_id)


def write_parts(path: str | Path, count: int, out: Path) -> list[Path]:
    """Cut a dump into ``count`` bz2 part files at page boundaries, each a whole XML document
    with the dump's header (``<mediawiki>`` and its site info) and footer, as published
    parts are; the parts hold about equal bytes. For tests and benchmarks of part reading."""
    with open_file(path) as f:
        data = f.read()
    first = data.index(b"<page>")
    end = data.rindex(b"</page>") + len(b"</page>")
    header, footer = data[:first], data[end:]
    cuts = [first]
    for k in range(1, count):  # at the first page starting past the k-th share of bytes
        cut = data.find(b"<page>", max(cuts[-1] + 1, first + (end - first) * k // count))
        if cut != -1 and cut < end:
            cuts.append(cut)
    cuts.append(end)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(path).name.split(".xml")[0]
    written = []
    for k, (a, b) in enumerate(pairwise(cuts), start=1):
        part = out / f"{stem}-part{k}.xml.bz2"
        with bz2.open(part, "wb") as f:
            f.write(header + data[a:b] + footer)
        written.append(part)
    return written


def pages(path: str | Path) -> Iterator[DumpPage]:
    """Each page with its last revision in the file; nothing else is held in memory.

    Read with the C ElementTree parser (each page's element is dropped once yielded), the
    same pages as mwxml gives (tests/test_model_parallel.py compares them on every shared
    dump) at about a third of its cost: training reads the dump in one process, so the
    reader's speed bounds how many workers can be kept busy.
    """
    from xml.etree.ElementTree import iterparse

    numbers: dict[str, int] = {}  # namespace name -> number, for pages without <ns>
    root = None
    for event, element in iterparse(open_file(path), events=("start", "end")):
        if event == "start":
            if root is None:
                root = element
            continue
        tag = element.tag.rpartition("}")[2]
        if tag == "siteinfo":
            numbers = _namespace_numbers(element)
        elif tag == "page":
            page = _page_of(element, numbers)
            root.clear()  # the page and everything before it: memory stays one page
            if page is not None:
                yield page


def _child(element, name: str):
    for child in element:
        if child.tag.rpartition("}")[2] == name:
            return child
    return None


def _namespace_numbers(siteinfo) -> dict[str, int]:
    namespaces = _child(siteinfo, "namespaces")
    return {
        ns.text: int(ns.get("key", "0"))
        for ns in (namespaces if namespaces is not None else ())
        if ns.text
    }


def _page_of(element, numbers: dict[str, int]) -> DumpPage | None:
    title = _child(element, "title").text or ""
    ns = _child(element, "ns")
    if ns is not None:
        namespace = int(ns.text)
    else:  # as mwxml: the namespace from the title's prefix
        prefix = title.split(":", 1)[0] if ":" in title else ""
        namespace = numbers.get(prefix, 0) if prefix else 0
    last = None
    for child in element:
        if child.tag.rpartition("}")[2] == "revision":
            last = child
    if last is None:
        return None
    redirect = _child(element, "redirect")
    timestamp = _child(last, "timestamp")
    text = _child(last, "text")
    return DumpPage(
        page_id=int(_child(element, "id").text),
        title=normalize_title(title),
        namespace=namespace,
        redirect=normalize_title(redirect.get("title", "")) if redirect is not None else None,
        rev_id=int(_child(last, "id").text),
        timestamp=_unix(timestamp.text) if timestamp is not None and timestamp.text else 0.0,
        text=(text.text or "") if text is not None else "",
    )


def _unix(timestamp: str) -> float:
    """'2013-03-22T09:37:03Z' -> seconds since the epoch (UTC), as mwxml's Timestamp.unix()."""
    import calendar
    import time

    return float(calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")))

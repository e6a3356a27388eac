"""Streaming reads of a MediaWiki XML dump (plain, .bz2 or .xz): one page at a time."""

from __future__ import annotations

import bz2
import lzma
from collections.abc import Iterator
from dataclasses import dataclass
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


def pages(path: str | Path) -> Iterator[DumpPage]:
    """Each page with its last revision in the file; nothing else is held in memory."""
    for page in _open(path):
        last = None
        for revision in page:
            last = revision
        if last is None:
            continue
        redirect = normalize_title(page.redirect) if page.redirect else None
        yield DumpPage(
            page_id=page.id,
            title=normalize_title(page.title),
            namespace=page.namespace,
            redirect=redirect,
            rev_id=last.id,
            timestamp=float(last.timestamp.unix()) if last.timestamp else 0.0,
            text=last.text or "",
        )

"""What the model reads from wikitext: the scannable plain text and the existing links.

Only top-level text nodes are scanned (never templates, tags and refs, tables, headings,
bold/italic, links, comments): a suggestion there would either be invisible to the reader or
break markup. Offsets are code points into the original wikitext, because mwparserfromhell
round-trips the input exactly and node lengths add up to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import mwparserfromhell
import regex
from mwparserfromhell.nodes import Heading, Text

from model.text import normalize_title

LEAD = "%LEAD%"
# A link prefix that is an interwiki or language code ("en:", "zh-yue:") rather than a title.
_INTERWIKI = regex.compile(r"^[a-z][a-z0-9\-_]{1,15}$")
# Namespaces every wiki has under its canonical English names too.
CANONICAL_NAMESPACES = frozenset(
    {
        "media",
        "special",
        "talk",
        "user",
        "user talk",
        "project",
        "project talk",
        "file",
        "file talk",
        "image",
        "image talk",
        "mediawiki",
        "mediawiki talk",
        "template",
        "template talk",
        "help",
        "help talk",
        "category",
        "category talk",
        "module",
        "module talk",
        "portal",
        "portal talk",
        "draft",
        "draft talk",
        "wikipedia",
        "wikipedia talk",
        "wp",
        "wt",
    }
)


class WikitextError(ValueError):
    """The wikitext cannot be processed (too large, not text)."""


@dataclass(frozen=True)
class TextSpan:
    """A top-level text node: its offset in the wikitext, its text and its section."""

    offset: int
    text: str
    section: str  # LEAD for the lead section, otherwise the heading's title
    excluded: bool


@dataclass(frozen=True)
class Link:
    """An existing wikilink to an article: normalized target and the visible anchor."""

    target: str
    anchor: str


@dataclass(frozen=True)
class Page:
    """Parsed wikitext: the scannable spans and the links already on the page."""

    spans: tuple[TextSpan, ...]
    links: tuple[Link, ...]


MAX_WIKITEXT = 4_000_000  # code points; larger pages are refused, not parsed


def parse(
    wikitext: str,
    excluded_sections: Iterable[str] = (),
    namespaces: frozenset[str] = CANONICAL_NAMESPACES,
    code=None,
) -> Page:
    """Split wikitext into scannable text spans (with sections) and existing article links.

    ``code`` is the wikitext's parse tree when the caller has one already (training reads
    more from the same tree): parsing is the most expensive step and is done once.
    """
    if not isinstance(wikitext, str):
        raise WikitextError(f"wikitext must be a string, not {type(wikitext).__name__}")
    if len(wikitext) > MAX_WIKITEXT:
        raise WikitextError(f"wikitext of {len(wikitext)} characters exceeds {MAX_WIKITEXT}")
    if code is None:
        code = mwparserfromhell.parse(wikitext)
    excluded = {s.strip().lower() for s in excluded_sections}
    spans: list[TextSpan] = []
    headings: list[tuple[int, str]] = []  # the open heading hierarchy (level, name)
    lead_excluded = LEAD.lower() in excluded
    section, section_excluded = LEAD, lead_excluded
    offset = 0
    for node in code.nodes:
        node_text = str(node)
        if isinstance(node, Text):
            spans.append(TextSpan(offset, node_text, section, section_excluded))
        elif isinstance(node, Heading):
            name = node.title.strip_code().strip()
            while headings and headings[-1][0] >= node.level:
                headings.pop()
            headings.append((node.level, name))
            section = name
            section_excluded = any(h.lower() in excluded for _, h in headings)
        offset += len(node_text)
    return Page(tuple(spans), tuple(article_links(wikitext, namespaces)))


def link_target(title: str, namespaces: frozenset[str] = CANONICAL_NAMESPACES) -> str | None:
    """The article a link points to, or None for other namespaces, interwikis and anchors."""
    title = title.strip()
    if not title or title.startswith(":"):
        return None
    title = title.split("#", 1)[0].strip()
    if not title or "{" in title or "<" in title or "[" in title:
        return None
    if ":" in title:
        prefix = title.split(":", 1)[0].strip()
        if prefix.lower().replace("_", " ") in namespaces or _INTERWIKI.match(prefix):
            return None
    return normalize_title(title)


# [[target]] or [[target|anchor]]; an anchor may hold single brackets but no nested link.
_LINK = regex.compile(r"\[\[([^\[\]{}|<>\n]+)(?:\|((?:[^\[\]]|\[[^\[\]]*\])*))?\]\]")
_QUOTES = regex.compile(r"'{2,}")


def article_links(wikitext: str, namespaces: frozenset[str] = CANONICAL_NAMESPACES) -> list[Link]:
    """Every article wikilink anywhere on the page, including inside templates.

    A regular expression over the raw text rather than a walk of the parse tree: ten times
    faster, and a link it over-counts (say, inside a comment) only makes us more careful.
    """
    out = []
    for m in _LINK.finditer(wikitext):
        target = link_target(m.group(1), namespaces)
        if target is None:
            continue
        anchor = m.group(2) if m.group(2) is not None else m.group(1)
        out.append(Link(target, _QUOTES.sub("", anchor).strip()))
    return out

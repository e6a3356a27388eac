"""What the model reads from wikitext: the scannable plain text and the existing links.

Only top-level text nodes are scanned (never templates, tags and refs, tables, headings,
bold/italic, links, comments): a suggestion there would either be invisible to the reader or
break markup. Offsets are code points into the original wikitext, because mwparserfromhell
round-trips the input exactly and node lengths add up to it.

mwparserfromhell never fails: what it cannot parse (a table or a ref broken by a stray
``''``, an unclosed ``<div>``, ``{{`` or ``<!--``) comes back as *text*. Such text is markup
for MediaWiki, so it is cut out of the scannable spans (``markup_regions``): every markup
opener found in a text node excludes everything up to its closer in the raw wikitext (or a
safe fallback), and a line holding stray markup, table-row syntax or a heading is excluded
whole. Control characters (a NUL ends the C tokenizer's input) are replaced by a
placeholder of the same length before parsing, so offsets never shift.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

import mwparserfromhell
import regex
from mwparserfromhell.nodes import Heading, Template, Text, Wikilink

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
    """A piece of a top-level text node: its offset in the wikitext, its text and section.

    ``markup`` pieces are text that mwparserfromhell left unparsed but MediaWiki reads as
    markup: never scanned, yet kept so that ``match_index`` counts the page's text as before.
    """

    offset: int
    text: str
    section: str  # LEAD for the lead section, otherwise the heading's title
    excluded: bool
    markup: bool = False

    @property
    def scannable(self) -> bool:
        return not self.excluded and not self.markup


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
# Control characters other than tab, line feed and carriage return: a NUL truncates the C
# tokenizer's input, the others are never prose. Replaced one for one before parsing.
_CONTROL = regex.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
PLACEHOLDER = "\ufffd"


def tree(wikitext: str):
    """mwparserfromhell's parse of the wikitext, control characters replaced one for one."""
    if _CONTROL.search(wikitext) is not None:
        wikitext = _CONTROL.sub(PLACEHOLDER, wikitext)
    return mwparserfromhell.parse(wikitext)


# Tags MediaWiki reads as markup (Sanitizer's HTML tags and common extension tags); any
# other "<name>" is shown as literal text.
KNOWN_TAGS = (  # noqa: SIM905 - one readable list
    "abbr b bdi bdo big blockquote br caption center cite code data dd del dfn div dl dt em "
    "font h1 h2 h3 h4 h5 h6 hr i ins kbd li link mark meta ol p pre q rb rp rt rtc ruby s "
    "samp small span strike strong sub sup table tbody td tfoot th thead time tr tt u ul var "
    "wbr ref references nowiki gallery math chem poem syntaxhighlight source score timeline "
    "imagemap templatedata templatestyles mapframe maplink graph inputbox categorytree "
    "section includeonly noinclude onlyinclude hiero charinsert indicator ce"
).split()
_TAG_NAMES = "|".join(sorted(KNOWN_TAGS, key=len, reverse=True))
# Every opening or closing tag of those names, wherever it is on the page.
_TAG = regex.compile(rf"<(/?)({_TAG_NAMES})(?=[\s/>])[^<>]*>", regex.I)
# Elements whose content is prose (or that have none): they exclude only the tag itself.
_PROSE_TAGS = frozenset({"br", "hr", "wbr", "meta", "link", "p", "li", "dd", "dt"})
# Markup openers that mwparserfromhell left in a text node; each excludes up to its closer.
_OPENER = regex.compile(r"\{\|")
# Edges of templates and links; an innermost pair within one line ("{{a}}", "[[a|b]]") is
# matched whole and skipped: it cannot change how the other edges pair up, and where such a
# pair is text, its line holds a stray edge (``_STRAY``) and is cut anyway.
_BRACES = regex.compile(r"\{\{[^{}\n]*\}\}|(\{\{|\}\})")
_BRACKETS = regex.compile(r"\[\[[^\[\]\n]*\]\]|(\[\[|\]\])")
# Stray markup: the whole line it is on is excluded.
_STRAY = regex.compile(
    r"\{\{|\}\}|\[\[|\]\]|\|\}|''|__[A-Z]+__|\[(?:[a-z+.-]+:)?//|&#?\w+;|~~~|-->|</[A-Za-z]"
    r"|<[A-Za-z]"
)
# Raw lines that are table rows or cells, or headings, whatever the parser made of them.
_MARKUP_LINE = regex.compile(r"^[ \t:;*#]*[|!].*$|^=.*=[ \t]*$", regex.M)
_TABLE_EDGE = regex.compile(r"(\{\|)|^[ \t:]*(\|\})", regex.M)
_TABLE_LINE_EDGE = regex.compile(r"^[ \t:]*(?:(\{\|)|(\|\}))", regex.M)  # MediaWiki's rule


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
        code = tree(wikitext)
    excluded = {s.strip().lower() for s in excluded_sections}
    texts: list[tuple[int, int, str, bool]] = []  # (start, end, section, section excluded)
    templates: list[tuple[int, int]] = []
    wikilinks: list[tuple[int, int]] = []
    headings: list[tuple[int, str]] = []  # the open heading hierarchy (level, name)
    lead_excluded = LEAD.lower() in excluded
    section, section_excluded = LEAD, lead_excluded
    offset = 0
    for node in code.nodes:
        if isinstance(node, Text):
            end = offset + len(node.value)
            texts.append((offset, end, section, section_excluded))
            offset = end
            continue
        if isinstance(node, Heading):
            name = node.title.strip_code().strip()
            while headings and headings[-1][0] >= node.level:
                headings.pop()
            headings.append((node.level, name))
            section = name
            section_excluded = any(h.lower() in excluded for _, h in headings)
        end = offset + len(str(node))
        if isinstance(node, Template):
            templates.append((offset, end))
        elif isinstance(node, Wikilink):
            wikilinks.append((offset, end))
        offset = end
    regions = markup_regions(wikitext, [(a, b) for a, b, _, _ in texts], templates, wikilinks)
    spans: list[TextSpan] = []
    for a, b, name, section_out in texts:
        for x, y, markup in _cut(a, b, regions):
            spans.append(TextSpan(x, wikitext[x:y], name, section_out, markup))
    return Page(tuple(spans), tuple(article_links(wikitext, namespaces)))


def markup_regions(
    wikitext: str,
    texts: list[tuple[int, int]],
    templates: list[tuple[int, int]] = (),
    wikilinks: list[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """Sorted, merged (start, end) ranges of markup that the parser left in text nodes.

    ``texts`` are the text nodes' ranges. An opener excludes up to its closer, found in the
    raw wikitext with nesting (an unclosed comment, table or tag: to the end of the page, as
    MediaWiki reads it; an unclosed ``{{`` or ``[[``: to the end of its line); stray closers
    and the like exclude their line; raw table-row and heading lines are excluded wherever
    the parser put them. Costs one regex search per text node when the text is clean.
    """
    size = len(wikitext)
    # Comments, tags, tables and braces over the whole page: MediaWiki strips comments before
    # all else, and an unclosed one (or a tag or table opened inside bold text) runs to the
    # end. Comments and, for tags and braces, top-level templates are skipped: a tag left
    # open inside a template is balanced where the template is used.
    comments = _comments(wikitext)
    gaps = _gaps(_merge(comments + list(templates)), size)
    # A table a template opens and leaves open (a "table start" template) runs on after it.
    found: list[tuple[int, int]] = comments + _elements(wikitext, gaps)
    found += _tables(wikitext, _gaps(comments, size))
    found += _pairs(wikitext, "{{", _BRACES, gaps)
    # A parsed link's own brackets are balanced: its inside is skipped for link pairs.
    link_gaps = _gaps(_merge(comments + list(templates) + list(wikilinks)), size)
    found += _pairs(wikitext, "[[", _BRACKETS, link_gaps)
    for a, b in texts:
        pos = a
        while pos < b:
            m = _OPENER.search(wikitext, pos, b)
            if m is None:
                break
            found.append((m.start(), _table_end(wikitext, m.start())))
            pos = m.end()
        for m in _STRAY.finditer(wikitext, a, b):
            found.append(_line(wikitext, m.start()))
    if "|" in wikitext or "!" in wikitext or "=" in wikitext:
        lines = [m.span() for a, b in gaps for m in _MARKUP_LINE.finditer(wikitext, a, b)]
        if lines:
            starts = [x for x, _ in lines]
            for a, b in texts:  # only lines that some text node touches matter
                i = max(0, bisect_right(starts, a) - 1)
                while i < len(lines) and lines[i][0] < b:
                    if lines[i][1] > a:
                        found.append((lines[i][0], lines[i][1] + 1))
                    i += 1
    return _merge([(x, min(y, size)) for x, y in found])


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for x, y in sorted(ranges):
        if merged and x <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], y))
        else:
            merged.append((x, y))
    return merged


def _inside(ranges: list[tuple[int, int]], at: int) -> bool:
    i = bisect_right(ranges, (at, math.inf)) - 1
    return i >= 0 and ranges[i][0] <= at < ranges[i][1]


def _gaps(ranges: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """The complement of sorted, merged ranges within [0, size)."""
    out, pos = [], 0
    for x, y in ranges:
        if x > pos:
            out.append((pos, x))
        pos = max(pos, y)
    if pos < size:
        out.append((pos, size))
    return out


def _line(wikitext: str, at: int) -> tuple[int, int]:
    start = wikitext.rfind("\n", 0, at) + 1
    end = wikitext.find("\n", at)
    return start, len(wikitext) if end < 0 else end


def _comments(wikitext: str) -> list[tuple[int, int]]:
    out, pos = [], 0
    while (start := wikitext.find("<!--", pos)) >= 0:
        end = wikitext.find("-->", start + 4)
        pos = len(wikitext) if end < 0 else end + 3
        out.append((start, pos))
    return out


def _elements(wikitext: str, gaps: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, end) of every element of a known tag outside comments and templates.

    A closing tag closes the latest element of its name and every element opened inside it
    (as a browser does: ``</table>`` ends its cells). An element never closed runs to the end
    of the page; one left open inside a template ends with the template (its output is
    balanced where it is used), so tags inside templates are not looked at. Elements whose
    content is prose (``<p>``, ``<li>``) or that have none stop at their tag.
    """
    if "<" not in wikitext:
        return []
    out: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    hidden = _gaps(gaps, len(wikitext))  # comments and templates
    for m in _TAG.finditer(wikitext):  # a tag may run past a template: not bounded by gaps
        if hidden and _inside(hidden, m.start()):
            continue
        name = m.group(2).lower()
        if m.group(1):
            at = next((i for i in range(len(stack) - 1, -1, -1) if stack[i][0] == name), None)
            if at is None:
                out.append(m.span())  # a stray closing tag
                continue
            out.extend((start, m.end()) for _, start in stack[at:])
            del stack[at:]
        elif m.group().endswith("/>") or name in _PROSE_TAGS:
            out.append(m.span())
        else:
            stack.append((name, m.start()))
    out.extend((start, len(wikitext)) for _, start in stack)
    return out


def _tables(wikitext: str, gaps: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Tables opened at a line start anywhere on the page (nesting counted)."""
    if "{|" not in wikitext:
        return []
    out: list[tuple[int, int]] = []
    starts: list[int] = []
    for edge in (m for a, b in gaps for m in _TABLE_LINE_EDGE.finditer(wikitext, a, b)):
        if edge.group(1):
            starts.append(edge.start(1))
        elif starts:
            out.append((starts.pop(), edge.end()))
    out.extend((start, len(wikitext)) for start in starts)
    return out


def _pairs(
    wikitext: str, opener: str, edges, gaps: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Matched ``{{ }}`` (or ``[[ ]]`` within a line) pairs over the raw page, nesting counted.

    The preprocessor matches braces before anything else is parsed, so a template opened
    inside bold text or a link label and closed far away still encloses what lies between.
    An opener never closed is literal text.
    """
    if opener not in wikitext:
        return []
    out: list[tuple[int, int]] = []
    stack: list[int] = []
    lone = [
        (m.start(), m.group(1)) for a, b in gaps for m in edges.finditer(wikitext, a, b)
        if m.group(1)
    ]
    for at, edge in lone:
        if edge == opener:
            stack.append(at)
            continue
        if opener == "[[" and stack and wikitext.find("\n", stack[-1], at) >= 0:
            stack.clear()  # a link never spans lines: the openers before were literal
        if stack:
            out.append((stack.pop(), at + 2))
    return out


def _table_end(wikitext: str, start: int) -> int:
    """Where a table opened at ``start`` ends (nesting counted), or the end of the page."""
    depth = 0
    for edge in _TABLE_EDGE.finditer(wikitext, start):
        depth += 1 if edge.group(1) else -1
        if depth == 0:
            return edge.end()
    return len(wikitext)


def _cut(a: int, b: int, regions: list[tuple[int, int]]) -> Iterable[tuple[int, int, bool]]:
    """[a, b) cut into (start, end, is markup) pieces by the sorted, merged regions."""
    if not regions:
        yield a, b, False
        return
    pos = a
    i = max(0, bisect_right(regions, (a, a)) - 1)
    while i < len(regions) and regions[i][0] < b:
        x, y = max(regions[i][0], a), min(regions[i][1], b)
        if y > x:
            if x > pos:
                yield pos, x, False
            yield max(x, pos), y, True
            pos = max(pos, y)
        i += 1
    if pos < b:
        yield pos, b, False


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

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
    more from the same tree): parsing is the most expensive step and is done once. Without
    one, only mwparserfromhell's tokens are needed (``_token_layout``), not its tree.
    """
    if not isinstance(wikitext, str):
        raise WikitextError(f"wikitext must be a string, not {type(wikitext).__name__}")
    if len(wikitext) > MAX_WIKITEXT:
        raise WikitextError(f"wikitext of {len(wikitext)} characters exceeds {MAX_WIKITEXT}")
    layout = _token_layout(wikitext) if code is None else None
    if layout is None:
        layout = _tree_layout(tree(wikitext) if code is None else code)
    excluded = {s.strip().lower() for s in excluded_sections}
    texts: list[tuple[int, int, str, bool]] = []  # (start, end, section, section excluded)
    templates: list[tuple[int, int]] = []
    wikilinks: list[tuple[int, int]] = []
    headings: list[tuple[int, str]] = []  # the open heading hierarchy (level, name)
    lead_excluded = LEAD.lower() in excluded
    section, section_excluded = LEAD, lead_excluded
    for item in layout:
        kind, start, end = item[:3]
        if kind == TEXT:
            texts.append((start, end, section, section_excluded))
        elif kind == HEADING:
            level, name = item[3], item[4]
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, name))
            section = name
            section_excluded = any(h.lower() in excluded for _, h in headings)
        elif kind == TEMPLATE:
            templates.append((start, end))
        elif kind == WIKILINK:
            wikilinks.append((start, end))
    regions = markup_regions(wikitext, [(a, b) for a, b, _, _ in texts], templates, wikilinks)
    spans: list[TextSpan] = []
    for a, b, name, section_out in texts:
        for x, y, markup in _cut(a, b, regions):
            spans.append(TextSpan(x, wikitext[x:y], name, section_out, markup))
    return Page(tuple(spans), tuple(article_links(wikitext, namespaces)))


# ---------------------------------------------------------------------------- page layout
# What ``parse`` reads from the parse tree is its *layout*: the top-level nodes, each with its
# kind and its (start, end) in the wikitext, and a heading's level and title. Building the
# tree costs about four times what tokenizing does (mwparserfromhell's tree builder is pure
# Python; its tokenizer is C), and nothing below the top level is ever read but a heading's
# title; so the layout is computed from the tokens, each node's length mirroring its node
# class's ``__str__`` (the builder's handlers decide which tokens make which part), and is
# checked against the wikitext: every top-level text must be found at its offset and the
# lengths must add up to the page. Any mismatch, or tokens the mirror does not know, and
# the layout is taken from the tree as before (``_tree_layout``), so the spans are the
# same either way (tests/test_placement.py compares the two on every shared dump).
TEXT, HEADING, TEMPLATE, WIKILINK, OTHER = range(5)
_EDGES = {TEMPLATE: ("{{", "}}"), WIKILINK: ("[[", "]]")}


def _tree_layout(code) -> list[tuple]:
    """(kind, start, end[, level, title]) of each top-level node of a parse tree."""
    out: list[tuple] = []
    offset = 0
    for node in code.nodes:
        if isinstance(node, Text):
            end = offset + len(node.value)
            out.append((TEXT, offset, end))
        else:
            end = offset + len(str(node))
            if isinstance(node, Heading):
                out.append((HEADING, offset, end, node.level, node.title.strip_code().strip()))
            elif isinstance(node, Template):
                out.append((TEMPLATE, offset, end))
            elif isinstance(node, Wikilink):
                out.append((WIKILINK, offset, end))
            else:
                out.append((OTHER, offset, end))
        offset = end
    return out


class _Layout(Exception):
    """Tokens the length mirror does not handle: take the layout from the tree."""


def _sizes():
    """The length mirror: ``node(tokens, i) -> (length, next i)`` for the node at ``i``."""
    from mwparserfromhell.parser import tokens as tk

    text_t = tk.Text

    def seq(toks, i, stops):
        """Length of the nodes from ``i`` up to a token of a type in ``stops``."""
        total = 0
        while type(toks[i]) not in stops:
            if type(toks[i]) is text_t:
                total += len(toks[i]["text"])
                i += 1
            else:
                size, i = node(toks, i)
                total += size
        return total, i

    template_stops = (tk.TemplateParamSeparator, tk.TemplateClose)
    param_stops = (tk.TemplateParamEquals, tk.TemplateParamSeparator, tk.TemplateClose)

    def template(toks, i):
        size, i = seq(toks, i + 1, template_stops)  # the name
        size += 2
        while type(toks[i]) is tk.TemplateParamSeparator:
            # _handle_parameter: a "=" makes what precedes it the key (the last one wins)
            key, has_key = 0, False
            part, i = seq(toks, i + 1, param_stops)
            while type(toks[i]) is tk.TemplateParamEquals:
                key, has_key = part, True
                part, i = seq(toks, i + 1, param_stops)
            size += 1 + (key + 1 + part if has_key else part)
        return size + 2, i + 1  # TemplateClose

    def pair(separator, close, before, after):
        """Argument and wikilink: name [separator rest]; the last separator wins."""
        stops = (separator, close)

        def handle(toks, i):
            first, has_second = 0, False
            part, i = seq(toks, i + 1, stops)
            while type(toks[i]) is separator:
                first, has_second = part, True
                part, i = seq(toks, i + 1, stops)
            size = before + after + (first + 1 + part if has_second else part)
            return size, i + 1

        return handle

    argument = pair(tk.ArgumentSeparator, tk.ArgumentClose, 3, 3)
    wikilink = pair(tk.WikilinkSeparator, tk.WikilinkClose, 2, 2)
    link_stops = (tk.ExternalLinkSeparator, tk.ExternalLinkClose)

    def external_link(toks, i):
        brackets = toks[i].get("brackets")
        url, title, space = 0, None, False
        part, i = seq(toks, i + 1, link_stops)
        while type(toks[i]) is tk.ExternalLinkSeparator:
            url, space = part, toks[i].get("suppress_space") is not True
            part, i = seq(toks, i + 1, link_stops)
            title = part
        if title is None:
            url = part
        if not brackets:
            return url, i + 1
        if title is None:
            return url + 2, i + 1
        return url + int(space) + title + 2, i + 1

    def entity(toks, i):
        t = toks[i + 1]
        if type(t) is tk.HTMLEntityNumeric:
            t = toks[i + 2]
            if type(t) is tk.HTMLEntityHex:
                value = toks[i + 3]
                return 3 + len(t.get("char") or "") + len(value["text"]), i + 5
            return 3 + len(t["text"]), i + 4
        return 2 + len(t["text"]), i + 3

    def heading(toks, i):
        size, j = seq(toks, i + 1, (tk.HeadingEnd,))
        return size + 2 * toks[i]["level"], j + 1

    def comment(toks, i):
        size, j = seq(toks, i + 1, (tk.CommentEnd,))
        return size + 7, j + 1

    attr_stops = (tk.TagAttrEquals, tk.TagAttrQuote, tk.TagAttrStart, tk.TagCloseOpen,
                  tk.TagCloseSelfclose)

    def attribute(toks, i):
        start = toks[i]
        name, quotes, cur = None, None, 0
        i += 1
        while True:
            part, i = seq(toks, i, attr_stops)
            cur += part
            t = type(toks[i])
            if t is tk.TagAttrEquals:
                name, cur = cur, 0
                i += 1
            elif t is tk.TagAttrQuote:
                quotes = toks[i].get("char")
                i += 1
            else:
                break
        size = len(start.get("pad_first") or "") + len(start.get("pad_before_eq") or "")
        if quotes not in (None, '"', "'"):
            raise _Layout
        if name:  # ``if name:`` of the builder: a non-empty name takes the value
            size += name + 1 + len(start.get("pad_after_eq") or "") + cur
            size += 2 * len(quotes or "")
        else:
            size += cur
        return size, i

    tag_stops = (tk.TagAttrStart, tk.TagCloseOpen, tk.TagOpenClose, tk.TagCloseSelfclose,
                 tk.TagCloseClose)

    def tag(toks, i):
        open_ = toks[i]
        markup = open_.get("wiki_markup") or None
        closing_markup = open_.get("wiki_markup")
        invalid = bool(open_.get("invalid"))
        attrs = cur = contents = closing = 0
        padding, separator = None, None
        i += 1
        while True:
            part, i = seq(toks, i, tag_stops)
            cur += part
            t = toks[i]
            kind = type(t)
            i += 1
            if kind is tk.TagAttrStart:
                size, i = attribute(toks, i - 1)
                attrs += size
            elif kind is tk.TagCloseOpen:
                separator = t.get("wiki_markup") or None
                padding = t.get("padding") or ""
                cur, name = 0, cur
            elif kind is tk.TagOpenClose:
                closing_markup = t.get("wiki_markup")
                contents, cur = cur, 0
            elif kind is tk.TagCloseSelfclose:
                closing_markup = t.get("wiki_markup")
                padding = t.get("padding") or ""
                implicit = bool(t.get("implicit"))
                name = cur
                if markup:
                    return len(markup) + attrs + len(padding) + len(separator or ""), i
                return (2 if invalid else 1) + name + attrs + len(padding) + (
                    1 if implicit else 2), i
            else:  # TagCloseClose
                closing = cur
                if padding is None:
                    raise _Layout
                if markup:
                    close = closing_markup if closing_markup is not None else markup
                    return (len(markup) + attrs + len(padding) + len(separator or "")
                            + contents + len(close or "")), i
                return (2 if invalid else 1) + name + attrs + len(padding) + 1 + contents + (
                    3 + closing), i

    handlers = {
        tk.TemplateOpen: template,
        tk.ArgumentOpen: argument,
        tk.WikilinkOpen: wikilink,
        tk.ExternalLinkOpen: external_link,
        tk.HTMLEntityStart: entity,
        tk.HeadingStart: heading,
        tk.CommentStart: comment,
        tk.TagOpenOpen: tag,
    }

    def node(toks, i):
        handler = handlers.get(type(toks[i]))
        if handler is None:
            raise _Layout
        return handler(toks, i)

    kinds = {tk.HeadingStart: HEADING, tk.TemplateOpen: TEMPLATE, tk.WikilinkOpen: WIKILINK}
    return node, kinds, tk


_MIRROR = None


def _token_layout(wikitext: str) -> list[tuple] | None:
    """The layout from mwparserfromhell's tokens (see above), or None if it does not check."""
    global _MIRROR
    from mwparserfromhell.parser import Parser
    from mwparserfromhell.parser.builder import Builder

    if _MIRROR is None:
        _MIRROR = _sizes()
    node, kinds, tk = _MIRROR
    if _CONTROL.search(wikitext) is not None:
        wikitext = _CONTROL.sub(PLACEHOLDER, wikitext)
    text_t = tk.Text
    try:
        # What mwparserfromhell.parse does before building the tree (the same tokenizer).
        toks = Parser()._tokenizer.tokenize(wikitext, 0, False)
        out: list[tuple] = []
        offset, i, count = 0, 0, len(toks)
        while i < count:
            t = toks[i]
            if type(t) is text_t:
                value = t["text"]
                end = offset + len(value)
                if not wikitext.startswith(value, offset):
                    return None
                out.append((TEXT, offset, end))
            else:
                size, j = node(toks, i)
                end = offset + size
                kind = kinds.get(type(t), OTHER)
                if kind != OTHER:  # ranges that are used: their edges must be where they are
                    head, tail = _EDGES[kind] if kind != HEADING else ("=", "=")
                    if not (wikitext.startswith(head, offset) and wikitext.endswith(tail, 0, end)):
                        return None
                if kind == HEADING:
                    title = Builder().build(toks[i + 1 : j - 1]).strip_code().strip()
                    out.append((HEADING, offset, end, t["level"], title))
                else:
                    out.append((kind, offset, end))
                i = j - 1
            offset = end
            i += 1
    except (_Layout, IndexError, KeyError, TypeError, ValueError, RecursionError):
        return None
    return out if offset == len(wikitext) else None


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

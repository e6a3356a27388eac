"""MediaWiki's rules for a valid page title, in one place for every entry point.

A title reaches us from an operator (``model recommend --title``, ``runner backfill --page``)
or from an HTTP client. MediaWiki itself would refuse the invalid ones (``Title::newFromText``
returns null), so the page cannot exist: accepting "A|B" or "" silently only produced empty
or wrong answers. The rules are those of ``MediaWikiTitleCodec::splitTitleString``
(``$wgLegalTitleChars``, percent-encoding, relative paths, signatures, 255 bytes).
"""

from __future__ import annotations

import regex

from model.text import normalize_title

MAX_TITLE_BYTES = 255  # MediaWiki's limit on a title's database key, in UTF-8 bytes
# Characters never legal in a title (outside $wgLegalTitleChars): the link and template
# syntax, and control characters (C0, DEL, C1). U+FFFD is what a broken encoding became.
ILLEGAL_CHARS = r"#<>\[\]|{}\x00-\x1f\x7f-\x9f\ufffd"  # a regex character class's body
_ILLEGAL = regex.compile(f"[{ILLEGAL_CHARS}]")
_PERCENT = regex.compile(r"%[0-9A-Fa-f]{2}")  # would be decoded by the URL, never a title
_RELATIVE = regex.compile(r"^\.\.?(?:/|$)|/\.\.?(?:/|$)")  # ".", "..", "./x", "x/../y"


class InvalidTitle(ValueError):
    """A title MediaWiki would refuse; names the title and the rule it breaks."""

    def __init__(self, title: str, rule: str):
        super().__init__(f"invalid title {title!r}: {rule}")
        self.title, self.rule = title, rule


def validate_title(title: object) -> str:
    """The title in MediaWiki's normal form, or InvalidTitle naming the rule it breaks."""
    if not isinstance(title, str):
        raise InvalidTitle(repr(title), f"a title must be a string, not {type(title).__name__}")
    bad = _ILLEGAL.search(title)
    if bad is not None:
        char = bad.group()
        shown = char if char.isprintable() else f"U+{ord(char):04X}"
        raise InvalidTitle(
            title, f"contains {shown!r} (# < > [ ] | {{ }} and control characters are not allowed)"
        )
    normal = normalize_title(title)
    if not normal:
        raise InvalidTitle(title, "empty or only white space")
    if normal.startswith(":"):
        raise InvalidTitle(title, "starts with ':' (a link prefix, not part of a title)")
    if _PERCENT.search(normal):
        raise InvalidTitle(title, "contains percent-encoding (%XX); decode the title first")
    if _RELATIVE.search(normal):
        raise InvalidTitle(title, "is a relative path ('.' or '..' as a path segment)")
    if "~~~" in normal:
        raise InvalidTitle(title, "contains '~~~' (signature syntax)")
    size = len(normal.encode("utf-8"))
    if size > MAX_TITLE_BYTES:
        raise InvalidTitle(title, f"is {size} bytes in UTF-8, over {MAX_TITLE_BYTES}")
    return normal

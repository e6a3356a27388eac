"""What a page title may be: the app's check and the spec's pattern from one rule."""

from __future__ import annotations

from model.titles import ILLEGAL_CHARS

MAX_TITLE = 255  # MediaWiki's limit, in bytes; characters here (a bound, not the rule)
# For the spec: none of the characters model/titles.py refuses, not only blanks or
# underscores, and no leading ':' (a link prefix). The rules a regex cannot say simply
# (percent-encoding, relative paths, 255 bytes in UTF-8) are checked by
# model.titles.validate_title, the one rule every entry point uses (400 naming the rule).
TITLE_PATTERN = f"^[ _]*[^\\s_:{ILLEGAL_CHARS}][^{ILLEGAL_CHARS}]*$"

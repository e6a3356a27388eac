"""What a page title may be: the app's check and the spec's pattern from one rule."""

from __future__ import annotations

import re

MAX_TITLE = 255  # MediaWiki's limit, in bytes; characters here (a bound, not the rule)
# Characters a MediaWiki title cannot hold ($wgLegalTitleChars excludes them): 400, not a
# request to the wiki that would come back without a page.
ILLEGAL_CHARS = r"#<>\[\]|{}\x00-\x1f\x7f\ufffd"
ILLEGAL_TITLE = re.compile(f"[{ILLEGAL_CHARS}]")
# For the spec: none of those characters, and not only blanks or underscores.
TITLE_PATTERN = f"^[^{ILLEGAL_CHARS}]*[^\\s_{ILLEGAL_CHARS}][^{ILLEGAL_CHARS}]*$"

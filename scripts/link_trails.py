"""Extract every language's link trail (and link prefix) from MediaWiki into model/linktrails.json.

    .venv/bin/python scripts/link_trails.py [--messages DIR] [--out model/linktrails.json]

MediaWiki renders ``[[Лондон]]і`` as one linked word "Лондоні" when the text after the link
matches the language's ``$linkTrail`` (``languages/messages/Messages*.php``); editors rely
on it, so the recommender must be able to suggest a stem with the ending left to trail.
A language without its own trail inherits one through its ``$fallback`` chain, ending at
English's, exactly as MediaWiki's localisation cache does.

The PHP files are evaluated by PHP itself (they concatenate strings and use ``\\u{...}``
escapes, which a text parser would get wrong); the PCRE patterns are then rewritten into
Python ``regex`` syntax and checked to compile. Output: language code -> {"trail": the
pattern of one trail (group 1 of MediaWiki's regex, to be full-matched; null: none), "prefix": the
``$linkPrefixCharset`` character class body or null when ``$linkPrefixExtension`` is off}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import regex

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MESSAGES = Path("/usr/share/mediawiki/languages/messages")

# The Messages files use the namespace constants only; nothing else of MediaWiki is needed.
_PHP = r"""<?php
foreach (['NS_MEDIA' => -2, 'NS_SPECIAL' => -1, 'NS_MAIN' => 0, 'NS_TALK' => 1,
  'NS_USER' => 2, 'NS_USER_TALK' => 3, 'NS_PROJECT' => 4, 'NS_PROJECT_TALK' => 5,
  'NS_FILE' => 6, 'NS_FILE_TALK' => 7, 'NS_MEDIAWIKI' => 8, 'NS_MEDIAWIKI_TALK' => 9,
  'NS_TEMPLATE' => 10, 'NS_TEMPLATE_TALK' => 11, 'NS_HELP' => 12, 'NS_HELP_TALK' => 13,
  'NS_CATEGORY' => 14, 'NS_CATEGORY_TALK' => 15] as $k => $v) { define($k, $v); }
$out = [];
foreach (glob($argv[1] . '/Messages*.php') as $f) {
  $out[basename($f)] = (function ($f) {
    include $f;
    return ['trail' => $linkTrail ?? null, 'fallback' => $fallback ?? null,
      'prefix_extension' => $linkPrefixExtension ?? null,
      'prefix' => $linkPrefixCharset ?? null];
  })($f);
}
echo json_encode($out, JSON_UNESCAPED_UNICODE);
"""


def code_of(filename: str) -> str:
    """MessagesZh_hant.php -> zh-hant (MediaWiki's file naming)."""
    return filename[len("Messages") : -len(".php")].lower().replace("_", "-")


def python_pattern(pcre: str) -> str:
    """Group 1 of a MediaWiki trail regex, in Python ``regex`` syntax."""
    delimiter = pcre[0]
    body = pcre[1 : pcre.rindex(delimiter)]
    # PCRE's \x{HHHH} is Python's \x{HHHH} in the regex module as well, but normalise it to
    # the literal character so that the pattern reads the same everywhere.
    body = regex.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: chr(int(m.group(1), 16)), body)
    if not (body.startswith("^(") and body.endswith(")(.*)$")):
        raise ValueError(f"unexpected link trail shape: {pcre!r}")
    return body[2 : -len(")(.*)$")]


def chain(code: str, raw: dict[str, dict]) -> list[str]:
    """The language, its fallbacks (recursively, in order), then English."""
    out, todo = [], [code]
    while todo:
        lang = todo.pop(0)
        if lang in out or lang not in raw:
            continue
        out.append(lang)
        fallback = raw[lang]["fallback"]
        if fallback:
            todo[:0] = [f.strip() for f in fallback.split(",") if f.strip()]
    return [*out, "en"] if "en" not in out else out


def extract(messages: Path) -> dict[str, dict]:
    proc = subprocess.run(
        ["php", "-r", _PHP.removeprefix("<?php\n"), str(messages)],
        capture_output=True,
        text=True,
        check=True,
    )
    raw = {code_of(f): v for f, v in json.loads(proc.stdout).items()}
    out = {}
    for code in sorted(raw):
        langs = chain(code, raw)
        trail = next(raw[lang]["trail"] for lang in langs if raw[lang]["trail"])
        extension = next(
            (raw[lang]["prefix_extension"] for lang in langs if raw[lang]["prefix_extension"]
             is not None),
            False,
        )
        prefix = next((raw[lang]["prefix"] for lang in langs if raw[lang]["prefix"]), None)
        pattern = python_pattern(trail)
        regex.compile(pattern)
        if extension:
            prefix = regex.sub(
                r"\\x\{([0-9A-Fa-f]+)\}", lambda m: chr(int(m.group(1), 16)), prefix or ""
            )
            regex.compile(f"[{prefix}]")
        # "^()(.*)$" (Chinese): the language has no trail.
        out[code] = {"trail": pattern or None, "prefix": prefix if extension else None}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=Path, default=DEFAULT_MESSAGES)
    p.add_argument("--out", type=Path, default=REPO / "model" / "linktrails.json")
    args = p.parse_args()
    if not args.messages.is_dir():
        print(f"error: {args.messages}: no MediaWiki messages directory", file=sys.stderr)
        return 2
    data = extract(args.messages)
    args.out.write_text(json.dumps(data, ensure_ascii=False, indent=0, sort_keys=True) + "\n")
    print(f"{len(data)} languages -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Share of the text nodes' characters that placement safety cuts out, per shared dump.

    .venv/bin/python benchmarks/markup_share.py

mwparserfromhell returns what it cannot parse as text; model/wikitext.py cuts such markup
out of the scanned spans. This prints, for every article of every dump, how much of the
text-node text that is (the price of never suggesting inside broken markup).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DUMPS = REPO.parent / "shared" / "data" / "dumps"


def main() -> int:
    from model.dump import pages
    from model.wikitext import parse

    for dump in sorted(DUMPS.glob("*.xml.*")):
        total = markup = 0
        for page in pages(dump):
            if page.namespace or page.redirect:
                continue
            for span in parse(page.text).spans:
                total += len(span.text)
                markup += len(span.text) if span.markup else 0
        print(f"{dump.name.split('-')[0]}: {markup:,} of {total:,} characters "
              f"({100 * markup / total:.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

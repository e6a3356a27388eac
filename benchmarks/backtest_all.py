"""Backtest every shared dump with both feature sets; print a Markdown table for docs/.

    .venv/bin/python benchmarks/backtest_all.py [--dumps DIR] [--json OUT] > table.md

Each dump is parsed once; the ``full`` and ``reference`` models are built from the same
train half and tested on the same sentences, so the two rows differ only by features.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.backtest import evaluate  # noqa: E402
from model.train import Settings, extract  # noqa: E402

DEFAULT_DUMPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "dumps"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dumps", type=Path, default=DEFAULT_DUMPS)
    p.add_argument("--json", type=Path, help="also write every row as JSON here")
    args = p.parse_args()
    results = []
    print("| wiki | features | test sentences | P@0.5 | R@0.5 | F1@0.5 | best F1 (threshold) |")
    print("|---|---|---|---|---|---|---|")
    for dump in sorted(args.dumps.glob("*.xml*")):
        with tempfile.TemporaryDirectory() as work:
            start = time.monotonic()
            corpus = extract(dump, Path(work))
            for features in ("full", "reference"):
                r = evaluate(corpus, Settings(features=features))
                r["seconds"] = round(time.monotonic() - start, 1)
                results.append(r)
                at = {row["threshold"]: row for row in r["rows"]}[0.5]
                best = max(r["rows"], key=lambda row: row["f1"])
                cells = [
                    r["wiki"],
                    features,
                    r["test_sentences"],
                    f"{at['precision']:.3f}",
                    f"{at['recall']:.3f}",
                    f"{at['f1']:.3f}",
                    f"{best['f1']:.3f} ({best['threshold']})",
                ]
                print("| " + " | ".join(map(str, cells)) + " |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

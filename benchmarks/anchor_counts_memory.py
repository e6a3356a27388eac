"""Memory the per-fold anchor counts hold once counted: this code's against an older one's.

    git show 9fc3c45~1:model/train.py > /tmp/train_before.py
    nice -n 5 .venv/bin/python benchmarks/anchor_counts_memory.py --before /tmp/train_before.py \
        [--only elwiki] [--json OUT]

Per dump: the corpus extracted once, then ``count_anchors`` of each code (the other code's
``model/train.py`` loaded as a module beside this one: it imports the same ``model`` package)
with Python's allocation tracer on; reported is what stays allocated once it returns (the
counts, with the title and redirect candidates and stem members they hold), per fold entry
(the entries of every per-fold counter: pairs, linked, seen and the stem classes').
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backtest_all import chosen_dumps, dump_options, write_results  # noqa: E402 - benchmarks/, sys.path[0]

from model import train  # noqa: E402

COUNTERS = ("pairs", "linked", "seen", "stem_pairs", "stem_linked", "stem_seen", "link_titles")


def held(module, corpus) -> dict:
    gc.collect()
    tracemalloc.start()
    counts = module.count_anchors(corpus, None, corpus.resolve_ratio >= 0.25, 1, 5, frozenset(),
                                  "auto", link_titles=True)
    gc.collect()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    entries = sum(len(part) for name in COUNTERS for part in getattr(counts, name))
    return {"held_mb": round(size / 2**20, 1), "fold_entries": entries,
            "bytes_per_entry": round(size / entries)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    dump_options(p)
    p.add_argument("--before", type=Path, required=True, help="an older model/train.py")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    spec = importlib.util.spec_from_file_location("model._train_before", args.before)
    before = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = before  # dataclasses look their module up there
    spec.loader.exec_module(before)
    results = []
    print("| wiki | fold entries | before: held MB (B/entry) | now: held MB (B/entry) |")
    print("|---|---|---|---|")
    for dump in chosen_dumps(args):
        with tempfile.TemporaryDirectory() as work:
            corpus = train.extract(dump, Path(work))
            a, b = held(before, corpus), held(train, corpus)
        results.append({"wiki": corpus.site.dbname, "before": a, "now": b})
        print(f"| {corpus.site.dbname} | {b['fold_entries']:,} | {a['held_mb']} "
              f"({a['bytes_per_entry']}) | {b['held_mb']} ({b['bytes_per_entry']}) |", flush=True)
    if args.json:
        write_results(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

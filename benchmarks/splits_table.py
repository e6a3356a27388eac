"""One table over several splits: the same code measured with ``--seed 1``, ``--seed 2``, ...

    .venv/bin/python benchmarks/splits_table.py CALIBRATION_JSON... [--backtest BACKTEST_JSON]...

The inputs are ``benchmarks/calibration_check.py --scores 0.7 --json`` files (one per seed)
and, optionally, ``benchmarks/backtest_all.py --json`` files of the same seeds (the ceiling
and recall at precision >= 0.8 come from those). Printed per dump: one row per split, then
the splits together: the precision of kept links at the shipped default pooled over the
splits (right and kept summed, Wilson 95 %) and the mean of each other figure.

Why: on these dumps one split's ECE moves by 0.04-0.07 from another's and a small dump's
kept links by a few, so a difference between two versions that one split shows may be the
split (docs/model.md, "Other splits"). A decision judged on several splits reads its figures
here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.calibration import wilson  # noqa: E402

SHIPPED = "0.7"


def _calibration_rows(paths: list[Path]) -> dict[tuple[str, int], dict]:
    rows = {}
    for path in paths:
        for r in json.loads(path.read_text()):
            if r.get("features", "full") != "full":
                continue
            # Files written before calibration_check recorded its seed were all seed 1.
            rows[(r["wiki"], r.get("seed", 1))] = r
    return rows


def _backtest_rows(paths: list[Path]) -> dict[tuple[str, int], dict]:
    rows = {}
    for path in paths:
        for r in json.loads(path.read_text())["results"]:
            if r["features"] == "full" and not r.get("ablate"):
                rows[(r["wiki"], r["seed"])] = r
    return rows


def _fmt(x: float | None) -> str:
    return "" if x is None or x != x else f"{x:.3f}"


def _kept(right: int, kept: int) -> str:
    """Precision of kept links with its Wilson 95 % interval, as the docs' tables show it."""
    if not kept:
        return "none kept"
    low, high = wilson(right, kept)
    return f"{right / kept:.3f} ({right}/{kept}, {low:.2f}-{high:.2f})"


def table(calibration: dict, backtest: dict) -> list[str]:
    """Markdown lines: per dump, a row per seed and one for the seeds together."""
    lines = [
        "| wiki | seed | test sentences | ceiling | F1@0.5 | R@P>=0.8 | ECE kept (floor) | "
        f"P kept at {SHIPPED} (right/kept, 95 % CI) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for wiki in sorted({w for w, _ in calibration}):
        seeds = sorted(s for w, s in calibration if w == wiki)
        right = kept = 0
        figures: dict[str, list[float]] = {"ceiling": [], "f1": [], "r80": [], "ece": []}
        for seed in seeds:
            c = calibration[(wiki, seed)]
            b = backtest.get((wiki, seed))
            at = c["by_score"].get(SHIPPED)
            if at is None:
                raise SystemExit(f"error: {wiki} seed {seed} was run without --scores {SHIPPED}")
            right, kept = right + at["right"], kept + at["kept"]
            ceiling = b["ceiling"]["share"] if b else None
            r80 = (b["recall_at_p80"] or {"recall": 0.0})["recall"] if b else None
            for name, value in (("ceiling", ceiling), ("f1", c["f1_50"]), ("r80", r80),
                                ("ece", c["ece_kept"])):
                if value is not None and value == value:
                    figures[name].append(value)
            lines.append(
                f"| {wiki} | {seed} | {c['test_sentences']} | {_fmt(ceiling)} | "
                f"{_fmt(c['f1_50'])} | {_fmt(r80)} | {_fmt(c['ece_kept'])} "
                f"({_fmt(c['ece_kept_floor'])}) | {_kept(at['right'], at['kept'])} |"
            )
        if len(seeds) > 1:
            mean = {k: statistics.fmean(v) if v else None for k, v in figures.items()}
            means = " | ".join(f"{_fmt(mean[k])} (mean)" if mean[k] is not None else ""
                               for k in ("ceiling", "f1", "r80", "ece"))
            pooled = _kept(right, kept)
            lines.append(f"| {wiki} | {len(seeds)} splits | | {means} | {pooled} pooled |")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("calibration", nargs="+", type=Path, help="calibration_check.py JSON files")
    p.add_argument("--backtest", action="append", type=Path, default=[],
                   help="backtest_all.py JSON files of the same seeds")
    args = p.parse_args()
    try:
        calibration = _calibration_rows(args.calibration)
        backtest = _backtest_rows(args.backtest)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: cannot read the results: {e}", file=sys.stderr)
        return 2
    if not calibration:
        print("error: no full-feature rows in the calibration files", file=sys.stderr)
        return 2
    print("\n".join(table(calibration, backtest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

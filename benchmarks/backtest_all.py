"""Backtest every shared dump; print Markdown tables for docs/.

    .venv/bin/python benchmarks/backtest_all.py [--dumps DIR] [--only WIKI] [--json OUT] [--seed N]
    .venv/bin/python benchmarks/backtest_all.py --ablation [--json OUT]

Each dump is parsed once. Default: the ``full`` and ``reference`` models are built from the
same train half and tested on the same sentences, so the two rows differ only by features;
printed are the quality table (P@0.5 with its 95 % Wilson interval, recall at
precision >= 0.8, ECE), the candidate ceiling with where the gold links are lost, and the
ECE of the small dumps (< 150 test sentences) pooled. ``--seed N`` draws another split (and
seeds training with it): the docs' figures are seed 1, other seeds show how much of a
difference between two versions one split can tell.

``--ablation``: the ``full`` model, then once per feature with that feature dropped (set
missing in training and recommending): F1@0.5, best F1 and recall at precision >= 0.8 per
dump and per feature dropped, so each feature's contribution is measured on every dump.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.backtest import LOSSES, evaluate, pool_calibration  # noqa: E402
from model.features import FULL  # noqa: E402
from model.train import Settings, extract  # noqa: E402

DEFAULT_DUMPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "dumps"
SMALL = 150  # test sentences below which a dump's ECE is only reported pooled


def _r80(r: dict) -> str:
    x = r["recall_at_p80"]
    return "never reaches 0.8" if x is None else f"{x['recall']:.3f} (t={x['threshold']:.2f})"


def _ece(r: dict) -> str:
    ece = r["calibration"]["ece"]
    return "n/a" if ece is None else f"{ece:.3f}"


def _cells(r: dict) -> list[str]:
    at = {row["threshold"]: row for row in r["rows"]}[0.5]
    lo, hi = at["precision_ci"]
    best = r["best_f1"]
    return [
        r["wiki"],
        r["features"],
        str(r["test_sentences"]),
        f"{r['ceiling']['share']:.3f}",
        f"{at['precision']:.3f} [{lo:.2f}, {hi:.2f}]",
        f"{at['recall']:.3f}",
        f"{at['f1']:.3f}",
        f"{best['f1']:.3f} ({best['threshold']:.2f})",
        _r80(r),
        _ece(r),
    ]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def quality(dumps: list[Path]) -> dict:
    results = []
    print(
        _row(
            [
                "wiki",
                "features",
                "test sentences",
                "ceiling",
                "P@0.5 [95% CI]",
                "R@0.5",
                "F1@0.5",
                "best F1 (t)",
                "R@P>=0.8",
                "ECE",
            ]
        )
    )
    print("|---" * 10 + "|")
    for dump in dumps:
        with tempfile.TemporaryDirectory() as work:
            start = time.monotonic()
            corpus = extract(dump, Path(work))
            for features in ("full", "reference"):
                r = evaluate(corpus, Settings(features=features, **OPTIONS))
                r["seconds"] = round(time.monotonic() - start, 1)
                results.append(r)
                print(_row(_cells(r)), flush=True)
    print()
    print("Candidate ceiling (full features): share of the gold links lost at each stage")
    print()
    print(_row(["wiki", "gold links", "reachable", *LOSSES]))
    print("|---" * (3 + len(LOSSES)) + "|")
    for r in results:
        if r["features"] != "full":
            continue
        c = r["ceiling"]
        n = c["expected"] or 1
        print(
            _row(
                [r["wiki"], str(c["expected"]), f"{c['reachable'] / n:.3f}"]
                + [f"{c['losses'][k] / n:.3f}" for k in LOSSES]
            )
        )
    print()
    pooled = {}
    for features in ("full", "reference"):
        small = [r for r in results if r["features"] == features and r["test_sentences"] < SMALL]
        if small:
            pooled[features] = pool_calibration(small) | {"wikis": [r["wiki"] for r in small]}
            print(
                f"Pooled ECE of the small dumps ({', '.join(pooled[features]['wikis'])}; "
                f"{features}): {pooled[features]['ece']} over "
                f"{pooled[features]['predictions']} best candidates"
            )
    return {"results": results, "pooled_small": pooled}


def ablation(dumps: list[Path]) -> dict:
    results = []
    print(
        _row(
            ["wiki", "feature dropped", "F1@0.5", "ΔF1@0.5", "best F1", "Δbest F1", "R@P>=0.8"]
        )
    )
    print("|---" * 7 + "|")
    for dump in dumps:
        with tempfile.TemporaryDirectory() as work:
            corpus = extract(dump, Path(work))
            base = None
            for dropped in ("", *FULL):
                start = time.monotonic()
                r = evaluate(corpus, Settings(ablate=(dropped,) if dropped else (), **OPTIONS))
                r["seconds"] = round(time.monotonic() - start, 1)
                results.append(r)
                f1 = {row["threshold"]: row for row in r["rows"]}[0.5]["f1"]
                best = r["best_f1"]["f1"]
                if base is None:
                    base = (f1, best)
                print(
                    _row(
                        [
                            r["wiki"],
                            dropped or "(none)",
                            f"{f1:.3f}",
                            f"{f1 - base[0]:+.3f}",
                            f"{best:.3f}",
                            f"{best - base[1]:+.3f}",
                            _r80(r),
                        ]
                    ),
                    flush=True,
                )
    print()
    print(ablation_summary(results))
    return {"results": results}


def _f1_at_half(r: dict) -> float:
    return {row["threshold"]: row for row in r["rows"]}[0.5]["f1"]


def ablation_summary(results: list[dict]) -> str:
    """Per feature dropped and per wiki: ΔF1@0.5 / Δbest F1 / ΔR@P>=0.8, and their means.

    Deltas against the same dump's unablated row; a recall that never reaches 0.8 counts 0.
    """

    def figures(r: dict) -> tuple[float, float, float]:
        r80 = r["recall_at_p80"]
        return (_f1_at_half(r), r["best_f1"]["f1"], r80["recall"] if r80 else 0.0)

    base = {r["wiki"]: figures(r) for r in results if not r["ablate"]}
    wikis = sorted(base)
    dropped = list(dict.fromkeys(r["ablate"][0] for r in results if r["ablate"]))
    by = {(r["wiki"], r["ablate"][0]): figures(r) for r in results if r["ablate"]}
    lines = [
        "ΔF1@0.5 / Δbest F1 / ΔR@P>=0.8 when the feature is dropped (unablated: first row)",
        "",
        _row(["feature dropped", *(w.removesuffix("wiki") for w in wikis), "mean ΔF1@0.5",
              "mean Δbest F1", "mean ΔR@P>=0.8"]),
        "|---" * (len(wikis) + 4) + "|",
        _row(["(none)", *(" / ".join(f"{x:.3f}" for x in base[w]) for w in wikis), "", "", ""]),
    ]
    for name in dropped:
        deltas = [[a - b for a, b in zip(by[w, name], base[w], strict=True)] for w in wikis]
        means = [sum(col) / len(col) for col in zip(*deltas, strict=True)]
        lines.append(
            _row([name, *(" / ".join(f"{x:+.3f}" for x in d) for d in deltas),
                  *(f"{m:+.3f}" for m in means)])
        )
    return "\n".join(lines)


# Settings given on the command line, the same for every model built.
OPTIONS: dict = {}


def dump_options(p: argparse.ArgumentParser) -> None:
    """--dumps and --only, shared by the benchmarks that walk every shared dump."""
    p.add_argument("--dumps", type=Path, default=DEFAULT_DUMPS)
    p.add_argument("--only", action="append", help="only dumps whose file name starts so")


def chosen_dumps(args: argparse.Namespace) -> list[Path]:
    dumps = sorted(args.dumps.glob("*.xml*"))
    if args.only:
        dumps = [d for d in dumps if any(d.name.startswith(o) for o in args.only)]
    if not dumps:
        raise SystemExit(f"error: no dumps in {args.dumps}")
    return dumps


def write_results(path: Path, results: list) -> None:
    """A benchmark's rows as JSON, with the command that made them."""
    path.write_text(json.dumps({"command": " ".join(sys.argv), "results": results}, indent=1)
                    + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    dump_options(p)
    p.add_argument("--ablation", action="store_true", help="drop each feature in turn")
    p.add_argument("--json", type=Path, help="also write every result as JSON here")
    p.add_argument("--fold-vectors", choices=["svd", "projection"],
                   help="the folds' entity vectors (Settings.fold_vectors; default: Settings)")
    p.add_argument("--seed", type=int, help="split and training seed (default: Settings, 1)")
    args = p.parse_args()
    if args.seed is not None:
        OPTIONS["seed"] = args.seed
    if args.fold_vectors:
        OPTIONS["fold_vectors"] = args.fold_vectors
    dumps = chosen_dumps(args)
    out = ablation(dumps) if args.ablation else quality(dumps)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), **out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

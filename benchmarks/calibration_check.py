"""Precision, recall and calibration of the backtest's probe mentions, on every shared dump.

    .venv/bin/python benchmarks/calibration_check.py [--dumps DIR] [--json OUT] [--only WIKI]
        [--seed N]

Same split and probes as ``model.backtest`` (seed 1, or ``--seed N`` for another split and
training seed): the model is built from the train half, each test article's probe sentence
is scored. Besides P/R/F1 at 0.5 and the best F1 it
reports what calibration needs: ECE (10 equal-width bins) over each mention's best candidate
as ``score`` returns it (threshold 0, label = that (mention, target) is a removed link), the
same over the links ``select`` keeps at threshold 0 (the backtest's ECE) with the ECE a
perfectly calibrated model would show on as many links (noise floor), and the precision of
kept links at score >= 0.6 (SPEC §5's minimumLinkScore) and at the job's shipped default
(``runner.config.Criteria``), each with a Wilson 95 % interval. The small dumps
(< 150 test sentences) are also pooled.

``--scores 0.7,0.75,0.8,auto`` adds the precision of kept links at each minimum link score
(``by_score`` in the JSON); ``auto`` is the train-half model's own suggestion
(``training.suggested_minimum_link_score``, model/calibration.py), per wiki (pooled: each
wiki's pages at its own model's suggestion). ``--calibration platt,beta`` lets training
choose beta calibration too (``Settings.calibration``).

``ece_kept_ci`` holds bootstrap 95 % intervals of the kept links' ECE (test articles
resampled with replacement, 1000 rounds, seed 1; percentile and basic, see
``ece_bootstrap``): whether a dump's ECE is distinguishable from a goal such as 0.05 depends
on how many articles it has, and the interval says so. ``reliability`` holds the kept
links' bins (count, mean score, share right), as ``model.backtest``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.backtest import calibration as reliability  # noqa: E402
from model.backtest import in_test_half, probes, rendered, wilson  # noqa: E402
from model.calibration import ece as calibration_error  # noqa: E402
from model.datasets import open_model  # noqa: E402
from model.recommend import score, select  # noqa: E402
from model.train import Settings, build_model, extract  # noqa: E402
from runner.config import Criteria  # noqa: E402

SHIPPED = Criteria().minimum_link_score  # the job's default minimumLinkScore
DEFAULT_DUMPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "dumps"
LIMIT = 15


def ece(pairs: list[tuple[float, int]]) -> float:
    return calibration_error([p for p, _ in pairs], [c for _, c in pairs])


def ece_floor(pairs: list[tuple[float, int]], rounds: int = 200) -> float:
    """The ECE a perfectly calibrated model would show on this sample (labels drawn with
    probability = score): below it, a measured ECE is sampling noise."""
    import numpy as np

    if not pairs:
        return math.nan
    rng = np.random.default_rng(1)
    s = np.array([p for p, _ in pairs])
    return float(
        np.mean([calibration_error(s, rng.uniform(size=len(s)) < s) for _ in range(rounds)])
    )


def ece_bootstrap(groups: list[list[tuple[float, int]]], rounds: int = 1000) -> dict:
    """95 % bootstrap intervals of the ECE over ``groups`` (one list of kept (score, correct)
    pairs per test article) resampled with replacement: the article is the unit the split
    draws, so its links stay together.

    ``percentile`` is the plain interval; ECE is biased upward (binned |gap| of a noisy
    share), and a resample adds its own noise, so the percentile interval sits above the
    estimate. ``basic`` reflects it around the estimate (2 ECE - q97.5, 2 ECE - q2.5),
    which cancels that shift to first order: use it to judge "distinguishable from 0.05"."""
    import numpy as np

    groups = [g for g in groups if g]
    if not groups:
        return {"percentile": [math.nan, math.nan], "basic": [math.nan, math.nan]}
    rng = np.random.default_rng(1)
    values = []
    for _ in range(rounds):
        pick = rng.integers(0, len(groups), size=len(groups))
        pairs = [pair for i in pick for pair in groups[i]]
        values.append(ece(pairs))
    low, high = (float(v) for v in np.percentile(values, [2.5, 97.5]))
    point = ece([pair for g in groups for pair in g])
    return {
        "percentile": [round(low, 4), round(high, 4)],
        "basic": [round(max(0.0, 2 * point - high), 4), round(2 * point - low, 4)],
    }


def run(corpus, settings: Settings) -> dict:
    with tempfile.TemporaryDirectory(prefix="addlink-calcheck-") as work:
        test = {t for t in corpus.articles if in_test_half(t, settings.seed)}
        train = set(corpus.articles) - test
        start = time.monotonic()
        manifest = build_model(corpus, Path(work) / "model", settings, include=train)
        seconds = time.monotonic() - start
        model = open_model(Path(work) / "model")
        mentions, kept, pages = [], [], []  # (score, correct); (scored, gold) per sentence
        kept_pages = []  # the kept (score, correct) pairs of each test article
        expected = sentences = 0
        for record, text, gold, context in probes(corpus, test, model.trail):
            _, scored = score(model, text, title=record["t"], extra_links=context)
            sentences += 1
            expected += len(gold)
            # Compared as the backtest compares them: by the text the link shows, its trail in.
            shown = {id(s): rendered(text, s.start, s.end, model.trail) for s in scored}
            mentions += [(s.score, int((shown[id(s)], s.target) in gold)) for s in scored]
            pages.append(([(shown[id(s)], s) for s in scored], gold))
            kept_pages.append([
                (s.score, int((shown[id(s)], s.target) in gold))
                for s in select(scored, 0.0, LIMIT)
            ])
            kept += kept_pages[-1]
        model.close()
    auto = manifest.get("training", {}).get("suggested_minimum_link_score")
    pages = [(scored, gold, auto) for scored, gold in pages]
    return {
        "wiki": manifest["wiki"],
        "features": settings.features,
        "test_sentences": sentences,
        "expected": expected,
        "build_seconds": round(seconds, 1),
        "training": manifest.get("training", {}),
        "mentions": mentions,
        "kept": kept,
        "pages": pages,
        "kept_pages": kept_pages,
    }


def summary(
    name, features, sentences, expected, mentions, kept, pages, scores=(), kept_pages=()
) -> dict:
    def at(threshold: float | str) -> tuple[int, int]:
        n = k = 0
        for scored, gold, auto in pages:
            key = {id(s): t for t, s in scored}
            t = auto if threshold == "auto" else threshold
            if t is None:
                raise SystemExit("auto: the model has no suggested_minimum_link_score")
            chosen = select([s for _, s in scored], t, LIMIT)
            n += len(chosen)
            k += sum((key[id(s)], s.target) in gold for s in chosen)
        return n, k

    out = {"wiki": name, "features": features, "test_sentences": sentences}
    best = (0.0, 0.0)
    for t in [round(0.05 * i, 2) for i in range(20)]:
        n, k = at(t)
        p, r = (k / n if n else 0.0), k / expected if expected else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        best = max(best, (f1, t))
        if t == 0.5:
            out.update({"p50": p, "r50": r, "f1_50": f1})
    n, k = at(0.6)
    d_n, d_k = at(SHIPPED)
    sweep = {}
    for t in (0.6, 0.65, 0.7, 0.75, 0.8):
        t_n, t_k = at(t)
        sweep[str(t)] = [t_k / t_n if t_n else None, t_n, wilson(t_k, t_n)]
    by_score = {}
    for t in scores:
        t_n, t_k = at(t)
        by_score[str(t)] = {"precision": t_k / t_n if t_n else None, "kept": t_n,
                            "right": t_k, "ci": wilson(t_k, t_n)}
    autos = sorted({a for _, _, a in pages if a is not None})
    out.update(
        {
            "best_f1": best[0],
            "best_threshold": best[1],
            "p60": k / n if n else math.nan,
            "n60": n,
            "p60_ci": wilson(k, n),
            "shipped_score": SHIPPED,
            "p_shipped": d_k / d_n if d_n else math.nan,
            "n_shipped": d_n,
            "p_shipped_ci": wilson(d_k, d_n),
            "ece_mentions": ece(mentions),
            "ece_kept": ece(kept),
            "ece_floor": ece_floor(mentions),
            "ece_kept_floor": ece_floor(kept),
            "ece_kept_ci": ece_bootstrap(list(kept_pages)),  # 95 %, articles resampled
            "reliability": reliability(kept)["bins"],
            "n_mentions": len(mentions),
            "n_kept": len(kept),
            "precision_at": sweep,  # minimum link score -> [precision, kept links, 95 % CI]
            "by_score": by_score,  # --scores: precision, kept, right, 95 % CI
            "auto_scores": autos,  # the model's (models') suggested minimum link score
        }
    )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dumps", type=Path, default=DEFAULT_DUMPS)
    p.add_argument("--json", type=Path)
    p.add_argument("--only", action="append", help="wiki name prefix, e.g. ltgwiki")
    p.add_argument("--features", action="append", choices=["full", "reference"])
    p.add_argument("--positive-weight", type=float)
    p.add_argument("--folds", type=int, help="cross-fitting folds (default: Settings)")
    p.add_argument("--calibration", help="calibration maps training chooses among, e.g. "
                   "platt,beta (default: Settings, model/calibration.py CANDIDATES)")
    p.add_argument("--fold-vectors", choices=["svd", "projection"],
                   help="the folds' entity vectors (Settings.fold_vectors; default: Settings)")
    p.add_argument("--scores", help="comma-separated minimum link scores, 'auto' for the "
                   "train-half model's suggestion: precision of kept links at each")
    p.add_argument("--seed", type=int, help="split and training seed (default: Settings, 1)")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else Settings().seed
    scores = [v if v == "auto" else float(v) for v in args.scores.split(",")] \
        if args.scores else []
    lines = []
    header = (
        "| wiki | features | test sentences | P@0.5 | R@0.5 | F1@0.5 | best F1 (thr) | "
        f"P@>=0.6 (n, 95% CI) | P@>={SHIPPED} (n, 95% CI) | ECE mentions | ECE kept | "
        "ECE kept noise floor | ECE kept 95% CI, percentile / basic | calibration |"
    )
    print(header + "\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    pooled: dict[str, list] = {}
    for dump in sorted(args.dumps.glob("*.xml*")):
        if args.only and not any(dump.name.startswith(o) for o in args.only):
            continue
        with tempfile.TemporaryDirectory() as work:
            corpus = extract(dump, Path(work))
            for features in args.features or ["full", "reference"]:
                settings = Settings(features=features)
                if args.positive_weight is not None:
                    settings.positive_weight = args.positive_weight
                settings.seed = seed
                if args.folds is not None:
                    settings.folds = args.folds
                if args.calibration is not None:
                    settings.calibration = args.calibration
                if args.fold_vectors is not None:
                    settings.fold_vectors = args.fold_vectors
                r = run(corpus, settings)
                s = summary(
                    r["wiki"],
                    features,
                    r["test_sentences"],
                    r["expected"],
                    r["mentions"],
                    r["kept"],
                    r["pages"],
                    scores,
                    r["kept_pages"],
                )
                s["seed"] = seed
                s["build_seconds"] = r["build_seconds"]
                s["training"] = r["training"]
                lines.append(s)
                print(row(s), flush=True)
                if r["test_sentences"] < 150:
                    acc = pooled.setdefault(features, [0, 0, [], [], [], []])
                    acc[0] += r["test_sentences"]
                    acc[1] += r["expected"]
                    acc[2] += r["mentions"]
                    acc[3] += r["kept"]
                    acc[4] += r["pages"]
                    acc[5] += r["kept_pages"]
    for features, (sent, exp, men, kep, pag, kpg) in pooled.items():
        s = summary("small pooled", features, sent, exp, men, kep, pag, scores, kpg)
        s["seed"] = seed
        lines.append(s)
        print(row(s), flush=True)
    if scores:
        print("\n| wiki | features | auto = | " + " | ".join(
            f"P of kept at {t} (n, 95% CI)" for t in scores) + " |")
        print("|---|---|---|" + "---|" * len(scores))
        for s in lines:
            cells = [s["wiki"], s["features"], ",".join(map(str, s["auto_scores"])) or "-"]
            for t in scores:
                b = s["by_score"][str(t)]
                p_ = f"{b['precision']:.3f}" if b["precision"] is not None else "none"
                cells.append(f"{p_} ({b['kept']}, {b['ci'][0]}-{b['ci'][1]})")
            print("| " + " | ".join(map(str, cells)) + " |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(lines, indent=1))
    return 0


def row(s: dict) -> str:
    cells = [
        s["wiki"],
        s["features"],
        s["test_sentences"],
        f"{s['p50']:.3f}",
        f"{s['r50']:.3f}",
        f"{s['f1_50']:.3f}",
        f"{s['best_f1']:.3f} ({s['best_threshold']})",
        f"{s['p60']:.3f} ({s['n60']}, {s['p60_ci'][0]}-{s['p60_ci'][1]})",
        f"{s['p_shipped']:.3f} ({s['n_shipped']}, {s['p_shipped_ci'][0]}-"
        f"{s['p_shipped_ci'][1]})",
        f"{s['ece_mentions']:.3f}",
        f"{s['ece_kept']:.3f}",
        f"{s['ece_kept_floor']:.3f}",
        "{:.3f}-{:.3f} / {:.3f}-{:.3f}".format(
            *s["ece_kept_ci"]["percentile"], *s["ece_kept_ci"]["basic"]
        ),
        s.get("training", {}).get("calibration", "-"),
    ]
    return "| " + " | ".join(map(str, cells)) + " |"


if __name__ == "__main__":
    sys.exit(main())

"""Calibration maps judged offline over many splits: train once per split, replay any map.

    .venv/bin/python benchmarks/calibration_replay.py capture --seed 1 [--seed 2 ...]
        [--dumps DIR] [--only WIKI] [--out DIR] [--set SETTING=VALUE ...]
        [--keep-rows DIR] [--prior-rows DIR]
    .venv/bin/python benchmarks/calibration_replay.py judge [--captured DIR] [--seeds 1-6]
        [--map platt] [--map platt,beta] [--map isotonic] [--map moderated] [--map capped]
        [--minimum 0.7|floor|wilson|labels] [--json OUT]
    .venv/bin/python benchmarks/calibration_replay.py compare --base DIR --change DIR
        [--seeds 1-6] [--minimum 0.75] [--json OUT]

``capture`` builds the train-half model of each dump at each seed, exactly as
``calibration_check.py`` does, and keeps two things per (dump, seed) in one pickle: the
out-of-fold mentions training fits its calibration on (raw score, label, fold: what
``model.train.train_classifier`` hands ``choose_calibration``) and every test probe's scored
mentions with their *raw* scores (the model's map set to the identity), the text each shows
and whether it is a removed link as the backtest judges it, and the probe's number of gold
links. Seven dumps take about as long as one ``calibration_check.py`` run per seed.
``--set max_depth=4`` (any ``model.train.Settings`` field, its type's value) captures
another training's splits, so that a training change is judged on as many splits as a map.

``judge`` then fits each named map on a split's out-of-fold mentions, applies it to the test
half's raw scores and selects as the backtest does (``select`` at threshold 0 for the kept
links' ECE, at the shipped minimum link score for their precision, or with ``--minimum`` at
a given one or at each split's own pick by a rule over its out-of-fold mentions; at the backtest's
thresholds for F1 at 0.5 and recall at precision >= 0.8, counted as ``model.backtest``
counts them). It takes seconds for
seven dumps and six splits, and with ``--map platt`` it reproduces calibration_check.py's
figures of the same code to the link. A map is a comma list of ``model.calibration.METHODS``
(chosen among by cross-validated log loss, as training does) or one of the two maps below,
which were tried and not taken (docs/model.md, "Calibration maps for small held-out
samples"): kept here so that those figures can be re-made.

``compare`` pairs two captures of the same seeds probe by probe (a training change against
main) and gives bootstrap intervals for the differences in the kept links' precision and in
the right links kept, so a rule can tell a difference from the splits' noise.

Why: a calibration change judged on one split is judged on noise (one dump's ECE moves by
0.04-0.07 from split to split), and a full run per split per variant costs minutes each.
The pickles hold this code version's scores: capture again after changing anything but the
map.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pickle
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import model.train as training  # noqa: E402
from model import calibration as cal  # noqa: E402
from model import prior as priors  # noqa: E402
from model.backtest import (  # noqa: E402
    SWEEP,
    _row,
    in_test_half,
    probes,
    recall_at_precision,
    rendered,
)
from model.datasets import open_model  # noqa: E402
from model.recommend import score, select  # noqa: E402
from model.train import Settings, build_model, extract  # noqa: E402
from runner.config import Criteria  # noqa: E402

SHIPPED = str(Criteria().minimum_link_score)  # the job's default minimum link score
DEFAULT_DUMPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "dumps"
DEFAULT_CAPTURED = Path("/tmp/addlink-calibration-replay")
LIMIT = 15  # as calibration_check.py


def capture(dumps: list[Path], seeds: list[int], out: Path, overrides: dict | None = None,
            keep_rows: Path | None = None, prior_rows: Path | None = None) -> None:
    """One pickle per (dump, seed): the calibration's out-of-fold mentions, the test half's
    raw scored mentions. An existing pickle is kept (a capture can be resumed).

    ``keep_rows``: each split's model's own training rows (``model.prior.FILE``) are kept
    there as ``WIKI-SEED.npz``. ``prior_rows``: such a directory; each split is trained with
    the rows of the *other* wikis at the same seed as its prior (leave one wiki out)."""
    out.mkdir(parents=True, exist_ok=True)
    if keep_rows is not None:
        keep_rows.mkdir(parents=True, exist_ok=True)
    seen: dict = {}
    choose = training.choose_calibration

    def spy(s, y, fold, folds, candidates=cal.CANDIDATES):
        seen["oof"] = (np.asarray(s).copy(), np.asarray(y).copy(), np.asarray(fold).copy())
        return choose(s, y, fold, folds, candidates)

    training.choose_calibration = spy
    try:
        for dump in dumps:
            with tempfile.TemporaryDirectory(prefix="addlink-replay-") as work:
                corpus = extract(dump, Path(work))
                wiki = dump.name.split("-")[0]
                for seed in seeds:
                    path = out / f"{wiki}-{seed}.pkl"
                    if path.exists():
                        continue
                    settings = Settings(features="full", **(overrides or {}))
                    settings.seed = seed
                    if prior_rows is not None:
                        settings.prior = tuple(
                            str(f) for f in sorted(prior_rows.glob(f"*-{seed}.npz"))
                            if f.name.split("-")[0] != wiki
                        )
                    test = {t for t in corpus.articles if in_test_half(t, seed)}
                    manifest = build_model(corpus, Path(work) / f"m{seed}", settings,
                                           include=set(corpus.articles) - test)
                    if keep_rows is not None:
                        shutil.copyfile(Path(work) / f"m{seed}" / priors.FILE,
                                        keep_rows / f"{wiki}-{seed}.npz")
                    model = open_model(Path(work) / f"m{seed}")
                    model.calibration = cal.IDENTITY
                    pages, expected = [], []
                    for record, text, gold, context in probes(corpus, test, model.trail):
                        _, scored = score(model, text, title=record["t"], extra_links=context)
                        shown = [rendered(text, s.start, s.end, model.trail) for s in scored]
                        pages.append([(s, int((t, s.target) in gold), t)
                                      for s, t in zip(scored, shown, strict=True)])
                        expected.append(len(gold))
                    model.close()
                    tmp = path.with_suffix(".tmp")
                    tmp.write_bytes(pickle.dumps({"oof": seen["oof"], "pages": pages,
                                                  "expected": expected,
                                                  "settings": {**(overrides or {}), **(
                                                      {"prior": list(settings.prior)}
                                                      if settings.prior else {})},
                                                  "training": manifest.get("training", {})}))
                    tmp.replace(path)
                    print(f"{path.name}: {len(seen['oof'][0])} calibration mentions, "
                          f"{len(pages)} test sentences", flush=True)
    finally:
        training.choose_calibration = choose


def fit_moderated(scores, labels) -> cal.Calibration:
    """Platt's posterior predictive probability (Laplace approximation; MacKay 1992):
    sigmoid(mu / sqrt(1 + pi var / 8)) with mu = a z + b and var its posterior variance."""
    s = np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1 - 1e-6)
    y = np.asarray(labels, dtype=np.float64)
    z = np.log(s / (1 - s))
    x = np.column_stack([z, np.ones(len(z))])
    a, b = cal._logistic(x, y, [True, True])  # Platt's fit, ridge included
    p = 1 / (1 + np.exp(-(x @ np.array([a, b]))))
    hess = (x * (p * (1 - p) + 1e-9)[:, None]).T @ x
    hess[0, 0] += 2 * cal.RIDGE * len(z)
    cov = np.linalg.inv(hess)
    grid = cal._logit_grid(241)
    g = np.log(grid / (1 - grid))
    var = cov[0, 0] * g * g + 2 * cov[0, 1] * g + cov[1, 1]
    return cal._on_grid(grid, 1 / (1 + np.exp(-(max(a, 1e-3) * g + b) /
                                             np.sqrt(1 + math.pi * var / 8))))


def fit_capped(scores, labels) -> cal.Calibration:
    """c * sigmoid(a z + b): Platt under a ceiling c <= 1 fitted with it (share right
    levelling off below 1 at the top scores)."""
    from scipy.optimize import minimize

    s = np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1 - 1e-6)
    y = np.asarray(labels, dtype=np.float64)
    z = np.log(s / (1 - s))
    a, b = cal._logistic(np.column_stack([z, np.ones(len(z))]), y, [True, True])

    def loss(v: np.ndarray) -> float:
        p = 1 / (1 + np.exp(-v[2])) / (1 + np.exp(-np.clip(v[0] * z + v[1], -30, 30)))
        p = np.clip(p, 1e-12, 1 - 1e-12)
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean() + cal.RIDGE * v[0] ** 2)

    start = np.array([max(a, 1e-3), b, 6.0])
    got = minimize(loss, start, method="L-BFGS-B",
                   bounds=[(1e-3, None), (None, None), (None, 12.0)])
    a, b, c = got.x if got.fun <= loss(start) else start
    grid = cal._logit_grid(241)
    return cal._on_grid(grid, 1 / (1 + np.exp(-c)) /
                        (1 + np.exp(-(a * np.log(grid / (1 - grid)) + b))))


TRIED = {"moderated": fit_moderated, "capped": fit_capped}


def fitter(name: str):
    if name in TRIED:
        fit = TRIED[name]
        return lambda s, y, fold: fit(s, y) if 0 < y.sum() < len(y) else cal.fit_isotonic(s, y)
    methods = tuple(name.split(","))
    return lambda s, y, fold: cal.choose_calibration(s, y, fold, training.FOLDS, methods)[1]


def judge_split(data: dict, calibration, minimum: float) -> dict:
    """The kept links' ECE (threshold 0), right and kept at ``minimum`` (in all and per test
    probe, ``per_probe``), and, where the capture has the texts shown and the gold counts,
    F1 at 0.5 and recall at precision >= 0.8 over the backtest's thresholds (distinct
    (text, target) pairs, as it counts)."""
    kept, per_probe = [], []
    texts = all(len(m) == 3 for page in data["pages"] for m in page)
    counts = {t: [0, 0] for t in SWEEP}
    for page in data["pages"]:
        probability = calibration([m[0].score for m in page]) if page else []
        mapped = [(dataclasses.replace(m[0], score=float(p)),) + m[1:]
                  for m, p in zip(page, probability, strict=True)]
        correct = {id(m[0]): m[1] for m in mapped}
        text = {id(m[0]): m[2] for m in mapped} if texts else {}
        scored = [m[0] for m in mapped]
        kept += [(m.score, correct[id(m)]) for m in select(scored, 0.0, LIMIT)]
        chosen = select(scored, minimum, LIMIT)
        per_probe.append((sum(correct[id(m)] for m in chosen), len(chosen)))
        for t in SWEEP if texts else ():
            pairs = {(text[id(m)], m.target): correct[id(m)] for m in select(scored, t, LIMIT)}
            counts[t][0] += len(pairs)
            counts[t][1] += sum(pairs.values())
    out = {"ece": cal.ece([p for p, _ in kept], [c for _, c in kept]),
           "right": sum(r for r, _ in per_probe), "kept": sum(n for _, n in per_probe),
           "f1_50": None, "r_p80": None, "minimum": minimum,
           "per_probe": per_probe}
    if texts and "expected" in data:
        sweep = [_row(t, p, c, sum(data["expected"])) for t, (p, c) in counts.items()]
        out["f1_50"] = next(r.f1 for r in sweep if r.threshold == 0.5)
        best = recall_at_precision(sweep)
        out["r_p80"] = best["recall"] if best else 0.0
    return out


FLOOR_GRID = (0.7, 0.75, 0.8)


def floor_of(scores, values) -> float:
    """The smallest t of ``FLOOR_GRID`` whose held-out kept mentions (calibrated score >= t)
    have a mean of ``values`` >= 0.8; else the grid's top. With ``values`` the scores
    themselves this is the floor rule, tried and not taken (docs/model.md, "The default
    minimum link score raised where the calibrated scores call for it"; the mean of scores
    >= 0.8 is at least 0.8); with the labels, the same asked of their point estimate
    (reported beside it)."""
    s, v = np.asarray(scores), np.asarray(values)
    for t in FLOOR_GRID:
        kept = s >= t - 1e-12
        if kept.any() and v[kept].mean() >= cal.TARGET_PRECISION - 1e-12:
            return t
    return FLOOR_GRID[-1]


# How ``--minimum`` picks each split's minimum link score from its out-of-fold population
# (calibrated as training calibrates it: each fold's map fitted on the other folds).
RULES = {
    "floor": lambda s, y: floor_of(s, s),
    "wilson": lambda s, y: cal.suggest_minimum_link_score(s, y)["minimum_link_score"],
    "labels": floor_of,
}


def judge(captured: Path, seeds: list[int], maps: list[str],
          minimum: str = SHIPPED) -> list[dict]:
    rows = []
    files = sorted(f for f in captured.glob("*.pkl") if int(f.stem.rsplit("-", 1)[1]) in seeds)
    if not files:
        raise SystemExit(f"calibration_replay: no captured splits in {captured} for {seeds}")
    splits = [(f.stem.rsplit("-", 1)[0], pickle.loads(f.read_bytes())) for f in files]
    for name in maps:
        fit = fitter(name)
        per: dict[str, list] = {}
        for wiki, data in splits:
            s, y, fold = data["oof"]
            if minimum in RULES:  # one calibration: its map, and its out-of-fold scores
                _, mapping, calibrated, _ = cal.choose_calibration(
                    s, y, fold, training.FOLDS, tuple(name.split(",")))
                threshold = RULES[minimum](calibrated, y)
            else:
                mapping, threshold = fit(s, y, fold), float(minimum)
            per.setdefault(wiki, []).append(judge_split(data, mapping, threshold))
        for wiki, got in sorted(per.items()):
            right, kept = sum(g["right"] for g in got), sum(g["kept"] for g in got)
            f1s = [g["f1_50"] for g in got if g["f1_50"] is not None]
            recalls = [g["r_p80"] for g in got if g["r_p80"] is not None]
            rows.append({"map": name, "wiki": wiki, "splits": len(got),
                         "minimum": minimum, "minimums": [g["minimum"] for g in got],
                         "mean_ece_kept": statistics.mean(g["ece"] for g in got),
                         "right": right, "kept": kept,
                         "precision": right / kept if kept else None,
                         "ci": list(cal.wilson(right, kept)),
                         "mean_f1_50": statistics.mean(f1s) if len(f1s) == len(got) else None,
                         "mean_r_p80": statistics.mean(recalls)
                         if len(recalls) == len(got) else None})
    return rows


def _drawn(side: list[np.ndarray], draws: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right and kept links summed over the splits, per bootstrap draw of their probes."""
    right = sum(a[d, 0].sum(axis=1) for a, d in zip(side, draws, strict=True))
    kept = sum(a[d, 1].sum(axis=1) for a, d in zip(side, draws, strict=True))
    return right, kept


def compare(base: Path, change: Path, seeds: list[int], minimum: float,
            resamples: int = 4000) -> list[dict]:
    """Per dump, the change's kept links at ``minimum`` against the base's, paired by probe.

    Both captures of one seed hold the same test probes in the same order (the split and the
    probe rule do not depend on the model), so each probe is scored by both; a bootstrap
    that redraws probes within each split, the same draw for both sides, gives a 95 %
    interval for the change's precision minus the base's and for its right links kept
    minus the base's. Why: a rule's "not lower" over ~70 kept links (the English sample) is
    decided by one link either way; the interval says whether a difference is more than the
    splits' noise. Platt, as shipped; the draw is seeded, so the figures repeat."""
    rng = np.random.default_rng(1)
    rows = []
    files = sorted(f for f in base.glob("*.pkl") if int(f.stem.rsplit("-", 1)[1]) in seeds)
    wikis = sorted({f.stem.rsplit("-", 1)[0] for f in files})
    if not wikis:
        raise SystemExit(f"calibration_replay: no captured splits in {base} for {seeds}")
    for wiki in wikis:
        sides: list[list[np.ndarray]] = [[], []]
        for seed in seeds:
            paths = [d / f"{wiki}-{seed}.pkl" for d in (base, change)]
            if not all(p.exists() for p in paths):
                raise SystemExit(f"calibration_replay: {wiki} at seed {seed} is not captured "
                                 f"in both {base} and {change}")
            got = []
            for side, path in zip(sides, paths, strict=True):
                data = pickle.loads(path.read_bytes())
                s, y, fold = data["oof"]
                counts = judge_split(data, fitter("platt")(s, y, fold), minimum)["per_probe"]
                side.append(np.asarray(counts, dtype=float).reshape(-1, 2))
                got.append(data["expected"])
            if got[0] != got[1]:
                raise SystemExit(f"calibration_replay: {wiki} at seed {seed}: the captures "
                                 "hold other test probes (another split or probe rule)")
        draws = [rng.integers(0, max(1, len(a)), size=(resamples, len(a))) for a in sides[0]]
        (rb, kb), (rc, kc) = _drawn(sides[0], draws), _drawn(sides[1], draws)
        both = (kb > 0) & (kc > 0)
        diff = rc[both] / kc[both] - rb[both] / kb[both]
        right = [sum(int(a[:, 0].sum()) for a in side) for side in sides]
        kept = [sum(int(a[:, 1].sum()) for a in side) for side in sides]
        rows.append({
            "wiki": wiki, "splits": len(seeds), "minimum": minimum,
            "probes": sum(len(a) for a in sides[0]),
            "base": {"right": right[0], "kept": kept[0]},
            "change": {"right": right[1], "kept": kept[1]},
            "precision_difference": right[1] / kept[1] - right[0] / kept[0]
            if kept[0] and kept[1] else None,
            "precision_difference_ci": [round(float(q), 4) for q in
                                        np.quantile(diff, [0.025, 0.975])] if both.any()
            else None,
            "right_difference": right[1] - right[0],
            "right_difference_ci": [int(q) for q in np.quantile(rc - rb, [0.025, 0.975])],
        })
    return rows


def overrides(pairs: list[str]) -> dict:
    """``--set`` pairs as Settings keyword arguments, each value of its field's type."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in fields or not value:
            raise SystemExit(f"calibration_replay: --set {pair!r}: not SETTING=VALUE of "
                             "model.train.Settings")
        kind = type(getattr(Settings(), name))
        out[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return out


def seed_list(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--seed", type=int, action="append", required=True)
    c.add_argument("--dumps", type=Path, default=DEFAULT_DUMPS)
    c.add_argument("--only", action="append", help="wiki name prefix, e.g. ltgwiki")
    c.add_argument("--out", type=Path, default=DEFAULT_CAPTURED)
    c.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                   help="a model.train.Settings field for this capture, e.g. max_depth=4")
    c.add_argument("--keep-rows", type=Path, metavar="DIR",
                   help="keep each split's training rows there (WIKI-SEED.npz)")
    c.add_argument("--prior-rows", type=Path, metavar="DIR",
                   help="train each split with the other wikis' rows of its seed in DIR "
                        "(kept by --keep-rows) as its prior")
    j = sub.add_parser("judge")
    j.add_argument("--captured", type=Path, default=DEFAULT_CAPTURED)
    j.add_argument("--seeds", type=seed_list, default=seed_list("1-6"))
    j.add_argument("--map", action="append", dest="maps")
    j.add_argument("--json", type=Path)
    j.add_argument("--minimum", default=SHIPPED,
                   help=f"the minimum link score the kept links' precision is counted at: a "
                        f"number (default {SHIPPED}) or a rule picking each split's own from its "
                        f"out-of-fold mentions: {', '.join(RULES)}")
    k = sub.add_parser("compare", help="a change's kept links against a base's, paired by "
                       "probe, with bootstrap intervals of the differences")
    k.add_argument("--base", type=Path, required=True)
    k.add_argument("--change", type=Path, required=True)
    k.add_argument("--seeds", type=seed_list, default=seed_list("1-6"))
    k.add_argument("--minimum", type=float, default=float(SHIPPED))
    k.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.command == "compare":
        return report_comparison(compare(args.base, args.change, args.seeds, args.minimum),
                                 args.json)
    if args.command == "capture":
        dumps = [d for d in sorted(args.dumps.glob("*.xml*"))
                 if not args.only or any(d.name.startswith(o) for o in args.only)]
        if not dumps:
            raise SystemExit(f"calibration_replay: no dumps in {args.dumps}")
        capture(dumps, args.seed, args.out, overrides(args.set), args.keep_rows,
                args.prior_rows)
        return 0
    maps = args.maps or ["platt"]
    unknown = [m for m in maps if m not in TRIED
               and any(x not in cal.METHODS for x in m.split(","))]
    if unknown:
        raise SystemExit(f"calibration_replay: unknown map(s) {unknown}")
    if args.minimum not in RULES:
        try:
            if not 0.0 <= float(args.minimum) <= 1.0:
                raise ValueError
        except ValueError:
            raise SystemExit(f"calibration_replay: --minimum {args.minimum!r}: not a score in "
                             f"[0, 1] or one of {', '.join(RULES)}") from None
    if args.minimum in RULES and any(m in TRIED for m in maps):
        raise SystemExit(f"calibration_replay: --minimum {args.minimum} needs maps of "
                         f"model.calibration.METHODS, not {[m for m in maps if m in TRIED]}")
    rows = judge(args.captured, args.seeds, maps, args.minimum)
    print(f"| map | wiki | splits | mean ECE kept | P kept at {args.minimum} (right/kept, 95 % CI) "
          "| mean F1@0.5 | mean R@P>=0.8 | minimum per split |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        p_kept = f"{r['precision']:.3f}" if r["kept"] else "none"
        f1 = "-" if r["mean_f1_50"] is None else f"{r['mean_f1_50']:.3f}"
        rp = "-" if r["mean_r_p80"] is None else f"{r['mean_r_p80']:.3f}"
        print(f"| {r['map']} | {r['wiki']} | {r['splits']} | {r['mean_ece_kept']:.3f} | "
              f"{p_kept} ({r['right']}/{r['kept']}, {r['ci'][0]:.2f}-{r['ci'][1]:.2f}) "
              f"| {f1} | {rp} | {' '.join(f'{m:g}' for m in r['minimums'])} |")
    for name in maps:
        mine = [r for r in rows if r["map"] == name]
        mean = statistics.mean(r["mean_ece_kept"] for r in mine)
        f1 = [r["mean_f1_50"] for r in mine if r["mean_f1_50"] is not None]
        rp = [r["mean_r_p80"] for r in mine if r["mean_r_p80"] is not None]
        more = (f", mean F1@0.5 {statistics.mean(f1):.4f}, mean R@P>=0.8 {statistics.mean(rp):.4f}"
                if len(f1) == len(rp) == len(mine) else "")
        print(f"{name}: mean over dumps of the mean ECE {mean:.4f}, "
              f"right links kept {sum(r['right'] for r in mine)}{more}")
    if args.json:
        args.json.write_text(json.dumps({"seeds": args.seeds, "minimum": args.minimum,
                                         "rows": rows}, indent=1) + "\n")
    return 0


def report_comparison(rows: list[dict], out: Path | None) -> int:
    print(f"| wiki | probes | P kept at {rows[0]['minimum']:g}: base → change | difference "
          "(95 % CI) | right links kept: difference (95 % CI) |")
    print("|---|---|---|---|---|")
    for r in rows:
        b, c = r["base"], r["change"]
        if r["precision_difference"] is None:
            shown = "-"
        else:
            low, high = r["precision_difference_ci"]
            shown = f"{r['precision_difference']:+.3f} ({low:+.3f} to {high:+.3f})"
        print(f"| {r['wiki']} | {r['probes']} | {b['right']}/{b['kept']} → "
              f"{c['right']}/{c['kept']} | {shown} | {r['right_difference']:+d} "
              f"({r['right_difference_ci'][0]:+d} to {r['right_difference_ci'][1]:+d}) |")
    if out:
        out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

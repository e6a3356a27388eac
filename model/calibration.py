"""Score calibration: a monotone map from the classifier's raw score to a probability.

The classifier's raw scores rank candidates well but do not mean the same on every wiki (a
0.99 may be right half of the time). Training fits this map on out-of-fold scores of
*articles* the classifier did not see, over each mention's best candidate (what the
recommender returns), so "0.7" means about 70 % of such links are right. Platt scaling,
beta calibration (three parameters, nesting Platt) or isotonic regression (pool adjacent
violators, which assumes only that a higher raw score is never less likely right) is chosen
by cross-validated log loss (``choose_calibration``); the map is stored as knots and applied
by linear interpolation, which keeps it monotone and keeps distinct raw scores distinct
between knots (so the best candidate stays the best).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE = "calibration.json"
BINS = 10
Z95 = 1.959964
TARGET_PRECISION = 0.8  # the deployment rule: a newcomer shown a wrong link loses trust
# The minimum link scores a model may suggest (SPEC §5's 0.6 up to 0.9), and what it suggests
# when its held-out evidence supports none of them: the most cautious.
SUGGESTION_GRID = tuple(round(0.6 + 0.05 * i, 2) for i in range(7))


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n: honest for the small counts here."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def suggest_minimum_link_score(scores, labels) -> dict:
    """The smallest minimum link score on ``SUGGESTION_GRID`` whose kept links are shown right
    at least ``TARGET_PRECISION`` of the time: the Wilson 95 % lower bound of their precision
    over the held-out population, not the point estimate, must reach it.

    ``scores``/``labels`` are the out-of-fold calibrated scores of the mentions the
    recommender would return and whether each is a removed link (what the calibration is
    judged on). The lower bound is the one margin, fixed on principle rather than per wiki:
    a wiki with few held-out mentions needs a clearer result before a lower threshold is
    trusted, and one with many gets the threshold its evidence supports. Where no grid point
    reaches it, the suggestion is the grid's top with ``reached`` false. ``grid`` keeps
    (right, kept) per threshold so that the choice can be checked from the manifest alone.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    grid: dict[str, list[int]] = {}
    chosen = None
    for t in SUGGESTION_GRID:
        kept = s >= t - 1e-12
        n, k = int(kept.sum()), int(y[kept].sum())
        grid[f"{t:.2f}"] = [k, n]
        if chosen is None and n and wilson(k, n)[0] >= TARGET_PRECISION:
            chosen = t
    reached = chosen is not None
    t = chosen if reached else SUGGESTION_GRID[-1]
    k, n = grid[f"{t:.2f}"]
    return {
        "minimum_link_score": t,
        "reached": reached,
        "rule": (
            f"smallest t in {SUGGESTION_GRID[0]}..{SUGGESTION_GRID[-1]} step 0.05 whose "
            f"out-of-fold kept links (score >= t) have a Wilson 95 % lower bound of precision "
            f">= {TARGET_PRECISION}; else {SUGGESTION_GRID[-1]}"
        ),
        "precision": round(k / n, 4) if n else None,
        "right": k,
        "kept": n,
        "ci": list(wilson(k, n)),
        "grid": grid,
    }


@dataclass(frozen=True)
class Calibration:
    """Knots (raw score, probability), both non-decreasing; flat beyond the end knots."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __call__(self, scores) -> np.ndarray:
        return np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"x": list(self.x), "y": list(self.y)}) + "\n")

    @staticmethod
    def load(path: Path) -> Calibration:
        data = json.loads(path.read_text())
        x, y = tuple(map(float, data["x"])), tuple(map(float, data["y"]))
        if not x or len(x) != len(y) or list(x) != sorted(x) or list(y) != sorted(y):
            raise ValueError(f"{path}: knots must be two non-decreasing lists of equal length")
        return Calibration(x, y)


IDENTITY = Calibration((0.0, 1.0), (0.0, 1.0))


def fit_isotonic(scores, labels, min_block: int | None = None) -> Calibration:
    """Pool adjacent violators over (score, label); knots at each block's mean score.

    Blocks come out with strictly increasing means, so the map is monotone non-decreasing.
    Blocks smaller than ``min_block`` (default: 20 or 1 % of the points) are then merged
    with a neighbour, which keeps the map monotone: at the ends PAV leaves tiny blocks (three
    lucky mentions make "0.67"), and a small wiki's top scores would inherit their noise.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if len(s) == 0:
        return IDENTITY
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    # Blocks as parallel stacks: sum of labels, sum of scores, count.
    sums, xs, counts = [], [], []
    for score, label in zip(s.tolist(), y.tolist(), strict=True):
        sums.append(label)
        xs.append(score)
        counts.append(1.0)
        while len(sums) > 1 and sums[-2] / counts[-2] >= sums[-1] / counts[-1]:
            label_sum, score_sum, count = sums.pop(), xs.pop(), counts.pop()
            sums[-1] += label_sum
            xs[-1] += score_sum
            counts[-1] += count
    least = min_block if min_block is not None else max(20, len(s) // 100)
    i = 0
    while len(counts) > 1 and i < len(counts):
        if counts[i] >= least:
            i += 1
            continue
        # Merge with the neighbour whose mean is closer (the last block: with the previous).
        j = i + 1 if i + 1 < len(counts) else i - 1
        if 0 < i < len(counts) - 1:
            mean = sums[i] / counts[i]
            if abs(sums[i - 1] / counts[i - 1] - mean) < abs(sums[i + 1] / counts[i + 1] - mean):
                j = i - 1
        a, b = min(i, j), max(i, j)
        sums[a] += sums.pop(b)
        xs[a] += xs.pop(b)
        counts[a] += counts.pop(b)
        i = a
    knots_x = [round(x / n, 6) for x, n in zip(xs, counts, strict=True)]
    knots_y = [round(v / n, 6) for v, n in zip(sums, counts, strict=True)]
    return _monotone(knots_x, knots_y)


def fit_platt(scores, labels) -> Calibration:
    """Logistic calibration on the logit of the raw score (Platt scaling), as knots.

    Two parameters, so it stays meaningful on a small wiki where isotonic regression has
    too few mentions per block and collapses to a constant; the slope is kept positive,
    so the map is strictly increasing and never reorders candidates.
    """
    s = np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1 - 1e-6)
    y = np.asarray(labels, dtype=np.float64)
    if len(s) == 0 or y.min() == y.max():
        return fit_isotonic(s, y)
    z = np.log(s / (1 - s))

    def loss(a: float, b: float) -> float:
        t = a * z + b
        return float((np.logaddexp(0, t) - y * t).mean() + 1e-4 * a * a)

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(100):  # Newton's method with step halving: the loss never goes up
        p = 1 / (1 + np.exp(-(a * z + b)))
        w = p * (1 - p) + 1e-9
        n = len(z)
        grad = np.array([((p - y) * z).sum() / n + 2e-4 * a, (p - y).sum() / n])
        hess = np.array(
            [[(w * z * z).sum() / n + 2e-4, (w * z).sum() / n], [(w * z).sum() / n, w.sum() / n]]
        )
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and loss(a - scale * step[0], b - scale * step[1]) > current:
            scale /= 2
        if scale <= 1e-6:
            break
        a, b = a - scale * step[0], b - scale * step[1]
        previous, current = current, loss(a, b)
        if previous - current < 1e-12:
            break
    a = max(a, 1e-3)
    grid = _logit_grid(241)
    return _on_grid(grid, 1 / (1 + np.exp(-(a * np.log(grid / (1 - grid)) + b))))


def _logit_grid(points: int) -> np.ndarray:
    """Scores evenly spaced in logit from -12 to 12: a parametric map's knots, dense where
    the curve bends (near 0 and 1) so linear interpolation stays close to it."""
    return 1 / (1 + np.exp(-np.linspace(-12, 12, points)))


def _on_grid(grid: np.ndarray, values: np.ndarray) -> Calibration:
    """A parametric map sampled on ``grid`` as knots, flat beyond the grid out to 0 and 1."""
    knots_x = [0.0] + [round(float(v), 6) for v in grid] + [1.0]
    knots_y = [round(float(values[0]), 6)] + [round(float(v), 6) for v in values]
    knots_y.append(knots_y[-1])
    return _monotone(knots_x, knots_y)


def _monotone(knots_x: list[float], knots_y: list[float]) -> Calibration:
    """Knots rounded to their stored precision can come out equal or out of order where
    neighbours are close: raise each to its predecessor, so both lists stay monotone."""
    for i in range(1, len(knots_x)):
        knots_x[i] = max(knots_x[i], knots_x[i - 1])
        knots_y[i] = max(knots_y[i], knots_y[i - 1])
    return Calibration(tuple(knots_x), tuple(knots_y))


RIDGE = 1e-4  # the slopes' L2 penalty, as Platt's: keeps a separable sample finite


def _logistic(features: np.ndarray, y: np.ndarray, free: list[bool]) -> np.ndarray:
    """Logistic regression of ``y`` on ``features`` (last column the intercept) by Newton's
    method with step halving (the penalized loss never goes up); coefficients whose ``free``
    entry is False stay at 0. Returns the coefficients."""
    n, k = features.shape
    w = np.zeros(k)
    idx = np.flatnonzero(free)
    penal = np.array([RIDGE] * (k - 1) + [0.0])[idx]
    z = features[:, idx]

    def loss(v: np.ndarray) -> float:
        t = z @ v
        return float((np.logaddexp(0, t) - y * t).mean() + (penal * v * v).sum())

    v = w[idx]
    current = loss(v)
    for _ in range(100):
        p = 1 / (1 + np.exp(-(z @ v)))
        grad = z.T @ (p - y) / n + 2 * penal * v
        hess = (z * (p * (1 - p) + 1e-9)[:, None]).T @ z / n + np.diag(2 * penal)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and loss(v - scale * step) > current:
            scale /= 2
        if scale <= 1e-6:
            break
        v = v - scale * step
        previous, current = current, loss(v)
        if previous - current < 1e-12:
            break
    w[idx] = v
    return w


def fit_beta_parameters(scores, labels) -> tuple[float, float, float]:
    """Beta calibration's (a, b, c) (Kull, Silva Filho & Flach 2017):
    p = 1 / (1 + exp(-(a ln s - b ln(1 - s) + c))), with a, b >= 0.

    Three parameters: Platt on the logit is the case a = b, and a != b bends the two ends
    apart, the sigmoid-shaped miscalibration boosted trees show (under-confident at one end,
    over-confident at the other). With a, b >= 0 the map is monotone (its derivative in s is
    a/s + b/(1-s)); a coefficient fitted negative is fixed at 0 and the other two refitted,
    as the paper does. The fit is the maximum-likelihood one with Platt's small ridge.
    """
    s = np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1 - 1e-6)
    y = np.asarray(labels, dtype=np.float64)
    features = np.column_stack([np.log(s), -np.log(1 - s), np.ones(len(s))])
    free = [True, True, True]
    w = _logistic(features, y, free)
    while (w[:2] < 0).any():
        free[int(np.argmin(w[:2]))] = False
        w = _logistic(features, y, free)
    return float(w[0]), float(w[1]), float(w[2])


def beta_map(a: float, b: float, c: float, scores) -> np.ndarray:
    s = np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1 - 1e-6)
    return 1 / (1 + np.exp(-(a * np.log(s) - b * np.log(1 - s) + c)))


def fit_beta(scores, labels) -> Calibration:
    """Beta calibration (``fit_beta_parameters``) stored as dense knots, like Platt's: the
    knots lie on a logit grid (481 points, logit -12..12), so the linear interpolation
    between them is within ~1e-3 of the curve, the file format and checksums stay as they
    are, and the map is strictly increasing (never reorders candidates). Where both slopes
    come out 0 (scores that carry nothing) it falls back to Platt, whose slope is floored."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if len(s) == 0 or y.min() == y.max():
        return fit_isotonic(s, y)
    a, b, c = fit_beta_parameters(s, y)
    if a + b < 1e-3:
        return fit_platt(s, y)
    grid = _logit_grid(481)
    return _on_grid(grid, beta_map(a, b, c, grid))


METHODS = {"isotonic": fit_isotonic, "platt": fit_platt, "beta": fit_beta}
ISOTONIC_MIN_MENTIONS = 1000  # calibration mentions below which isotonic under-resolves
# The parametric maps training chooses among (isotonic joins from ISOTONIC_MIN_MENTIONS on).
# Beta is not among them by default: chosen by this rule it changed the backtest's ECE by
# -0.001 on the mean of the seven shared dumps and cost tasks on two (docs/model.md,
# "Beta calibration"); ``Settings.calibration`` ("platt,beta") puts it back.
CANDIDATES = ("platt",)


def choose_calibration(
    score, label, fold, folds: int, candidates: tuple[str, ...] = CANDIDATES
) -> tuple[str, Calibration, np.ndarray, dict]:
    """The calibration map to ship, chosen by cross-validated log loss over the folds.

    Each method's map is fitted on the other folds' mentions and scores the held-out fold's,
    so the comparison is out of sample and the extra parameter of beta (or isotonic's
    freedom) must pay for itself on mentions it did not see. Candidates: ``candidates``
    (Platt; beta when asked), and isotonic where there are at least
    ``ISOTONIC_MIN_MENTIONS`` (Niculescu-Mizil & Caruana 2005; below that it pools the few
    top scores with mediocre ones: the English sample's 146 mentions gave three blocks and
    no score above 0.39). A map other than the first candidate (the simplest) is taken only
    where its log loss is lower by more than one standard error of the per-mention
    difference (the one-standard-error rule): at 1,019 mentions ukwiki's whole-dump model
    took isotonic over Platt by 0.00001, and its tasks at 0.7 halved with the flip. Among
    those that clear the margin, the lowest loss. Returns (method, map fitted on every
    mention, the chosen method's out-of-fold calibrated scores, each candidate's
    cross-validated log loss).
    """
    score = np.asarray(score, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64)
    fold = np.asarray(fold)
    unknown = [c for c in candidates if c not in METHODS]
    if unknown or not candidates:
        raise ValueError(f"unknown calibration method(s) {unknown} (one of: {sorted(METHODS)})")
    names = list(dict.fromkeys(candidates))
    if len(score) >= ISOTONIC_MIN_MENTIONS and "isotonic" not in names:
        names.append("isotonic")
    cross: dict[str, np.ndarray] = {}
    each: dict[str, np.ndarray] = {}  # each mention's out-of-fold log loss, per method
    losses: dict[str, float] = {}
    for name in names:
        cross[name] = np.zeros(len(score))
        for f in range(folds):
            held = fold == f
            if held.any():
                cross[name][held] = METHODS[name](score[~held], label[~held])(score[held])
        each[name] = _log_losses(cross[name], label)
        losses[name] = float(each[name].mean()) if len(score) else math.nan
    simplest = each[names[0]]

    def clears(name: str) -> bool:
        d = each[name] - simplest
        return len(d) > 1 and float(d.mean()) < -float(d.std(ddof=1)) / math.sqrt(len(d))

    better = [name for name in names[1:] if clears(name)]
    method = min(better, key=lambda name: (losses[name], names.index(name))) if better \
        else names[0]
    rounded = {name: round(loss, 6) for name, loss in losses.items()}
    return method, METHODS[method](score, label), cross[method], rounded


def ece(scores, labels, bins: int = BINS) -> float:
    """Expected calibration error over equal-width bins: mean |score - share right|, weighted."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if len(s) == 0:
        return math.nan
    index = np.minimum((s * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = index == b
        if m.any():
            total += m.sum() * abs(s[m].mean() - y[m].mean())
    return float(total / len(s))


def _log_losses(scores, labels) -> np.ndarray:
    """Each mention's log loss (``log_loss`` is their mean)."""
    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1 - 1e-6)
    y = np.asarray(labels, dtype=np.float64)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def log_loss(scores, labels) -> float:
    if len(scores) == 0:
        return math.nan
    return float(_log_losses(scores, labels).mean())

"""Features of one (mention, candidate target) pair; training and recommending share them.

``reference`` is the reference system's six features (SPEC §2). ``full`` adds what the
reference leaves out: how often the anchor text is a link at all (link probability), the
target's share of the anchor (prior), its rank, its popularity, and surface cues of the
mention. Backtests compare the two (``python -m model backtest --features reference``).
"""

from __future__ import annotations

import math

import Levenshtein
import numpy as np

from model.datasets import Anchor

REFERENCE = ("ngram", "freq", "ambiguity", "kurtosis", "similarity", "jaro")
FULL = REFERENCE + (
    "link_prob",
    "prior",
    "rank",
    "log_indegree",
    "capitalized",
    "sentence_start",
    "exact",
    "log_total",
)
FEATURE_SETS = {"reference": REFERENCE, "full": FULL}
TOP_CANDIDATES = 10


def kurtosis(counts: list[int]) -> float:
    """Excess kurtosis of an anchor's target counts; 0 where it is undefined."""
    if len(counts) < 2:
        return 0.0
    x = np.asarray(counts, dtype=float)
    var = x.var()
    if var == 0:
        return 0.0
    return float(((x - x.mean()) ** 4).mean() / var**2 - 3.0)


def pair_features(
    feature_set: str,
    *,
    mention: str,
    length: int,
    anchor: Anchor,
    rank: int,
    target: str,
    count: int,
    similarity: float,
    indegree: int,
    sentence_start: bool,
) -> list[float]:
    """One feature row, in the order of ``FEATURE_SETS[feature_set]``."""
    row = [
        float(length),
        float(count),
        float(len(anchor.targets)),
        anchor.kurtosis,
        similarity,
        Levenshtein.jaro(mention.lower(), target.lower()),
    ]
    if feature_set == "reference":
        return row
    return row + [
        anchor.link_prob,
        count / anchor.total if anchor.total else 0.0,
        float(rank),
        math.log1p(indegree),
        1.0 if mention[:1].isupper() else 0.0,
        1.0 if sentence_start else 0.0,
        1.0 if mention.lower() == target.lower() else 0.0,
        math.log1p(anchor.total),
    ]


def unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def cosine(context: np.ndarray | None, vector: np.ndarray | None) -> float:
    """Similarity of the page's link context and a target; NaN (missing) when unknown."""
    if context is None or vector is None:
        return math.nan
    n = float(np.linalg.norm(context))
    return float(np.dot(context, vector) / n) if n > 0 else math.nan

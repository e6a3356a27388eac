"""Features of one (mention, candidate target) pair; training and recommending share them.

``reference`` is the reference system's six features (SPEC §2). ``full`` adds what the
reference leaves out: how often the anchor text is a link at all (link probability), the
target's share of the anchor (prior), its rank, its popularity, and surface cues of the
mention. Backtests compare the two (``python -m model backtest --features reference``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import Levenshtein
import numpy as np

if TYPE_CHECKING:  # annotations only: model.datasets imports this module's feature sets
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
    "trail",
    "trail_share",
    "aligned",
    # Where the candidate came from and how much evidence it has (titles are candidates
    # even where nobody linked the text): the text is the target's title / a redirect title
    # of it, and how many pages show the text unlinked.
    "is_title",
    "is_redirect",
    "log_unlinked",
    # Found by its stem key (an inflected form of a known anchor, ``model.stems``): the
    # anchor's statistics are then those of the whole stem class.
    "stem",
    # Its trail is no ending the wiki's editors were seen to let trail (``Mention.guessed``).
    "guessed_trail",
)
FEATURE_SETS = {"reference": REFERENCE, "full": FULL}
TOP_CANDIDATES = 10


def ablated_columns(feature_set: str, names: Iterable[str]) -> list[int]:
    """Columns of the named features, which an ablation sets to NaN (missing for xgboost).

    Missing rather than removed, so a model without a feature keeps the row layout every
    caller builds; training and recommending both mask the same columns (the manifest's
    ``ablate``). A ValueError names an unknown feature.
    """
    columns = FEATURE_SETS[feature_set]
    out = []
    for name in names:
        if name not in columns:
            raise ValueError(
                f"unknown feature {name!r} for --features {feature_set} "
                f"(one of: {', '.join(columns)})"
            )
        out.append(columns.index(name))
    return out


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
    trail: int = 0,
    aligned: bool = True,
    stem: bool = False,
    guessed: bool = False,
) -> list[float]:
    """One feature row, in the order of ``FEATURE_SETS[feature_set]``.

    ``trail``: characters of the mention's last word left to a link trail (0: whole words);
    the share says how much of that word the stem is, so "Лондон|і" (a case ending) and
    "Лондон|ський" (another word) look different to the classifier. ``aligned``: the mention
    starts and ends where the word tokenizer cuts (always, outside no-space scripts).
    """
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
        float(trail),
        trail / (trail + len(mention.rsplit(" ", 1)[-1])) if trail else 0.0,
        1.0 if aligned else 0.0,
        1.0 if target in anchor.titles else 0.0,
        1.0 if target in anchor.redirects else 0.0,
        math.log1p(anchor.unlinked),
        1.0 if stem else 0.0,
        1.0 if guessed else 0.0,
    ]


def cosine(context: np.ndarray | None, vector: np.ndarray | None) -> float:
    """Similarity of the page's link context and a target; NaN (missing) when unknown."""
    if context is None or vector is None:
        return math.nan
    n = float(np.linalg.norm(context))
    return float(np.dot(context, vector) / n) if n > 0 else math.nan


def candidate_rows(
    feature_set: str,
    *,
    mention: str,
    length: int,
    anchor: Anchor,
    sentence_start: bool,
    context: np.ndarray | None,
    entities: Mapping[str, tuple[int, int]],
    vectors: np.ndarray,
    trail: int = 0,
    aligned: bool = True,
    stem: bool = False,
    guessed: bool = False,
) -> Iterator[tuple[str, list[float]]]:
    """(target, features) for each of the anchor's top candidates: one mention's rows.

    Training and recommending both build their rows here, so they cannot drift apart.
    """
    for rank, (target, count) in enumerate(anchor.targets[:TOP_CANDIDATES]):
        row, indegree = entities.get(target, (None, 0))
        yield (
            target,
            pair_features(
                feature_set,
                mention=mention,
                length=length,
                anchor=anchor,
                rank=rank,
                target=target,
                count=count,
                similarity=cosine(context, None if row is None else np.asarray(vectors[row])),
                indegree=indegree,
                sentence_start=sentence_start,
                trail=trail,
                aligned=aligned,
                stem=stem,
                guessed=guessed,
            ),
        )

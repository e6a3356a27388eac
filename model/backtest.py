"""Backtest (SPEC §2's protocol, split by article): how well removed links are found again.

Articles are split 50/50 by a seeded hash of the title; the model is built from the train
half only (anchors, vectors, classifier), so no test article was seen in training. For each
test article, its first sentence made only of text and links is stripped of its links and
given to the recommender, with the article's other links as the page context.

Besides precision/recall per threshold, the backtest judges candidate generation and the
classifier apart: the *candidate ceiling* says, gold link by gold link, whether the
generator could produce it at all and where it was lost if not; recall at precision >= 0.8
and the calibration (expected calibration error, reliability bins) judge the scores.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

# wilson is re-exported: tests and benchmarks import it from here.
from model.calibration import TARGET_PRECISION, Z95, wilson  # noqa: F401
from model.datasets import Model, open_model
from model.features import TOP_CANDIDATES
from model.recommend import Traced, score, select
from model.text import link_end, normalize
from model.train import Corpus, Settings, build_model, extract

THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(10))
SWEEP = tuple(round(0.01 * i, 2) for i in range(101))  # select() is cheap: sweep finely
BINS = 10  # equal-width calibration bins over [0, 1]
# Where a gold (anchor, target) pair is lost, in the order the generator meets the causes.
LOSSES = (
    "anchor_unknown",  # the normalized anchor text is not in the anchor dictionary
    "target_not_candidate",  # known anchor, but the gold target is not a top candidate
    "mention_not_generated",  # no generated mention has that text (link trail, cut, ...)
    "skipped_in_link_anchor",  # SPEC §2: inside the anchor text of a link on the page
    "skipped_in_title",  # SPEC §2: part of the page's title
    "skipped_target_linked",  # SPEC §2: a candidate target is already linked
)


@dataclass(frozen=True)
class Row:
    threshold: float
    precision: float
    precision_ci: tuple[float, float]  # 95 % Wilson interval
    recall: float
    f1: float
    predicted: int
    correct: int
    expected: int


def in_test_half(title: str, seed: int) -> bool:
    return hashlib.sha256(f"{seed}:{title}".encode()).digest()[0] % 2 == 1


def calibration(pairs: Iterable[tuple[float, bool]], bins: int = BINS) -> dict:
    """Expected calibration error and reliability bins of (score, correct) pairs.

    Equal-width bins over [0, 1] (a score of 1.0 falls in the last one); ECE is the
    count-weighted mean gap between a bin's mean score and its share correct. The bins keep
    their sums, so results of several wikis can be pooled exactly (``pool_calibration``).
    """
    counts, scores, hits = [0] * bins, [0.0] * bins, [0] * bins
    for s, ok in pairs:
        b = min(int(s * bins), bins - 1)
        counts[b] += 1
        scores[b] += s
        hits[b] += bool(ok)
    return _calibration_summary(counts, scores, hits)


def _calibration_summary(counts: Sequence[int], scores: Sequence[float], hits: Sequence[int]):
    bins = len(counts)
    n = sum(counts)
    out_bins = []
    ece = 0.0
    for b in range(bins):
        c = counts[b]
        mean = scores[b] / c if c else None
        accuracy = hits[b] / c if c else None
        if c:
            ece += c / n * abs(accuracy - mean)
        out_bins.append(
            {
                "low": round(b / bins, 4),
                "high": round((b + 1) / bins, 4),
                "count": c,
                "score_sum": round(scores[b], 6),
                "correct": hits[b],
                "mean_score": None if mean is None else round(mean, 4),
                "accuracy": None if accuracy is None else round(accuracy, 4),
                "accuracy_ci": wilson(hits[b], c) if c else None,
            }
        )
    return {"predictions": n, "ece": round(ece, 4) if n else None, "bins": out_bins}


def pool_calibration(results: Iterable[dict]) -> dict:
    """One calibration over several backtests' predictions (e.g. the small dumps together)."""
    bins = None
    for r in results:
        got = r["calibration"]["bins"]
        if bins is None:
            bins = [[0, 0.0, 0] for _ in got]
        for acc, b in zip(bins, got, strict=True):
            acc[0] += b["count"]
            acc[1] += b["score_sum"]
            acc[2] += b["correct"]
    bins = bins or [[0, 0.0, 0] for _ in range(BINS)]
    return _calibration_summary(*zip(*bins, strict=True))


def rendered(text: str, start: int, end: int, trail: str | None) -> str:
    """The normalized text a link from ``start`` to ``end`` shows as, its trail included.

    ``[[नाझी पक्ष]]ात`` and ``[[नाझी पक्ष|नाझी पक्षात]]`` are the same linked word for a
    reader: the backtest compares links by this text, so a suggestion written as a trail
    counts for an editor's piped link and the other way round.
    """
    return normalize(text[start : link_end(text, end, trail)])


def gold_links(text: str, links: Iterable, trail: str | None) -> dict[tuple[str, str], str]:
    """(rendered text, target) of each link of a probe -> its own link text's key.

    Without a ``trail`` the rendered text is the link text (the legacy comparison).
    """
    return {(rendered(text, a, b, trail), t): normalize(text[a:b]) for a, b, t in links}


def ceiling_losses(
    model: Model,
    gold: Mapping[tuple[str, str], str],
    trace: Sequence[Traced],
    text: str,
) -> Counter:
    """Each gold (rendered text, target) pair: reachable, or the stage that lost it.

    ``gold`` maps each pair to its link text's key (``gold_links``, as ``probes`` yields
    it); ``text`` is the probe the trace offsets point into. Matched by the rendered text
    (``rendered``, with the model's link trail), exactly as the backtest counts a suggestion
    correct, so the reachable share bounds recall at threshold 0 from above: reachable means
    a generated mention showing that text was scored (no skip rule) with that target among
    its candidates. The anchor is the link text's exact key or, where the dictionary lacks
    it, its stem class (``model.stems``), as the recommender looks them up.
    """
    keys = sorted(set(gold.values()))
    anchors = model.anchors(keys)
    classes = model.stem_keys(k for k in keys if k not in anchors)
    found = model.anchors(classes.values())
    for key, c in classes.items():
        if c in found:
            anchors[key] = found[c]
    # Every generated mention showing a text: several may (the word "ভারতীয়" as an anchor of
    # its own, and [[ভারত]]ীয় as a trail form), and the pair is reachable if any one of them
    # was scored with that target (the first one alone was looked at until docs/model.md's
    # "Guessed trails").
    generated: dict[str, list[Traced]] = {}
    trail = model.trail
    for t in trace:
        shown = rendered(text, t.start, t.end, trail) if trail else t.key
        generated.setdefault(shown, []).append(t)
    out: Counter = Counter()
    for key, target in gold:
        anchor = anchors.get(gold[(key, target)])
        found = generated.get(key, [])
        scored = [g for g in found if g.skip is None]
        if any(target in g.targets for g in scored):
            out["reachable"] += 1
        elif anchor is None:
            out["anchor_unknown"] += 1
        elif target not in {t for t, _ in anchor.targets[:TOP_CANDIDATES]}:
            out["target_not_candidate"] += 1
        elif not found:
            out["mention_not_generated"] += 1
        elif not scored:
            out[f"skipped_{found[0].skip}"] += 1
        else:  # generated from another anchor (its stem class) without this target
            out["target_not_candidate"] += 1
    return out


def probes(
    corpus: Corpus, test: set[str], trail: str | None = None
) -> Iterator[tuple[dict, str, dict[tuple[str, str], str], list[str]]]:
    """(record, probe sentence, gold, context links) per test article.

    The probe is the article's first sentence made only of text and links; its links are
    the gold, the article's other links the page context. ``gold`` maps each (text, target)
    pair to its link text's key (``gold_links``): with the model's link ``trail`` the texts
    are the links' rendered texts (``rendered``), else their link texts.
    """
    for record in corpus.records(test):
        probe = next((x for x in record["x"] if x[1]), None)
        if probe is None:
            continue
        text, links = probe
        gold = gold_links(text, links, trail)
        gold_targets = {t for _, t in gold}
        yield record, text, gold, [t for t, _ in record["l"] if t not in gold_targets]


def backtest(dump: str | Path, settings: Settings | None = None, limit: int = 15) -> dict:
    """Precision/recall per threshold for one dump, as a JSON-ready dict."""
    with tempfile.TemporaryDirectory(prefix="addlink-backtest-") as work:
        return evaluate(extract(dump, Path(work)), settings or Settings(), limit)


def _row(threshold: float, predicted: int, correct: int, expected: int) -> Row:
    precision = correct / predicted if predicted else 0.0
    recall = correct / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Row(
        threshold,
        round(precision, 4),
        wilson(correct, predicted),
        round(recall, 4),
        round(f1, 4),
        predicted,
        correct,
        expected,
    )


def recall_at_precision(sweep: Sequence[Row], target: float = TARGET_PRECISION) -> dict | None:
    """The most recall of any swept threshold whose precision is >= target; None: never."""
    ok = [r for r in sweep if r.predicted and r.correct / r.predicted >= target]
    if not ok:
        return None
    best = max(ok, key=lambda r: (r.recall, -r.threshold))
    return asdict(best)


def evaluate(corpus: Corpus, settings: Settings, limit: int = 15) -> dict:
    """Build a model from the train half of an extracted corpus and test it on the other."""
    with tempfile.TemporaryDirectory(prefix="addlink-backtest-") as work:
        test = {t for t in corpus.articles if in_test_half(t, settings.seed)}
        train = set(corpus.articles) - test
        manifest = build_model(corpus, Path(work) / "model", settings, include=train)
        model = open_model(Path(work) / "model")
        counts = {t: [0, 0] for t in SWEEP}  # predicted, correct
        expected = 0
        losses: Counter = Counter()
        best_candidates: list[tuple[float, bool]] = []
        sentences = 0
        trail = model.trail
        for record, text, gold, context in probes(corpus, test, trail):
            trace: list[Traced] = []
            _, scored = score(model, text, title=record["t"], extra_links=context, trace=trace)
            sentences += 1
            expected += len(gold)
            losses.update(ceiling_losses(model, gold, trace, text))
            shown = {id(s): rendered(text, s.start, s.end, trail) for s in scored}
            for s in select(scored, 0.0, limit):
                best_candidates.append((s.score, (shown[id(s)], s.target) in gold))
            for threshold in SWEEP:
                found = {(shown[id(s)], s.target) for s in select(scored, threshold, limit)}
                row = counts[threshold]
                row[0] += len(found)
                row[1] += len(found & gold.keys())
        model.close()
    sweep = [_row(t, p, c, expected) for t, (p, c) in counts.items()]
    by_threshold = {r.threshold: r for r in sweep}
    rows = [by_threshold[t] for t in THRESHOLDS]
    reachable = losses["reachable"]
    return {
        "wiki": manifest["wiki"],
        "features": settings.features,
        "ablate": list(settings.ablate),
        "seed": settings.seed,
        "complete": manifest["complete"],
        "train_articles": len(train),
        "test_sentences": sentences,
        "anchors": manifest["counts"]["anchors"],
        "ceiling": {
            "expected": expected,
            "reachable": reachable,
            "share": round(reachable / expected, 4) if expected else 0.0,
            "losses": {k: losses[k] for k in LOSSES},
        },
        "recall_at_p80": recall_at_precision(sweep),
        "best_f1": asdict(max(sweep, key=lambda r: (r.f1, -r.threshold))),
        "calibration": calibration(best_candidates),
        "rows": [asdict(r) for r in rows],
        "sweep": [[r.threshold, r.predicted, r.correct] for r in sweep],
    }


def table(result: dict) -> str:
    ablated = f", without {', '.join(result['ablate'])}" if result.get("ablate") else ""
    lines = [
        f"{result['wiki']} ({result['features']} features{ablated}, {result['test_sentences']} "
        f"test sentences, {result['train_articles']} train articles, seed {result['seed']})",
        "threshold  precision  95% CI         recall     f1  predicted  correct  expected",
    ]
    for r in result["rows"]:
        lo, hi = r["precision_ci"]
        lines.append(
            f"{r['threshold']:9.1f}  {r['precision']:9.3f}  [{lo:.3f}, {hi:.3f}]  "
            f"{r['recall']:6.3f}  {r['f1']:5.3f}  {r['predicted']:9d}  {r['correct']:7d}"
            f"  {r['expected']:8d}"
        )
    c = result["ceiling"]
    lines.append(
        f"candidate ceiling: {c['reachable']} of {c['expected']} gold links reachable "
        f"({c['share']:.3f}); lost: "
        + ", ".join(f"{k} {v} ({v / c['expected']:.3f})" for k, v in c["losses"].items() if v)
        if c["expected"]
        else "candidate ceiling: no gold links"
    )
    r80 = result["recall_at_p80"]
    lines.append(
        f"recall at precision >= {TARGET_PRECISION}: "
        + (
            f"{r80['recall']:.3f} at threshold {r80['threshold']:.2f} (precision "
            f"{r80['precision']:.3f} [{r80['precision_ci'][0]:.3f}, "
            f"{r80['precision_ci'][1]:.3f}], {r80['predicted']} predicted)"
            if r80
            else "never reaches 0.8"
        )
    )
    cal = result["calibration"]
    ece = "n/a" if cal["ece"] is None else f"{cal['ece']:.3f}"
    lines.append(f"expected calibration error: {ece} over {cal['predictions']} best candidates")
    lines.append("reliability: bin  count  mean score  share correct")
    for b in cal["bins"]:
        if b["count"]:
            lines.append(
                f"  [{b['low']:.1f}, {b['high']:.1f})  {b['count']:5d}  {b['mean_score']:10.3f}"
                f"  {b['accuracy']:13.3f}"
            )
    return "\n".join(lines)


def plot(result: dict, path: str | Path) -> None:
    """Precision/recall/F1 against the threshold, and the reliability curve beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    expected = result["ceiling"]["expected"]
    xs, ps, rs, fs = [], [], [], []
    for t, predicted, correct in result["sweep"]:
        r = _row(t, predicted, correct, expected)
        if predicted:
            xs.append(t)
            ps.append(r.precision)
            rs.append(r.recall)
            fs.append(r.f1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.plot(xs, ps, label="precision")
    left.plot(xs, rs, label="recall")
    left.plot(xs, fs, linestyle="--", label="F1")
    left.axhline(TARGET_PRECISION, color="grey", linewidth=0.8, linestyle=":")
    left.axhline(result["ceiling"]["share"], color="black", linewidth=0.8, linestyle="-.",
                 label="candidate ceiling")
    left.set_xlabel("threshold (minimum score)")
    left.set_ylabel("precision / recall / F1")
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.set_title("precision and recall by threshold")
    left.grid(alpha=0.3)
    left.legend(loc="center right", fontsize="small")

    cal = result["calibration"]
    used = [b for b in cal["bins"] if b["count"]]
    right.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    right.plot([b["mean_score"] for b in used], [b["accuracy"] for b in used], marker="o",
               label="observed")
    for b in used:
        lo, hi = b["accuracy_ci"]
        right.vlines(b["mean_score"], lo, hi, color="C0", alpha=0.35)
        right.annotate(str(b["count"]), (b["mean_score"], b["accuracy"]), fontsize=7,
                       textcoords="offset points", xytext=(4, -10))
    ece = "n/a" if cal["ece"] is None else f"{cal['ece']:.3f}"
    right.set_xlabel("score of the best candidate (bin mean)")
    right.set_ylabel("share correct (95% CI)")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1)
    right.set_title(f"reliability (ECE {ece}, n = {cal['predictions']})")
    right.grid(alpha=0.3)
    right.legend(loc="upper left", fontsize="small")
    ablated = f" without {', '.join(result['ablate'])}" if result.get("ablate") else ""
    fig.suptitle(
        f"{result['wiki']} backtest ({result['features']} features{ablated}, "
        f"{result['test_sentences']} test sentences, seed {result['seed']})"
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

"""Backtest (SPEC §2's protocol, split by article): how well removed links are found again.

Articles are split 50/50 by a seeded hash of the title; the model is built from the train
half only (anchors, vectors, classifier), so no test article was seen in training. For each
test article, its first sentence made only of text and links is stripped of its links and
given to the recommender, with the article's other links as the page context.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from model.datasets import open_model
from model.recommend import score, select
from model.text import normalize
from model.train import Corpus, Settings, build_model, extract

THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(10))


@dataclass(frozen=True)
class Row:
    threshold: float
    precision: float
    recall: float
    f1: float
    predicted: int
    correct: int
    expected: int


def in_test_half(title: str, seed: int) -> bool:
    return hashlib.sha256(f"{seed}:{title}".encode()).digest()[0] % 2 == 1


def probes(corpus: Corpus, test: set[str]) -> Iterator[tuple[dict, str, set, list[str]]]:
    """(record, probe sentence, gold (anchor key, target) pairs, context links) per test article.

    The probe is the article's first sentence made only of text and links; its links are
    the gold, the article's other links the page context.
    """
    for record in corpus.records(test):
        probe = next((x for x in record["x"] if x[1]), None)
        if probe is None:
            continue
        text, gold_links = probe
        gold = {(normalize(text[a:b]), t) for a, b, t in gold_links}
        gold_targets = {t for _, t in gold}
        yield record, text, gold, [t for t, _ in record["l"] if t not in gold_targets]


def backtest(dump: str | Path, settings: Settings | None = None, limit: int = 15) -> dict:
    """Precision/recall/F1 per threshold for one dump, as a JSON-ready dict."""
    with tempfile.TemporaryDirectory(prefix="addlink-backtest-") as work:
        return evaluate(extract(dump, Path(work)), settings or Settings(), limit)


def evaluate(corpus: Corpus, settings: Settings, limit: int = 15) -> dict:
    """Build a model from the train half of an extracted corpus and test it on the other."""
    with tempfile.TemporaryDirectory(prefix="addlink-backtest-") as work:
        test = {t for t in corpus.articles if in_test_half(t, settings.seed)}
        train = set(corpus.articles) - test
        manifest = build_model(corpus, Path(work) / "model", settings, include=train)
        model = open_model(Path(work) / "model")
        counts = {t: [0, 0, 0] for t in THRESHOLDS}  # predicted, correct, expected
        sentences = 0
        for record, text, gold, context in probes(corpus, test):
            _, scored = score(model, text, title=record["t"], extra_links=context)
            sentences += 1
            for threshold in THRESHOLDS:
                found = {(normalize(s.text), s.target) for s in select(scored, threshold, limit)}
                row = counts[threshold]
                row[0] += len(found)
                row[1] += len(found & gold)
                row[2] += len(gold)
        model.close()
    rows = []
    for threshold, (predicted, correct, expected) in counts.items():
        precision = correct / predicted if predicted else 0.0
        recall = correct / expected if expected else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            Row(
                threshold,
                round(precision, 4),
                round(recall, 4),
                round(f1, 4),
                predicted,
                correct,
                expected,
            )
        )
    return {
        "wiki": manifest["wiki"],
        "features": settings.features,
        "complete": manifest["complete"],
        "train_articles": len(train),
        "test_sentences": sentences,
        "anchors": manifest["counts"]["anchors"],
        "rows": [asdict(r) for r in rows],
    }


def table(result: dict) -> str:
    lines = [
        f"{result['wiki']} ({result['features']} features, {result['test_sentences']} test "
        f"sentences, {result['train_articles']} train articles)",
        "threshold  precision  recall     f1  predicted  correct  expected",
    ]
    for r in result["rows"]:
        lines.append(
            f"{r['threshold']:9.1f}  {r['precision']:9.3f}  {r['recall']:6.3f}  {r['f1']:5.3f}"
            f"  {r['predicted']:9d}  {r['correct']:7d}  {r['expected']:8d}"
        )
    return "\n".join(lines)


def plot(result: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["threshold"] for r in result["rows"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [r["precision"] for r in result["rows"]], marker="o", label="precision")
    ax.plot(xs, [r["recall"] for r in result["rows"]], marker="s", label="recall")
    ax.plot(xs, [r["f1"] for r in result["rows"]], linestyle="--", label="F1")
    ax.set_xlabel("threshold")
    ax.set_ylim(0, 1)
    ax.set_title(f"{result['wiki']} backtest ({result['features']} features)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

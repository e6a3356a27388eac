"""The candidate ceiling at the mention level, with F1, for every shared dump (full features).

    .venv/bin/python benchmarks/mention_ceiling.py [--dumps DIR] [--json OUT] [--no-trails]
        [--stemmer auto|snowball|learnt|none]

Same split and probe sentences as ``model.backtest`` (seed 1). For each removed gold link
(anchor text, target) of a test sentence it counts whether the train-half model knows the
anchor text with that target among its top candidates (``known``), and whether the
recommender scores a mention with that text and that target among its candidates
(``generated``: after SPEC §2's skip rules, before the classifier). Stem and trail
mentions count like any other: a ``[[Лондон]]і`` gold link is the text "Лондон". With stems
(``--stemmer``, model/stems.py) an anchor text the dictionary lacks is known through its
stem class, as the recommender looks it up.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.backtest import THRESHOLDS, in_test_half, probes  # noqa: E402
from model.datasets import open_model  # noqa: E402
from model.features import TOP_CANDIDATES  # noqa: E402
from model.recommend import score, select  # noqa: E402
from model.text import normalize  # noqa: E402
from model.train import Settings, build_model, extract  # noqa: E402

DEFAULT_DUMPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "dumps"


def measure(dump: Path, settings: Settings) -> dict:
    with tempfile.TemporaryDirectory() as work:
        corpus = extract(dump, Path(work))
        test = {t for t in corpus.articles if in_test_half(t, settings.seed)}
        train = set(corpus.articles) - test
        manifest = build_model(corpus, Path(work) / "model", settings, include=train)
        model = open_model(Path(work) / "model")
        gold_total = known = generated = 0
        counts = {t: [0, 0] for t in THRESHOLDS}  # predicted, correct
        for record, text, gold, context in probes(corpus, test):
            _, scored = score(model, text, title=record["t"], extra_links=context)
            anchors = model.anchors({k for k, _ in gold})
            classes = model.stem_keys(k for k, _ in gold if k not in anchors)
            found = model.anchors(classes.values())
            anchors.update({k: found[c] for k, c in classes.items() if c in found})
            candidates = {(normalize(s.text), t) for s in scored for t in s.targets}
            for k, t in gold:
                gold_total += 1
                a = anchors.get(k)
                known += a is not None and t in {x for x, _ in a.targets[:TOP_CANDIDATES]}
                generated += (k, t) in candidates
            for threshold in THRESHOLDS:
                found = {(normalize(s.text), s.target) for s in select(scored, threshold, 15)}
                counts[threshold][0] += len(found)
                counts[threshold][1] += len(found & gold.keys())
        model.close()
    rows = {}
    for threshold, (predicted, correct) in counts.items():
        p = correct / predicted if predicted else 0.0
        r = correct / gold_total if gold_total else 0.0
        rows[threshold] = (p, r, 2 * p * r / (p + r) if p + r else 0.0)
    best = max(rows, key=lambda t: rows[t][2])
    return {
        "wiki": manifest["wiki"],
        "gold": gold_total,
        "known": round(known / gold_total, 4),
        "generated": round(generated / gold_total, 4),
        "p@0.5": round(rows[0.5][0], 4),
        "r@0.5": round(rows[0.5][1], 4),
        "f1@0.5": round(rows[0.5][2], 4),
        "best_f1": round(rows[best][2], 4),
        "best_threshold": best,
        "training_pairs": manifest["counts"]["training_pairs"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dumps", type=Path, default=DEFAULT_DUMPS)
    p.add_argument("--json", type=Path)
    p.add_argument("--only", help="substring of the dump file names to run")
    p.add_argument("--no-trails", action="store_true", help="ablation: models without trails")
    p.add_argument("--stemmer", default="auto", help="auto (default), snowball, learnt or none")
    args = p.parse_args()
    if args.no_trails:
        import model.train

        model.train.link_trail = lambda language: None
    results = []
    print("| wiki | gold links | known anchor | generated | P@0.5 | R@0.5 | F1@0.5 | best F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for dump in sorted(args.dumps.glob("*.xml*")):
        if args.only and args.only not in dump.name:
            continue
        start = time.monotonic()
        r = measure(dump, Settings(stemmer=args.stemmer))
        r["seconds"] = round(time.monotonic() - start, 1)
        results.append(r)
        cells = [
            r["wiki"],
            r["gold"],
            f"{r['known']:.3f}",
            f"{r['generated']:.3f}",
            f"{r['p@0.5']:.3f}",
            f"{r['r@0.5']:.3f}",
            f"{r['f1@0.5']:.3f}",
            f"{r['best_f1']:.3f} ({r['best_threshold']})",
        ]
        print("| " + " | ".join(map(str, cells)) + " |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

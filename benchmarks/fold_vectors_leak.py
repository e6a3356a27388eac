"""How much of a fold's own links its entity vectors still carry, per way of building them.

    nice -n 5 .venv/bin/python benchmarks/fold_vectors_leak.py [--only ltgwiki] [--json OUT]

For every fold article p with at least 3 linked targets in the fold's entities and each of
its first 5 targets t: the cosine of p's context (the sum of the vectors of its other
targets, as training's ``page_pairs`` builds it) with t's vector, averaged ("pos"), and with
a random node's ("neg"), over the 5 folds (seed 1). Vectors compared:

- ``fold svd power 20``: the graph less the fold's links decomposed to convergence: no link
  of the fold in it, the reference;
- ``fold svd power 2``: the same with training's 2 power iterations (``Settings.fold_vectors
  = "svd"``);
- ``projection``: that graph times the whole graph's basis (``project_fold``, the default);
- ``whole``: the whole graph's vectors, the fold's links in them (what cross-fitting avoids).

A projection that carried the fold's links would sit near ``whole``; one that carries none,
near the converged fold SVD.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backtest_all import chosen_dumps, dump_options, write_results  # noqa: E402 - benchmarks/, sys.path[0]

from model.train import (  # noqa: E402
    _directed,
    _Symmetric,
    _unit_rows,
    embed,
    extract,
    fold_of,
    link_graph,
    project_fold,
    top_singular,
)


def similarities(graph, own, entities, vectors, rng) -> tuple[list[float], list[float]]:
    pos, neg = [], []
    for p in sorted(own):
        targets = [t for t in graph[p] if t in entities and t != p]
        if len(targets) < 3:
            continue
        for t in targets[:5]:
            context = sum(vectors[entities[o][0]] for o in targets if o != t)
            norm = np.linalg.norm(context)
            v = vectors[entities[t][0]]
            if norm == 0 or not v.any():
                continue
            pos.append(float(context @ v / norm))
            neg.append(float(context @ vectors[rng.integers(len(vectors))] / norm))
    return pos, neg


def measure(dump: Path) -> dict:
    with tempfile.TemporaryDirectory() as work:
        corpus = extract(dump, Path(work))
        graph = link_graph(corpus, None)
        n = len(graph.nodes)
        whole_entities, whole_vectors, embedding = embed(graph, 1)
        rng = np.random.default_rng(0)
        found: dict[str, list] = {}
        for f in range(5):
            own = {t for t in graph if fold_of(t, 1) == f}
            entities, projected = project_fold(embedding, own)
            fold = _Symmetric(_directed(graph, graph.kept(own), None, n))
            methods = {"projection": (entities, projected)}
            for power in (20, 2):
                u, s, _ = top_singular(fold, min(50, n - 2), 1, power=power)
                methods[f"fold svd power {power}"] = (entities, _unit_rows(u * s))
            methods["whole"] = (whole_entities, whole_vectors)
            for name, (ents, vecs) in methods.items():
                pos, neg = similarities(graph, own, ents, vecs, rng)
                found.setdefault(name, []).append((sum(pos), sum(neg), len(pos)))
        out = {"wiki": corpus.site.dbname}
        for name, parts in found.items():
            a = np.asarray(parts)
            out[name] = {"pos": round(a[:, 0].sum() / a[:, 2].sum(), 4),
                         "neg": round(a[:, 1].sum() / a[:, 2].sum(), 4),
                         "pairs": int(a[:, 2].sum())}
        return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    dump_options(p)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    results = []
    names = ["fold svd power 20", "fold svd power 2", "projection", "whole"]
    print("| wiki | " + " | ".join(f"{n}: pos / neg" for n in names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for dump in chosen_dumps(args):
        r = measure(dump)
        results.append(r)
        print(f"| {r['wiki']} | " + " | ".join(f"{r[n]['pos']:.3f} / {r[n]['neg']:.3f}"
                                              for n in names) + " |", flush=True)
    if args.json:
        write_results(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

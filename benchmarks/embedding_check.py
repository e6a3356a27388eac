"""Do the entity vectors tell a page's true link targets from the other candidates?

    .venv/bin/python benchmarks/embedding_check.py [--dumps DIR] [--json OUT]

For every shared dump (seed 1, the backtest's split): vectors are built from the train half's
link graph in several ways; for each link of each sentence made of text and links of each
test article whose anchor has at least two candidate targets, the page's context (sum of its
other links' vectors, as the recommender computes it) is compared with (a) the linked target
and (b) the anchor's other candidates. Reported per variant: mean cosine of (a) and of (b),
and the share of (gold, other candidate) pairs where the gold target is closer ("AUC").
0.5 means no signal.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.backtest import in_test_half  # noqa: E402
from model.text import normalize  # noqa: E402
from model.train import (  # noqa: E402
    Settings,
    build_anchors,
    extract,
    link_graph,
    top_singular,
)

DEFAULT_DUMPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "dumps"
VARIANTS = ("sym u*sqrt(s)", "sym u*s", "ppmi u*sqrt(s)", "normalized u*s", "out|in u,v*sqrt(s)")


def embed(graph: dict[str, list[str]], variant: str, seed: int = 1):
    from scipy.sparse import coo_matrix, diags

    index: dict[str, int] = {}
    src, dst = [], []
    for title, targets in graph.items():
        s = index.setdefault(title, len(index))
        for t in targets:
            src.append(s)
            dst.append(index.setdefault(t, len(index)))
    n = len(index)
    a = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)).tocsr()
    sym = (a + a.T).tocsr()
    k = min(50, n - 2)
    if variant == "sym u*sqrt(s)":
        u, s, _ = top_singular(sym, k, seed)
        vec = u * np.sqrt(s)
    elif variant == "sym u*s":
        u, s, _ = top_singular(sym, k, seed)
        vec = u * s
    elif variant == "ppmi u*sqrt(s)":
        total = sym.sum()
        deg = np.asarray(sym.sum(axis=1)).ravel()
        m = sym.tocoo()
        pmi = np.log(m.data * total / (deg[m.row] * deg[m.col]))
        keep = pmi > 0
        p = coo_matrix((pmi[keep], (m.row[keep], m.col[keep])), shape=(n, n)).tocsr()
        u, s, _ = top_singular(p, k, seed)
        vec = u * np.sqrt(s)
    elif variant == "normalized u*s":
        deg = np.asarray(sym.sum(axis=1)).ravel()
        d = diags(1 / np.sqrt(np.maximum(deg, 1)))
        u, s, _ = top_singular((d @ sym @ d).tocsr(), k, seed)
        vec = u * s
    else:  # out-links (left vectors) beside in-links (right vectors), as one vector
        u, s, _ = top_singular(a, k, seed)
        v, _, _ = top_singular(a.T.tocsr(), k, seed)
        vec = np.hstack([u * np.sqrt(s), v * np.sqrt(s)])
    norms = np.linalg.norm(vec, axis=1, keepdims=True)
    vec = np.divide(vec, norms, out=np.zeros_like(vec), where=norms > 0)
    return index, vec


def measure(corpus, variant: str) -> dict:
    test = {t for t in corpus.articles if in_test_half(t, 1)}
    train = set(corpus.articles) - test
    graph = link_graph(corpus, train)
    anchors = build_anchors(corpus, train, Settings(), corpus.resolve_ratio >= 0.25)
    index, vec = embed(graph, variant)
    gold_cos, other_cos, wins, pairs = [], [], 0.0, 0
    for record in corpus.records(test):
        for text, links in record["x"]:
            targets = {t for _, _, t in links}
            rows = [index[t] for t, _ in record["l"] if t not in targets and t in index]
            if not rows or not links:
                continue
            context = vec[rows].sum(axis=0)
            norm = np.linalg.norm(context)
            if norm == 0:
                continue
            context = context / norm
            for a, b, target in links:
                anchor = anchors.get(normalize(text[a:b]))
                if anchor is None or target not in index:
                    continue
                others = [t for t, _ in anchor.targets[:10] if t != target and t in index]
                if not others:
                    continue
                g = float(vec[index[target]] @ context)
                o = [float(vec[index[t]] @ context) for t in others]
                gold_cos.append(g)
                other_cos += o
                wins += sum(1.0 if g > x else 0.5 if g == x else 0.0 for x in o)
                pairs += len(o)
    return {
        "wiki": corpus.site.dbname,
        "variant": variant,
        "links": len(gold_cos),
        "cos_linked": round(float(np.mean(gold_cos)), 3) if gold_cos else None,
        "cos_other": round(float(np.mean(other_cos)), 3) if other_cos else None,
        "auc": round(wins / pairs, 3) if pairs else None,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dumps", type=Path, default=DEFAULT_DUMPS)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    out = []
    print("| wiki | variant | links | cos (a) linked | cos (b) other candidates | AUC |")
    print("|---|---|---|---|---|---|", flush=True)
    for dump in sorted(args.dumps.glob("*.xml*")):
        with tempfile.TemporaryDirectory() as work:
            corpus = extract(dump, Path(work))
            for variant in VARIANTS:
                r = measure(corpus, variant)
                out.append(r)
                cells = [r["wiki"], variant, r["links"], r["cos_linked"], r["cos_other"], r["auc"]]
                print("| " + " | ".join(map(str, cells)) + " |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

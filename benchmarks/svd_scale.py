"""The embedding step at scale: truncated SVD of a link graph far larger than the shared dumps.

    .venv/bin/python benchmarks/svd_scale.py [--nodes 100000 1000000 5000000] [--json OUT]

The graphs are SYNTHETIC (clearly not Wikipedia): a directed graph with a realistic degree
distribution for a wiki's article links, out-degrees drawn from a lognormal (median 12,
mean ~25 links per article, as enwiki's articles have) and targets drawn with preferential
attachment (probability proportional to a Zipf weight, exponent 1, so a few pages get most
in-links), symmetrised as training does (``graph + graph.T``). Each size runs in a child
process so its peak RSS is its own. Two methods, 50 dimensions, seeded:

- ``svds``: scipy's ARPACK ``svds`` (what model/train.py uses today);
- ``randomized``: a randomized range finder with 4 power iterations (Halko, Martinsson and
  Tropp 2011), numpy only: a fixed number of sparse matrix products, each a pass over the
  edges that parallelises, instead of ARPACK's hundreds of matrix-vector products.

Reported per size and method: graph build time, SVD wall and CPU time, peak RSS, and for the
randomized method the relative error of its singular values against ``svds`` (where both ran).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from array import array
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

K = 50
SEED = 1


def _links(n: int, seed: int):
    """(out-degrees, link targets) of the synthetic graph: lognormal out-degrees and
    Zipf-weighted targets, hubs placed anywhere. The one recipe both builders below use, so
    the scipy graph and the training's LinkGraph are the same links."""
    rng = np.random.default_rng(seed)
    out_degree = np.minimum(rng.lognormal(mean=np.log(12), sigma=1.2, size=n), 2000)
    out_degree = out_degree.astype(np.int64)
    weights = 1.0 / np.arange(1, n + 1)
    weights /= weights.sum()
    cdf = np.cumsum(weights)
    del weights
    dst = np.searchsorted(cdf, rng.random(int(out_degree.sum()))).astype(np.int32)
    del cdf
    dst = rng.permutation(n).astype(np.int32)[np.minimum(dst, n - 1)]  # hubs anywhere
    return out_degree, dst


def synthetic_graph(n: int, seed: int = SEED):
    """A symmetrised CSR adjacency of ``n`` nodes (see the module docstring)."""
    from scipy.sparse import coo_matrix

    out_degree, dst = _links(n, seed)
    src = np.repeat(np.arange(n, dtype=np.int32), out_degree)
    keep = src != dst
    graph = coo_matrix((np.ones(int(keep.sum()), dtype=np.float32), (src[keep], dst[keep])),
                       shape=(n, n)).tocsr()
    graph.data[:] = 1.0  # duplicate links count once, as in training
    return (graph + graph.T).tocsr()


class _Names:
    """Node i's title is "i": a sequence of titles and a title -> row map, both computed."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [str(j) for j in range(*i.indices(self.n))]
        return str(i)

    def get(self, title: str, default=None):
        return int(title)

    def values(self):
        return range(self.n)


def synthetic_links(n: int, seed: int = SEED):
    """The graph of ``synthetic_graph`` as training holds it: a ``LinkGraph`` (int32 arrays;
    node i is article "i", linking its distinct targets in id order), built node range by
    node range so no full-size sort or COO copy counts in the peak."""
    from model.train import LinkGraph

    out_degree, dst = _links(n, seed)
    ends = np.cumsum(out_degree)
    graph = LinkGraph()
    # Titles are the numbers themselves, computed when asked: the title tables are not
    # the embedding step's memory (docs/model.md measures them on the training corpus).
    graph.names = _Names(n)
    graph._rows = _Names(n)
    graph._sources = array("i", np.arange(n, dtype=np.int32).tobytes())
    indptr = [np.zeros(1, dtype=np.int64)]
    done = 0
    step = 100_000
    for first in range(0, n, step):
        last = min(first + step, n)
        a, b = (ends[first - 1] if first else 0), ends[last - 1]
        src = np.repeat(np.arange(first, last, dtype=np.int64), out_degree[first:last])
        key = np.unique(src * n + dst[a:b])
        key = key[key // n != key % n]  # no self-links
        graph._indices.extend(array("i", (key % n).astype(np.int32).tobytes()))
        counts = np.bincount((key // n - first).astype(np.int64), minlength=last - first)
        indptr.append(done + np.cumsum(counts))
        done += int(counts.sum())
    graph._indptr = array("q", np.concatenate(indptr).tobytes())
    return graph


def top_singular_before(matrix, k: int, seed: int, power: int = 2, oversample: int = 10):
    """model/train.py's top_singular before the memory work (0dd5a4b and earlier), on the
    matrix its build_vectors made (``synthetic_graph``'s: COO -> CSR, float32, + its
    transpose): the chained expressions kept up to four n x (k + oversample) blocks."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    with threadpool_limits(limits=1):
        q = np.linalg.qr(matrix @ rng.standard_normal((matrix.shape[1], k + oversample)))[0]
        for _ in range(power):
            q = np.linalg.qr(matrix.T @ q)[0]
            q = np.linalg.qr(matrix @ q)[0]
        small, values, _ = np.linalg.svd(np.asarray((matrix.T @ q).T), full_matrices=False)
    return (q @ small)[:, :k], values[:k]


def randomized_svd(graph, k: int, seed: int, power: int = 4, oversample: int = 10):
    """Top-k singular triplets by a randomized range finder (numpy + the sparse product)."""
    rng = np.random.default_rng(seed)
    n = graph.shape[1]
    q = graph @ rng.standard_normal((n, k + oversample)).astype(np.float32)
    for _ in range(power):
        q, _ = np.linalg.qr(q)
        q = graph @ (graph.T @ q)
    q, _ = np.linalg.qr(q)
    small = (graph.T @ q).T  # (k + oversample) x n
    u_small, s, vt = np.linalg.svd(small, full_matrices=False)
    return (q @ u_small)[:, :k], s[:k], vt[:k]


def _run(n: int, method: str, out) -> None:
    start = time.monotonic()
    training = method in ("model", "model+fold")
    graph = synthetic_links(n) if training else synthetic_graph(n)
    built = time.monotonic() - start
    cpu0, wall0 = time.process_time(), time.monotonic()
    extra: dict = {}
    if training:
        # What model/train.py's embed runs: the directed links' CSR (a row per node, float64
        # ones) and the range finder on B + B.T as a product; then, for "model+fold", one
        # cross-fitting fold's vectors by project_fold (a fifth of the articles left out).
        from model.train import Embedding, _directed, _Symmetric, project_fold, top_singular

        links = _directed(graph, graph.kept(), None, n)
        extra["edges_mb"] = round((links.indices.nbytes + links.data.nbytes
                                   + links.indptr.nbytes) / 2**20)
        _, s, v = top_singular(_Symmetric(links), K, SEED)
        extra["svd_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                         / 1024)
        if method == "model+fold":
            fold = graph.names[::5]
            cpu1, wall1 = time.process_time(), time.monotonic()
            project_fold(Embedding(graph, links, np.ascontiguousarray(v)), fold)
            extra["fold_wall_s"] = round(time.monotonic() - wall1, 1)
            extra["fold_cpu_s"] = round(time.process_time() - cpu1, 1)
        edges = graph.edges
    elif method == "svds":
        from scipy.sparse.linalg import svds

        v0 = np.random.default_rng(SEED).uniform(-1, 1, n)
        _, s, _ = svds(graph.astype(np.float64), k=K, v0=v0, random_state=SEED)
        s = np.sort(s)[::-1]
        edges = int(graph.nnz // 2)
    elif method == "model-before":
        _, s = top_singular_before(graph, K, SEED)
        edges = int(graph.nnz // 2)
    else:
        _, s, _ = randomized_svd(graph, K, SEED)
        edges = int(graph.nnz // 2)
    out.put({
        "nodes": n, "method": method, "edges": edges,
        "build_s": round(built, 1),
        "svd_wall_s": round(time.monotonic() - wall0, 1),
        "svd_cpu_s": round(time.process_time() - cpu0, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **extra,
        "singular_values": [float(x) for x in s],
    })


def measure(n: int, method: str, timeout: float) -> dict:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_run, args=(n, method, out))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"nodes": n, "method": method, "error": f"did not finish in {timeout:.0f} s"}
    if proc.exitcode != 0:
        return {"nodes": n, "method": method, "error": f"exit code {proc.exitcode}"}
    return out.get()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nodes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    p.add_argument("--methods", nargs="+", default=["svds", "randomized"])
    p.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    results = []
    print("| nodes | edges | method | build s | SVD wall s | SVD CPU s | peak RSS MB | "
          "max rel. error of s vs svds |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.nodes:
        exact = None
        for method in args.methods:
            r = measure(n, method, args.timeout)
            results.append(r)
            if "error" in r:
                print(f"| {n:,} | | {method} | | {r['error']} | | | |", flush=True)
                continue
            s = np.asarray(r.pop("singular_values"))
            err = ""
            if method == "svds":
                exact = s
            elif exact is not None:
                err = f"{float(np.max(np.abs(s - exact) / exact)):.2e}"
            print(f"| {n:,} | {r['edges']:,} | {method} | {r['build_s']} | {r['svd_wall_s']} | "
                  f"{r['svd_cpu_s']} | {r['peak_rss_mb']:,} | {err} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

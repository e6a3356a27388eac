"""Entity vectors: the link graph's compact form, its SVD and the folds' projected vectors,
checked against matrices built here independently from the real ltgwiki corpus."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix

from model.train import (
    Settings,
    _directed,
    _Symmetric,
    _unit_rows,
    build_vectors,
    embed,
    fold_of,
    link_graph,
    project_fold,
    top_singular,
)


@pytest.fixture(scope="module")
def graph_and_matrix(ltg_corpus):
    """The training's link graph, and the symmetric adjacency built here from the corpus
    records as training built it before (a dict of target lists, COO -> CSR, + transpose)."""
    graph = link_graph(ltg_corpus, None)
    index: dict[str, int] = {}
    src, dst, targets = [], [], {}
    for record in ltg_corpus.records():
        targets[record["t"]] = sorted({t for t, _ in record["l"]})
    for title, found in targets.items():
        s = index.setdefault(title, len(index))
        for t in found:
            src.append(s)
            dst.append(index.setdefault(t, len(index)))
    n = len(index)
    a = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)).tocsr()
    return graph, targets, index, (a + a.T).tocsr()


def test_the_link_graph_reads_as_the_corpus_and_multiplies_as_its_symmetric_matrix(
    graph_and_matrix,
):
    graph, targets, index, matrix = graph_and_matrix
    assert list(graph) == list(targets) and len(graph) == len(targets) > 800
    assert graph.nodes == index
    assert all(graph[t] == found for t, found in targets.items())
    assert graph.edges == sum(len(found) for found in targets.values())
    x = np.random.default_rng(5).standard_normal((len(index), 7))
    product = _Symmetric(_directed(graph, graph.kept(), None, len(index))) @ x
    assert np.abs(product - matrix @ x).max() < 1e-9


def test_vectors_are_the_svd_of_the_symmetric_matrix(graph_and_matrix):
    """Every vector with weight in the leading directions is that of the matrix built the old
    way, to the byte; the rest (rounding noise there) are zero, not random unit vectors."""
    graph, _, index, matrix = graph_and_matrix
    entities, vectors = build_vectors(graph, 1)
    u, s, _ = top_singular(matrix, 50, 1)
    reference = u * s
    norms = np.linalg.norm(reference, axis=1)
    weighty = norms > 1e-9 * norms.max()
    assert weighty.sum() > 0.9 * len(index)
    expected = np.round(reference / np.where(weighty, norms, 1)[:, None], 5).astype(np.float32)
    assert np.array_equal(vectors[weighty], expected[weighty])
    assert not vectors[~weighty].any()
    assert {t: i for t, (i, _) in entities.items()} == index


def test_a_folds_projected_vectors_leave_out_its_own_links(ltg_corpus, graph_and_matrix):
    """Fold f's vectors are the graph less fold f's links (both directions), built here from
    the records, times the whole graph's basis: a fold article's link adds nothing to its
    target's vector, which the whole graph's projection does contain."""
    graph, targets, index, matrix = graph_and_matrix
    settings = Settings()
    _, _, embedding = embed(graph, settings.seed)
    basis = embedding.basis
    whole = _unit_rows(matrix @ basis)
    checked = 0
    for f in range(settings.folds):
        own = {t for t in graph if fold_of(t, settings.seed) == f}
        src, dst = [], []
        for title, found in targets.items():
            if title in own:
                continue
            for t in found:
                src.append(index[title])
                dst.append(index[t])
        n = len(index)
        kept = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)).tocsr()
        expected = _unit_rows((kept + kept.T) @ basis)
        entities, vectors = project_fold(embedding, own)
        # The nodes and in-degrees of the fold's own graph, as its SVD (build_vectors) has them.
        svd_entities, _ = build_vectors(graph, settings.seed, exclude=own)
        assert {t: d for t, (_, d) in entities.items()} == {
            t: d for t, (_, d) in svd_entities.items()
        }
        rows = [i for _, (i, _) in entities.items()]
        assert np.abs(vectors[rows] - expected[rows]).max() <= 2e-5
        for title in sorted(own)[:40]:
            for t in targets[title]:
                if t == title or t not in entities:
                    continue
                row = index[t]
                # t's vector without the fold's links: the fold's own link p -> t is left out.
                assert np.abs(vectors[row] - expected[row]).max() <= 2e-5
                if not np.allclose(whole[row], expected[row], atol=1e-3):
                    checked += 1  # and it matters: with it, t's vector is another
    assert checked > 100

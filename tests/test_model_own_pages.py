"""A page the model was trained on is scored with its statistics and vectors one page out.

A refresh scores the wiki's own articles, all of them in the model's training; the
classifier learnt each article's rows from statistics that left it out (the other folds'),
so the recommender takes the page's own unlinked appearances out of its anchors' counts
(``Anchor.without_page``). Checked against a model really trained without the page.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from model import open_model
from model.datasets import Anchor
from model.dump import pages
from model.recommend import context_vector, score
from model.train import Settings, TrainingError, build_model, embed, link_graph, project_fold
from tests.model_fixtures import LTG_DUMP, OWN_ROWS


def test_one_unlinked_page_less():
    # 4 pages show the text: 1 links it, 3 do not.
    anchor = Anchor("x", (("X", 1),), 1, 0.25, 0.0, unlinked=3)
    out = anchor.without_page()
    assert (out.unlinked, out.link_prob) == (2, round(1 / 3, 6))
    assert out.targets == anchor.targets and out.total == anchor.total
    # Nobody showed it unlinked: nothing of the page's to take out.
    linked = Anchor("y", (("Y", 5),), 5, 1.0, 0.0, unlinked=0)
    assert linked.without_page() is linked
    # A title nobody links, shown unlinked on one page (this one): linked nowhere else.
    title = Anchor("z", (("Z", 0),), 0, 0.0, 0.0, unlinked=1, titles=("Z",))
    assert (title.without_page().unlinked, title.without_page().link_prob) == (0, 0.0)


def _anchors_scored(model, page, monkeypatch) -> dict[str, Anchor]:
    """The anchors ``score`` builds its feature rows from, for the mentions it scores."""
    recommend_module = sys.modules["model.recommend"]
    real = recommend_module.mention_anchors
    used: dict[str, Anchor] = {}

    def watched(found, lookup, texts, trail):
        out = real(found, lookup, texts, trail)
        used.update({key: anchor for key, (_, _, anchor) in out.items()})
        return out

    monkeypatch.setattr(recommend_module, "mention_anchors", watched)
    trace: list = []
    score(model, page.text, title=page.title, trace=trace)
    monkeypatch.undo()
    return {t.key: used[t.key] for t in trace if t.skip is None}


@pytest.fixture(scope="module")
def whole(ltg_corpus, tmp_path_factory):
    """A model of every ltgwiki article, and the two of its 40 longest pages that it scores
    the most mentions of (lists link nearly every name and leave little to score)."""
    out = tmp_path_factory.mktemp("own") / "all"
    build_model(ltg_corpus, out, Settings(seed=1, prior=OWN_ROWS))
    model = open_model(out)
    articles = [p for p in pages(LTG_DUMP) if p.title in ltg_corpus.articles]
    longest = sorted(articles, key=lambda p: (-len(p.text), p.title))[:40]
    scored = {p.title: len(score(model, p.text, title=p.title)[1]) for p in longest}
    model.close()
    return out, sorted(longest, key=lambda p: (-scored[p.title], p.title))[:2]


@pytest.mark.parametrize("rank", [0, 1])
def test_a_trained_page_reads_the_statistics_of_a_model_without_it(
    ltg_corpus, whole, tmp_path, monkeypatch, rank
):
    path, chosen = whole
    page = chosen[rank]
    others = set(ltg_corpus.articles) - {page.title}
    build_model(ltg_corpus, tmp_path / "without", Settings(seed=1, prior=OWN_ROWS),
                include=others)
    with_page, without = open_model(path), open_model(tmp_path / "without")
    try:
        assert with_page.trained_on(page.title)
        assert not without.trained_on(page.title)
        assert all(without.trained_on(t) for t in sorted(others)[:200])
        assert with_page.manifest["trained_pages"]["count"] == len(ltg_corpus.articles)

        seen = _anchors_scored(with_page, page, monkeypatch)
        alone = _anchors_scored(without, page, monkeypatch)
        both = seen.keys() & alone.keys()
        assert len(both) >= 10, "too few scored mentions to compare"
        for key in both:
            a, b = seen[key], alone[key]
            assert (a.unlinked, a.targets, a.total) == (b.unlinked, b.targets, b.total), key
            assert a.link_prob == pytest.approx(b.link_prob, abs=2e-6), key
        # The page did count: read as they are stored, its texts' statistics differ.
        # (keyed by the anchor's own key: a stem class where the word matched by its stem)
        raw = with_page.anchors({seen[k].key for k in both})
        assert sum(raw[seen[k].key].unlinked == alone[k].unlinked + 1 for k in both) >= 5
    finally:
        with_page.close()
        without.close()


def test_a_trained_page_context_is_its_training_folds(ltg_corpus, whole):
    """Its context is the sum of its links' vectors as training's projection left its links
    out of them (``project_fold``, on the same basis), not as the model stores them."""
    path, chosen = whole
    graph = link_graph(ltg_corpus, None)
    _, _, embedding = embed(graph, 1)
    model = open_model(path)
    try:
        assert model.manifest["vectors"] == "projection" and model.basis is not None
        for page in chosen:
            fold_entities, fold_vectors = project_fold(embedding, {page.title})
            titles = [*graph[page.title], page.title]
            assert len(titles) >= 10
            expected = np.sum([fold_vectors[fold_entities[t][0]] for t in titles
                               if t in fold_entities], axis=0)
            got = context_vector(model, titles, page.title)
            assert np.allclose(got, expected, atol=2e-3), np.abs(got - expected).max()
            stored = context_vector(model, titles)
            assert np.abs(stored - expected).max() > 0.05
            # A page it never saw (its title not among them) reads the stored vectors.
            assert np.array_equal(context_vector(model, titles[:-1]),
                                  np.sum(model.vectors[sorted(
                                      r for r, _ in model.entities(titles[:-1]).values())],
                                      axis=0))
    finally:
        model.close()


def test_svd_vectors_keep_no_basis_and_read_every_page_as_stored(ltg_corpus, whole, tmp_path):
    """``Settings(vectors="svd")`` (before the projection) ships U S without the basis: a
    trained page's context is then the stored vectors' sum, its statistics still one page
    out. An unknown kind is refused before any work."""
    path, chosen = whole
    build_model(ltg_corpus, tmp_path / "svd", Settings(seed=1, vectors="svd", prior=OWN_ROWS))
    model = open_model(tmp_path / "svd")
    try:
        assert model.manifest["vectors"] == "svd" and model.basis is None
        assert not (tmp_path / "svd" / "vectors.basis.npy").exists()
        page = chosen[0]
        assert model.trained_on(page.title)
        others = sorted(t for t in model.entities(ltg_corpus.articles) if t != page.title)
        titles = [page.title, *others[:29]]
        assert page.title in model.entities(titles)
        rows = sorted(r for r, _ in model.entities(titles).values())
        assert np.array_equal(context_vector(model, titles, page.title),
                              np.sum(model.vectors[rows], axis=0))
    finally:
        model.close()
    with pytest.raises(TrainingError, match="unknown vectors 'pca'"):
        build_model(ltg_corpus, tmp_path / "bad", Settings(vectors="pca"))
    assert not (tmp_path / "bad").exists()

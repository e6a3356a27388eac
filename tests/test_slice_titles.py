"""Slices: a link target outside the file is a title candidate, cross-fitted like a link.

On ltgwiki trained as a slice (``--mode slice``): the file is complete, but a slice cannot know
it, so every red link counts as an article of the wiki outside the file. The expected
candidates are built here from the corpus's links, independently of ``count_anchors``.
"""

from __future__ import annotations

from collections import defaultdict

import regex

from model import open_model
from model.train import Settings, anchors_from, count_anchors, fold_of, title_key, train_model
from tests.model_fixtures import LTG_DUMP, OWN_ROWS

# Plain titles only (letters and single spaces, 1-3 words, no qualifier): whatever the
# training's exclusion rules, these are title candidates if anything is.
_PLAIN = regex.compile(r"^\p{L}+(?: \p{L}+){0,2}$")


def _outside_links(corpus) -> dict[str, dict[str, set[int]]]:
    """Title key -> plain link target outside the file -> folds of the articles linking it."""
    seed = Settings().seed
    titled = {title_key(t) for t in corpus.articles} | {title_key(r) for r in corpus.redirects}
    out: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for record in corpus.records():
        for target, _ in record["l"]:
            if target in corpus.articles or target in corpus.disambiguations:
                continue
            if not _PLAIN.match(target) or title_key(target) in titled:
                continue
            out[title_key(target)][target].add(fold_of(record["t"], seed))
    return out


def test_link_targets_outside_a_slice_are_title_candidates_of_other_folds_only(ltg_corpus):
    corpus, settings = ltg_corpus, Settings(complete=False)
    outside = _outside_links(corpus)
    assert len(outside) > 100, "ltgwiki has red links to plain titles"
    counts = count_anchors(corpus, None, False, settings.seed, link_titles=True)

    shipped = anchors_from(counts, None, settings)
    found = [k for k, ts in outside.items() if k in shipped and set(ts) <= set(shipped[k].titles)]
    assert len(found) > 0.8 * len(outside), (len(found), len(outside))
    linked = {t for record in corpus.records() for t, _ in record["l"]}
    for a in shipped.values():  # no title outside the file that no article links
        assert all(t in corpus.articles or t in linked for t in a.titles), a

    only_own = left_in = 0
    for f in range(settings.folds):
        fold_anchors = anchors_from(counts, f, settings)
        for key, targets in outside.items():
            titles = set(fold_anchors[key].titles) if key in fold_anchors else set()
            for target, folds in targets.items():
                if folds == {f}:  # only this fold's articles link it: no candidate
                    only_own += 1
                    assert target not in titles, (f, key, target)
                elif target in titles:
                    left_in += 1
                    assert folds - {f}
    assert only_own > 50 and left_in > 100, (only_own, left_in)

    off = anchors_from(count_anchors(corpus, None, True, settings.seed, link_titles=True),
                       None, Settings(complete=True))
    red = linked - corpus.articles.keys()
    assert not any(t in red for a in off.values() for t in a.titles), "complete: red links"


def test_slice_training_ships_link_target_titles(tmp_path, ltg_corpus):
    """The trained model's dictionary (what recommend reads) has them as title targets."""
    outside = _outside_links(ltg_corpus)
    train_model(LTG_DUMP, tmp_path / "ltg", Settings(complete=False, workers=1, prior=OWN_ROWS))
    model = open_model(tmp_path / "ltg")
    got = model.anchors(sorted(outside))
    model.close()
    hits = [k for k, ts in outside.items() if k in got and set(ts) <= set(got[k].titles)]
    assert len(hits) > 0.8 * len(outside), (len(hits), len(outside))

"""A fold's compact anchor dictionary and key filter against a plain dict and set, on ltgwiki.

The reference below builds the dictionary the way training did before the arrays: Counters
of strings summed fold by fold from the counts read as Mappings, then key by key in Python.
It is kept here, apart from ``model.train``, so the two do not share a code path.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import partial

import pytest

from model.datasets import Anchor
from model.features import kurtosis
from model.stems import Stemmer
from model.text import KeySet, PrefixIndex, filter_keys, page_mentions
from model.train import MAX_MEMBERS, MAX_TARGETS, Settings, anchors_from, count_anchors


def _members(wanted: set[str], keys: list[str]) -> list[bool]:
    return [k in wanted for k in keys]


def _summed(parts, fold) -> Counter:
    out: Counter = Counter()
    for f, part in enumerate(parts):
        if f != fold:
            out.update(dict(part.items()))
    return out


def _reference(pairs, linked, seen, titles, redirects, settings, members=None) -> dict:
    by_key: dict = defaultdict(list)
    for (key, target), n in pairs.items():
        by_key[key].append((target, n))
    out = {}
    for key in sorted(by_key.keys() | titles.keys() | redirects.keys()):
        links = by_key.get(key, [])
        total = sum(n for _, n in links)
        pages = linked[key]
        appears = max(seen[key], pages)
        prob = pages / appears if appears else 0.0
        link_ok = bool(links) and total >= settings.min_anchor_count
        link_ok = link_ok and prob >= settings.min_link_prob
        title_of, redirect_of = titles.get(key, set()), redirects.get(key, set())
        title_ok = bool(title_of | redirect_of)
        title_ok = title_ok and (pages + 1) / (appears + 1) >= settings.min_link_prob
        if not (link_ok or title_ok):
            continue
        extra = sorted((title_of | redirect_of) - {t for t, _ in links}) if title_ok else []
        ranked = sorted(links, key=lambda kv: (-kv[1], kv[0]))[: MAX_TARGETS - len(extra)]
        targets = tuple(ranked) + tuple((t, 0) for t in extra)
        kept = {t for t, _ in targets}
        out[key] = Anchor(
            key, targets, total, round(prob, 6), round(kurtosis([n for _, n in ranked]), 6),
            appears - pages, tuple(sorted(title_of & kept)), tuple(sorted(redirect_of & kept)),
            tuple(sorted(members.get(key, ()))[:MAX_MEMBERS]) if members else (),
        )
    return out


def reference_anchors(counts, fold, settings) -> dict:
    titles = {k: set(v) for k, v in counts.titles.items()}
    for part in (p for f, p in enumerate(counts.link_titles) if f != fold):
        for key, target in part:
            titles.setdefault(key, set()).add(target)
    anchors = _reference(_summed(counts.pairs, fold), _summed(counts.linked, fold),
                         _summed(counts.seen, fold), titles, counts.redirects, settings)
    if counts.members:
        stem_of = {k: c for c, ks in counts.members.items() for k in ks}
        tables = []
        for table in (titles, counts.redirects):
            by_class: dict = defaultdict(set)
            for k, targets in table.items():
                if k in stem_of:
                    by_class[stem_of[k]] |= targets
            tables.append(by_class)
        members = {c: {k for k in ks if k in anchors} for c, ks in counts.members.items()}
        anchors.update(_reference(
            _summed(counts.stem_pairs, fold), _summed(counts.stem_linked, fold),
            _summed(counts.stem_seen, fold), *tables, settings, members))
    return anchors


@pytest.mark.parametrize("complete", [True, False], ids=["complete", "slice"])
def test_fold_dictionaries_and_filters_equal_the_dict_and_set(ltg_corpus, complete, monkeypatch):
    corpus, settings = ltg_corpus, Settings(complete=complete)
    if not complete:  # keys hashed in many chunks: prefixes shared across them met again
        monkeypatch.setattr(PrefixIndex, "CHUNK", 4096)
    counts = count_anchors(corpus, None, complete, settings.seed, settings.folds,
                           stemming="auto", link_titles=True)
    assert counts.members, "ltgwiki learns endings: stem classes are exercised"
    stemmer = Stemmer(counts.stemmer)
    assert complete or any(len(p) for p in counts.link_titles)
    language = corpus.site.language
    pages = [[text for text, _ in record["x"]] for record in corpus.records()][:300]
    for fold in (None, 0, 3):
        expected = reference_anchors(counts, fold, settings)
        table = anchors_from(counts, fold, settings)
        assert len(table) == len(expected) > 1000
        assert list(table) == list(expected)  # the same keys in the same order
        assert dict(table.items()) == expected
        assert table.exact.unnamed, "titles no counter numbers (never linked, never seen)"
        assert "not an anchor at all" not in table and table.get("not an anchor") is None
        # The filter: exactly the set's members, asked the set's way and the walk's way.
        wanted = filter_keys(expected, language)
        keys = table.filter(language)
        assert len(keys) == len(wanted)
        assert set(keys.members()) == wanted
        assert set(KeySet.of(expected, language).members()) == wanted
        probes = sorted(wanted) + [k + "x" for k in sorted(wanted)[:2000]] + ["", "\x00"]
        assert keys.passes(probes) == [p in wanted for p in probes]
        walked = [page_mentions(texts, language, keys.passes, whole_keys=True,
                                stemmer=stemmer) for texts in pages]
        in_set = partial(_members, wanted)
        assert walked == [page_mentions(texts, language, in_set, whole_keys=True,
                                        stemmer=stemmer) for texts in pages]
        assert sum(map(len, walked)) > 1000

"""The dump source on the real dumps: plain/bz2/xz, candidates, page data, targets."""

from __future__ import annotations

import bz2
import lzma

import pytest

from runner.sources.dump import DumpSource, DumpSourceError, cache_path
from tests.runner_support import DUMPS, EN_DUMP, LTG_DUMP

UK_DUMP = f"{DUMPS}/ukwiki-20230501-first100klines.xml.xz"


@pytest.fixture(scope="module")
def ltg(tmp_path_factory):
    src = DumpSource(LTG_DUMP, complete=True, cache_dir=tmp_path_factory.mktemp("c"), seed=3)
    yield src
    src.close()


def all_ids(src: DumpSource, **kw) -> list[int]:
    return [c.page_id for b in src.candidates(batch_size=100, **kw) for c in b]


def test_allpages_walk_resume_and_shards(ltg):
    ids = all_ids(ltg, strategy="allpages")
    assert len(ids) == 903 and ids == sorted(ids)  # the README's article count
    after = ids[400]
    assert all_ids(ltg, strategy="allpages", resume_from=after) == ids[401:]
    shards = [all_ids(ltg, strategy="allpages", shard=(i, 3)) for i in range(3)]
    assert sorted(sum(shards, [])) == ids  # disjoint and complete
    assert all(p % 3 == i for i, s in enumerate(shards) for p in s)


def test_random_is_a_seeded_permutation(ltg, tmp_path):
    a = all_ids(ltg, strategy="random")
    assert sorted(a) == all_ids(ltg, strategy="allpages") and a != sorted(a)
    again = DumpSource(LTG_DUMP, cache_dir=ltg.cache.parent, seed=3)
    assert all_ids(again, strategy="random") == a
    other = DumpSource(LTG_DUMP, cache_dir=ltg.cache.parent, seed=4)
    assert all_ids(other, strategy="random") != a
    assert len(next(ltg.candidates("random", batch_size=50))) == 50
    with pytest.raises(DumpSourceError, match="cannot serve 'search'"):
        ltg.candidates("search", batch_size=10)


def test_fetch_page_data(ltg):
    (page,) = ltg.fetch(["Rēzne (upe)"])
    assert page.namespace == 0 and not page.is_redirect and page.content_model == "wikitext"
    assert page.rev_id > 0 and page.timestamp > 1.0e9 and "[[" in page.wikitext
    assert page.templates and all(t.startswith("Template:") for t in page.templates)
    assert ltg.fetch(["No such page"]) == []
    # underscores and a lower-case first letter are the same title
    assert [p.page_id for p in ltg.fetch(["rēzne_(upe)"])] == [page.page_id]
    disamb = [p for b in ltg.candidates("allpages", batch_size=500)
              for p in ltg.fetch([c.title for c in b])
              if "Template:Zeimeibu škiršona" in p.templates]
    assert disamb  # the wiki's disambiguation template is seen


def test_targets_complete_and_slice(ltg, tmp_path):
    got = ltg.targets(["Rēzne (upe)", "Nav taida raksta"])
    assert got["Rēzne (upe)"].page_id and got["Rēzne (upe)"].known
    assert got["Nav taida raksta"].page_id is None and got["Nav taida raksta"].known  # red
    en = DumpSource(EN_DUMP, cache_dir=tmp_path)  # a slice of enwiki
    got = en.targets(["Anarchism", "Pierre-Joseph Proudhon"])
    assert got["Anarchism"].page_id == 12
    assert got["Pierre-Joseph Proudhon"].page_id is None
    assert not got["Pierre-Joseph Proudhon"].known  # outside the slice: unknown, not red
    (acid,) = en.fetch(["Acid"])
    assert "Category:Acids" in acid.categories


def test_latest_revisions_and_titles(ltg):
    ids = all_ids(ltg, strategy="allpages")[:5]
    revs = ltg.latest_revisions(ids + [99999999])
    assert set(revs) == set(ids)
    titles = ltg.page_titles(ids)
    assert [p.rev_id for p in ltg.fetch([titles[i] for i in ids])] == [revs[i] for i in ids]


@pytest.mark.parametrize("fmt", ["plain", "bz2", "xz"])
def test_compressions_and_cache_reuse(tmp_path, fmt):
    with bz2.open(EN_DUMP) as f:
        raw = f.read()
    path = tmp_path / f"en.xml{'' if fmt == 'plain' else '.' + fmt}"
    if fmt == "plain":
        path.write_bytes(raw)
    elif fmt == "bz2":
        path.write_bytes(bz2.compress(raw, compresslevel=1))
    else:
        path.write_bytes(lzma.compress(raw, preset=0))
    src = DumpSource(path, cache_dir=tmp_path / "cache")
    assert len(all_ids(src, strategy="allpages")) == 106
    stamp = src.cache.stat().st_mtime_ns
    DumpSource(path, cache_dir=tmp_path / "cache")  # reused, not rebuilt
    assert src.cache.stat().st_mtime_ns == stamp
    assert list((tmp_path / "cache").glob("*.tmp")) == []


def test_xz_slice_of_another_language(tmp_path):
    src = DumpSource(UK_DUMP, cache_dir=tmp_path)
    assert len(all_ids(src, strategy="allpages")) == 512  # README: 512 articles


def test_bad_dumps_are_clear_errors(tmp_path):
    with pytest.raises(DumpSourceError, match="no such dump file"):
        DumpSource(tmp_path / "missing.xml", cache_dir=tmp_path)
    bad = tmp_path / "bad.xml"
    bad.write_text("this is not xml")
    with pytest.raises(DumpSourceError, match="not a MediaWiki XML dump"):
        DumpSource(bad, cache_dir=tmp_path / "c")
    assert not cache_path(bad, tmp_path / "c").exists()
    assert list((tmp_path / "c").glob("*")) == []  # nothing half-written

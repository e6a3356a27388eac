"""The worker pool: real recommendations, and survival of raising, crashing, hanging pages."""

from __future__ import annotations

import time

import pytest

from model import open_model, recommend
from runner.sources.dump import DumpSource
from runner.workers import Task, WorkerError, WorkerPool, rss_bytes
from tests.runner_support import CRASH, LTG_DUMP, RAISE, SLOW, STUCK

OPTIONS = {"threshold": 0.5, "max_recommendations": 10}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    src = DumpSource(LTG_DUMP, complete=True, cache_dir=tmp_path_factory.mktemp("cache"))
    batch = next(src.candidates("allpages", batch_size=40))
    got = src.fetch([c.title for c in batch])
    src.close()
    return got


def drain(pool: WorkerPool, n: int, timeout: float = 60) -> list:
    out: list = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out.extend(pool.wait(timeout=1))
    return out


def test_pool_returns_what_the_model_returns(ltg_model, pages):
    model = open_model(ltg_model)
    with WorkerPool(str(ltg_model), workers=2, page_timeout=30, options=OPTIONS) as pool:
        results = {}
        todo = list(enumerate(pages))
        while todo or pool.busy:
            while todo and pool.idle:
                i, p = todo.pop(0)
                assert pool.submit(Task(i, p.title, p.page_id, p.rev_id, p.wikitext))
            for r in pool.wait(timeout=5):
                results[r.key] = r
        pids = set(pool.pids())
        assert len(pids) == 2 and {r.worker for r in results.values()} <= pids
        assert all(rss_bytes(pid) < 300 * 2**20 for pid in pids)
    assert len(results) == len(pages) and all(r.ok for r in results.values())
    for i, p in enumerate(pages):
        direct = recommend(model, p.wikitext, title=p.title, pageid=p.page_id,
                           revid=p.rev_id, **OPTIONS)
        assert results[i].recommendation["links"] == direct["links"]
    assert sum(len(r.recommendation["links"]) for r in results.values()) > 0


def test_failures_become_results_and_the_pool_goes_on(ltg_model, pages):
    good = pages[0]
    with WorkerPool(str(ltg_model), workers=2, page_timeout=1.0, grace=1.0, options=OPTIONS,
                    recommender="tests.runner_support:misbehaving") as pool:
        def one(key: int, title: str):
            assert pool.submit(Task(key, title, good.page_id, good.rev_id, good.wikitext))
            (res,) = drain(pool, 1)
            assert res.key == key
            return res

        first_pids = set(pool.pids())
        r = one(1, RAISE)
        assert not r.ok and "ValueError: cannot handle Raise" in r.error
        assert set(pool.pids()) == first_pids and pool.restarts == 0

        r = one(2, SLOW)
        assert not r.ok and "time budget of 1 s exceeded" in r.error
        assert set(pool.pids()) == first_pids  # the worker survived its own timeout

        r = one(3, CRASH)
        assert not r.ok and "worker died (exit code 3)" in r.error
        assert pool.restarts == 1 and len(pool.pids()) == 2

        t0 = time.monotonic()
        r = one(4, STUCK)
        assert not r.ok and "worker killed" in r.error
        assert 1.5 < time.monotonic() - t0 < 15
        assert pool.restarts == 2

        r = one(5, good.title)  # and real work still gets done
        assert r.ok and r.recommendation["pageid"] == good.page_id


def test_unusable_model_fails_fast_with_its_path(tmp_path):
    with pytest.raises(WorkerError,
                       match=f"could not open the model {tmp_path}: .*manifest.json missing"):
        WorkerPool(str(tmp_path), workers=1, page_timeout=5).start()


def test_available_cpus_respects_affinity():
    import os

    from model.parallel import available_cpus

    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})
        assert available_cpus() == 1
    finally:
        os.sched_setaffinity(0, before)
    assert 1 <= available_cpus() <= len(before)

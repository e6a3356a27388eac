"""Pools per topic, counted in the search index (issue 11).

The search index is the CirrusSearch stand-in of tests/searchindex.py, fed only by the
events the local EventGate (tests/eventgate.py) accepts from the job, after a lag; page data
comes from the real local MediaWiki, stores are SQLite or the real MariaDB, shared targets
use the real ZooKeeper. So job -> events -> index -> counts is one loop here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack

import pytest
import yaml

from model.exitcodes import ExitCode
from runner import status, topics
from runner.app import Adapters, run_wiki
from runner.config import parse_config
from runner.metrics import Metrics, PrometheusMetrics
from runner.repair import drift
from runner.run import RunOptions
from runner.sources.api import ApiSource, ApiSourceError
from runner.store import open_store
from tests.conftest import REPO, USER_AGENT
from tests.eventgate import EventGate
from tests.runner_support import migrated
from tests.searchindex import TOPICS, SearchIndex, load_pages, topic_wiki

PER_TOPIC, BATCH = 5, 10


@pytest.fixture(scope="module")
def pages(mediawiki):
    return load_pages(mediawiki.api_url)


@pytest.fixture
def index(pages):
    with SearchIndex(pages, lag=0.3, seed=1) as idx:
        yield idx


@pytest.fixture
def gate(index):
    with EventGate() as eg:
        eg.subscribers.append(index.receive)
        yield eg


def config(tmp_path, ltg_model, mediawiki, index, gate, *, store=None, **candidates):
    doc = {"runner": {"workers": 2, "user_agent": USER_AGENT},
           "store": store or {"type": "sqlite", "path": str(tmp_path / "a.sqlite")},
           "events": {"type": "eventgate", "url": gate.url},
           "lock": {"type": "file", "dir": str(tmp_path / "locks")},
           "wikis": {"ltgwiki": topic_wiki(str(ltg_model), mediawiki.api_url,
                                           index.url if index else None,
                                           per_topic=PER_TOPIC, batch=BATCH, **candidates)}}
    return migrated(parse_config(doc, env={})), doc


def stored_pages(cfg) -> dict[int, str]:
    store = open_store(cfg.store, "ltgwiki")
    try:
        return {r.page_id: "" for r in store.iter_data_rows()}
    finally:
        store.close()


# ---------------------------------------------------------------- the stand-in

def test_the_stand_in_answers_list_search_as_cirrussearch(mediawiki, index, pages):
    src = ApiSource(mediawiki.api_url, user_agent=USER_AGENT, search_url=index.url)
    try:
        assert src.cirrus  # siteinfo of the search endpoint lists CirrusSearch
        culture = {p for p, x in pages.items() if "culture" in x.topics}
        assert src.search_count("articletopic:culture") == len(culture)
        assert src.search_count("articletopic:culture|stem") == len(
            {p for p, x in pages.items() if x.topics & {"culture", "stem"}})
        a, b = sorted(culture)[:2]
        index.tag(a)
        assert src.pool_count("culture") == 1 and src.pool_count(None) == 1
        # random order, paged with sroffset/continue (batches of 7): every hit once
        got = [c.page_id for batch in src.candidates("search", batch_size=7, topic="culture")
               for c in batch]
        assert len(got) == len(set(got)) == len(culture) - 1 and a not in got
        assert got != sorted(got)  # srsort=random
        assert [c.page_id for c in src.search_pages(f"-articletopic:stem pageid:{a}|{b}")] \
            == [p for p in (a, b) if "stem" not in pages[p].topics]
        with pytest.raises(ApiSourceError, match="not reproduced by the stand-in"):
            src.search_count("Latgola")  # full text: refused, never silently empty
    finally:
        src.close()


def test_tags_come_from_eventgate_after_the_lag(index, gate, pages):
    import requests

    from runner.events import EventFactory

    page = next(iter(pages.values()))
    index.lag = 3.0  # long enough to see it lag on a loaded machine
    ev = EventFactory("ltgwiki", "mediawiki.cirrussearch.page_weighted_tags_change.v1",
                      "/development/cirrussearch/page_weighted_tags_change/1.0.0",
                      "ltg.wikipedia.org")
    r = requests.post(f"{gate.url}/v1/events", json=[ev.set(page.page_id, page.title)],
                      timeout=10)
    assert r.status_code == 201
    assert index.count() == 0  # not applied yet: the index lags
    index.settle()
    assert index.count() == 1
    requests.post(f"{gate.url}/v1/events", json=[ev.clear(page.page_id, page.title)],
                  timeout=10)
    index.settle()
    assert index.count() == 0


# ---------------------------------------------------------------- --topic

def test_topic_is_validated_against_the_configured_list(tmp_path, ltg_model, mediawiki,
                                                        index, gate):
    _, doc = config(tmp_path, ltg_model, mediawiki, index, gate)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "runner", "--config", str(path), *args],
                              cwd=REPO, capture_output=True, text=True, timeout=120)

    r = cli("refresh", "--topic", "sports")
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.strip().splitlines() == [
        f"error: --topic sports: not a topic of ltgwiki (configured: {', '.join(TOPICS)})"]
    r = cli("drift", "--wiki", "ltgwiki", "--resend", "--clear")
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.strip() == "error: drift: --resend and --clear exclude each other"
    doc["wikis"]["ltgwiki"]["candidates"] = {"strategy": "random"}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    r = cli("refresh", "--topic", "culture")
    assert r.returncode == ExitCode.USAGE and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("error: --topic culture: ltgwiki has no per-topic pools "
                                "(candidates.strategy search with candidates.topics)")


# ---------------------------------------------------------------- refresh per topic

def test_refresh_fills_every_topic_or_reports_it_exhausted(tmp_path, ltg_model, mediawiki,
                                                           index, gate, pages, pushgateway_url,
                                                           prometheus_url):
    import secrets

    from runner.metrics import PushgatewayMetrics
    from tests.test_metrics import delete_job
    from tests.test_prometheus import Prom

    cfg, _ = config(tmp_path, ltg_model, mediawiki, index, gate)
    job = f"addlink_test_{secrets.token_hex(4)}"
    metrics = PushgatewayMetrics(pushgateway_url, job, 0.5, 5)
    try:
        res = run_wiki(cfg, "ltgwiki", RunOptions(), metrics)
        metrics.close()
        check_filled(res, cfg, index, pages, metrics)
        # the same figures through the Pushgateway and the real Prometheus
        prom = Prom(prometheus_url, job)
        prom.wait_for(f'addlink_pool_size{{job="{job}", topic="stem"}}')
        want = {t: float(f["count"]) for t, f in res.topics.items()}
        deadline = time.monotonic() + 30  # the end-of-run push lands with the next scrape
        while time.monotonic() < deadline:
            got = {t: prom.value("addlink_pool_size", wiki="ltgwiki", topic=t) for t in want}
            if got == want:
                break
            time.sleep(0.5)
        assert got == want
    finally:
        delete_job(pushgateway_url, job)

    # the next run starts from the index's counts: full topics take no candidates
    second = PrometheusMetrics()
    again = run_wiki(cfg, "ltgwiki", RunOptions(), second)
    assert again.status == "ok"
    taken = Counter()
    for fam in second.registry.collect():
        for smp in fam.samples if fam.name == "addlink_outcomes" else ():
            taken[smp.labels["topic"]] += int(smp.value) if smp.name.endswith("_total") else 0
    for t, f in again.topics.items():
        assert f["count_at_start"] == res.topics[t]["count"]
        if res.topics[t]["state"] == "full":
            assert taken[t] == 0, t


def check_filled(res, cfg, index, pages, metrics) -> None:
    assert res.status == "ok", res.error
    figures = res.topics
    assert set(figures) == set(TOPICS)
    for t, f in figures.items():
        assert f["count_at_start"] == 0 and f["target"] == PER_TOPIC
        assert f["state"] in ("full", "exhausted"), (t, f)
        assert f["count"] <= PER_TOPIC + BATCH, (t, f)  # never more than one batch over
        if f["state"] == "exhausted":
            assert f["still_needed"] == PER_TOPIC - f["count"] > 0
    # the run's view is what the index holds once the lag has passed: job -> events ->
    # index -> counts, with a page in several topics counted for each
    index.settle()
    assert {t: index.count(t) for t in TOPICS} == {t: f["count"] for t, f in figures.items()}
    rows = stored_pages(cfg)
    assert res.pool_after == len(rows) == index.count()  # pool_size: distinct pages
    assert sum(f["count"] for f in figures.values()) == sum(len(pages[p].topics)
                                                            for p in rows)
    assert any(len(pages[p].topics) > 1 for p in rows)
    # metrics carry the topic label
    for t, f in figures.items():
        assert metrics.registry.get_sample_value(
            "addlink_pool_size", {"wiki": "ltgwiki", "topic": t, "shard": "all"}) == f["count"]
        assert metrics.registry.get_sample_value(
            "addlink_pool_target", {"wiki": "ltgwiki", "topic": t, "shard": "all"}) == PER_TOPIC
    success = sum(metrics.registry.get_sample_value(
        "addlink_outcomes_total", {"wiki": "ltgwiki", "outcome": "success", "topic": t,
                                   "shard": "all"}) or 0 for t in TOPICS)
    assert success == res.outcomes["success"] == len(rows)

    # status: topic x count x target, counted by the index
    (row,) = status.collect(cfg, ["ltgwiki"])
    assert [(t["topic"], t["count"], t["target"], t["counted_by"]) for t in row["topics"]] \
        == [(t, figures[t]["count"], PER_TOPIC, "search") for t in TOPICS]
    text = status.table([row])
    assert "pools per topic" in text and "culture" in text


def test_one_topic_only_and_strict_caps(tmp_path, ltg_model, mediawiki, index, gate, pages):
    cfg, _ = config(tmp_path, ltg_model, mediawiki, index, gate, topic_overshoot=0)
    res = run_wiki(cfg, "ltgwiki", RunOptions(topic="stem"), Metrics())
    assert res.status == "ok", res.error
    rows = stored_pages(cfg)
    assert rows and all("stem" in pages[p].topics for p in rows)  # only stem's candidates
    assert res.topics["stem"]["state"] in ("full", "exhausted")
    index.settle()
    assert all(index.count(t) <= PER_TOPIC for t in TOPICS)  # topic_overshoot: 0


def test_without_cirrussearch_the_table_counts(tmp_path, ltg_model, mediawiki):
    """A vanilla MediaWiki has no hasrecommendation:/articletopic:: counts come from the
    table (addlink_page_topics), written with each row."""
    with EventGate() as eg:
        cfg, _ = config(tmp_path, ltg_model, mediawiki, None, eg)
        store = open_store(cfg.store, "ltgwiki")
        with ExitStack() as stack:
            a = Adapters(cfg, "ltgwiki", Metrics(), stack)
            ev = a.events
            store.save_recommendation(11, 111, "A", {"links": []}, ev.set(11, "A"),
                                      topics=["culture", "stem"])
            store.save_recommendation(12, 121, "B", {"links": []}, ev.set(12, "B"),
                                      topics=["culture"])
            found, by = topics.counts(cfg.wiki("ltgwiki"), a.source, store)
        assert by == "table" and found["culture"] == 2 and found["stem"] == 1
        assert found["history"] == 0
        store.remove_pages([(11, "A")], ev.clear)
        assert store.topic_counts() == {"culture": 1}
        (row,) = status.collect(cfg, ["ltgwiki"])
        assert {t["topic"]: (t["count"], t["counted_by"]) for t in row["topics"]}["culture"] \
            == (1, "table")
        store.close()
        refused = drift(cfg, "ltgwiki", resend=False, options=RunOptions(dry_run=True),
                        metrics=Metrics(), source="search")
        assert refused.status == "usage" and refused.error == (
            "drift --source search: ltgwiki has no CirrusSearch (hasrecommendation:link); "
            "use --source record")
        record = drift(cfg, "ltgwiki", resend=False, options=RunOptions(dry_run=True),
                       metrics=Metrics())  # the default here: the acknowledged events
        assert record.status == "ok"  # its one row's set event is pending: left alone
        assert (record.outcomes["row_without_tag"], record.outcomes["tag_without_row"]) \
            == (0, 0)
        # the allpages walk learns a page's topics from the index: none here, a usage error
        walk, _ = config(tmp_path, ltg_model, mediawiki, None, eg, strategy="allpages")
        res = run_wiki(walk, "ltgwiki", RunOptions(), Metrics())
        assert res.status == "usage" and res.exit_code == ExitCode.USAGE
        assert res.error == ("wikis.ltgwiki.candidates.topics: with strategy allpages the "
                             "topics of a page come from the search index, and this wiki has "
                             "no CirrusSearch (use strategy search)")


# ---------------------------------------------------------------- drift against the index

def test_drift_finds_and_repairs_every_injected_inconsistency(tmp_path, ltg_model, mediawiki,
                                                              index, gate, pages):
    cfg, _ = config(tmp_path, ltg_model, mediawiki, index, gate)
    res = run_wiki(cfg, "ltgwiki", RunOptions(), Metrics())
    assert res.status == "ok" and res.pool_after >= 4, res.error
    index.settle()
    time.sleep(1.1)  # past source.search_lag: acknowledged tags are due in the index
    clean = drift(cfg, "ltgwiki", resend=False, options=RunOptions(dry_run=True),
                  metrics=Metrics())
    assert (clean.outcomes["tag_without_row"], clean.outcomes["row_without_tag"]) == (0, 0)

    rows = sorted(stored_pages(cfg))
    y, z, w = rows[:3]
    store = open_store(cfg.store, "ltgwiki")
    x = next(p for p in sorted(pages) if p not in rows)
    index.tag(x)  # a tag without a row (another writer, a lost clear long ago)
    index.untag(y)  # a row without a tag (the index lost it)
    index.lose_next(z)  # a lost event: the clear of a removed row never lands
    index.swap_next(w)  # reordered: clear then set, applied set then clear
    ev_titles = store.pool_titles([z, w])
    data_w = next(r.data for r in store.iter_data_rows() if r.page_id == w)
    rev_w = next(r.rev_id for r in store.iter_data_rows() if r.page_id == w)
    with ExitStack() as stack:
        a = Adapters(cfg, "ltgwiki", Metrics(), stack)
        store.remove_pages([(z, ev_titles[z]), (w, ev_titles[w])], a.events.clear)
        store.save_recommendation(w, rev_w, ev_titles[w], data_w,
                                  a.events.set(w, ev_titles[w]))
        a.publisher.drain()
    index.settle()
    time.sleep(1.1)
    metrics = PrometheusMetrics()
    found = drift(cfg, "ltgwiki", resend=False, options=RunOptions(dry_run=True),
                  metrics=metrics)
    assert found.outcomes["tag_without_row"] == 2 and found.outcomes["row_without_tag"] == 2
    assert metrics.registry.get_sample_value("addlink_drift_pages", {
        "wiki": "ltgwiki", "source": "search", "kind": "tag_without_row", "shard": "all"}) == 2
    # the acknowledged-event record cannot see what the index lost or got elsewhere
    record = drift(cfg, "ltgwiki", resend=False, options=RunOptions(dry_run=True),
                   metrics=Metrics(), source="record")
    assert (record.outcomes["tag_without_row"], record.outcomes["row_without_tag"]) == (0, 0)

    fixed = drift(cfg, "ltgwiki", resend=False, options=RunOptions(), metrics=Metrics())
    assert fixed.status == "ok" and fixed.outcomes["clear"] == 2 and fixed.outcomes["set"] == 2
    index.settle()
    assert {p for p in index.tagged} == set(stored_pages(cfg))  # the index = the table
    assert x not in index.tagged and z not in index.tagged and {y, w} <= index.tagged
    time.sleep(1.1)
    after = drift(cfg, "ltgwiki", resend=False, options=RunOptions(dry_run=True),
                  metrics=Metrics())
    assert (after.outcomes["tag_without_row"], after.outcomes["row_without_tag"]) == (0, 0)

    # --clear: the index is the truth, a row it does not hold is removed
    index.untag(y)
    time.sleep(1.1)
    cleared = drift(cfg, "ltgwiki", resend=False, options=RunOptions(), metrics=Metrics(),
                    clear=True)
    assert cleared.outcomes["row_without_tag"] == 1 and y not in stored_pages(cfg)
    store.close()


# ---------------------------------------------------------------- shared targets per topic

def test_racing_topic_claims_never_overshoot_any_topic(zk_hosts):
    """4 sessions claim pages with random topic sets; the table commits each granted page;
    no topic ever passes its target (topic_overshoot 0) and every claim ends decided."""
    import random

    from kazoo.client import KazooClient

    root = f"/addlink-test-{time.time_ns()}/ltgwiki"
    targets = {t: 4 for t in TOPICS[:4]}
    table: Counter = Counter()
    lock = threading.Lock()

    def count() -> dict[str, int]:
        with lock:
            return dict(table)

    clients, granted = [], []
    procs = []
    for _ in range(4):
        c = KazooClient(hosts=zk_hosts, timeout=4)
        c.start(timeout=10)
        clients.append(c)
        p = topics.Plan(dict(targets), list(targets), {t: 0 for t in targets}, "search",
                        {t: 0 for t in targets}, slack=0)
        procs.append(topics.ZooKeeperTopicTarget(c, root, p, count, refresh=0.0, wait=20))

    def shard(t: topics.ZooKeeperTopicTarget, seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(15):
            mine = rnd.sample(list(targets), rnd.choice((1, 2)))
            slot = t.claim(mine, mine[0])
            if slot is None:
                continue
            time.sleep(0.002)
            with lock:
                table.update(slot.topics)
                granted.append(slot.topics)
            t.confirm(slot)

    threads = [threading.Thread(target=shard, args=(t, i)) for i, t in enumerate(procs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(table[t] <= n for t, n in targets.items()), table
    assert sum(table.values()) >= len(targets)  # they really stored
    assert procs[0]._claims() == []
    for t in procs:
        t.close()
    clients[0].delete(root.rsplit("/", 1)[0], recursive=True)
    for c in clients:
        c.stop()
        c.close()


@pytest.mark.parametrize("strategy", ["search", "allpages"])
def test_three_shards_never_overshoot_any_topic(tmp_path, ltg_model, mediawiki, index, gate,
                                                pages, mysql_url, zk_hosts, strategy):
    """As today's global-target shard test: 3 processes, one MariaDB, ZooKeeper; candidates
    per topic (search), or the backfill's page-id walk (allpages) where each page counts
    for the topics the index files it under."""
    import secrets

    from kazoo.client import KazooClient

    from tests.runner_support import drop_database
    from tests.test_runner_shards import stored

    db = f"{mysql_url}_{secrets.token_hex(3)}"
    root = f"/addlink-test-{time.time_ns()}"
    _, doc = config(tmp_path, ltg_model, mediawiki, index, gate,
                    store={"type": "mysql", "url": db, "create_database": True},
                    topic_overshoot=0, strategy=strategy)
    doc["lock"] = {"type": "zookeeper", "hosts": zk_hosts, "root": root, "timeout": 4}
    doc["runner"]["workers"] = 1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    migrated(parse_config(doc, env={}))
    try:
        procs = []
        for i in range(3):
            with open(tmp_path / f"shard-{i}.log", "w") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "runner", "--config", str(path), "refresh",
                     "--shard", f"{i}/3"], cwd=REPO, stdout=out, stderr=subprocess.STDOUT))
        codes = [p.wait(timeout=300) for p in procs]
        logs = [[json.loads(x) for x in (tmp_path / f"shard-{i}.log").read_text().splitlines()
                 if x.startswith("{")] for i in range(3)]
        assert codes == [0, 0, 0], [r for lg in logs for r in lg if r["level"] == "ERROR"]
        rows = [p for p, _ in stored(db)]
        per_topic = Counter(t for p in rows for t in pages[p].topics)
        assert all(per_topic[t] <= PER_TOPIC for t in TOPICS), per_topic  # never over
        assert sum(1 for lg in logs if any(r.get("outcome") == "success" for r in lg)) >= 2
        finished = [next(r for r in lg if r.get("message") == "run finished") for lg in logs]
        for t in TOPICS:  # filled, or not reported full by any shard
            if per_topic[t] < PER_TOPIC:
                assert all(f["topics"][t]["state"] != "full" for f in finished), t
        if strategy == "allpages":  # walked to the end or stopped once every topic was full
            assert all(f["stop_reason"] in ("candidates_exhausted", "target_reached")
                       for f in finished)
        index.settle()
        assert {t: index.count(t) for t in TOPICS} == {t: per_topic[t] for t in TOPICS}
        zk = KazooClient(hosts=zk_hosts)
        zk.start(timeout=10)
        assert zk.get_children(f"{root}/ltgwiki/topic-claims") == []
        zk.delete(root, recursive=True)
        zk.stop()
        zk.close()
    finally:
        drop_database(db)

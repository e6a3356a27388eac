"""The runner with ``recommender: {type: service}`` against a real gunicorn: the same outcomes
and the same rows as the in-process worker pool, on the real local MediaWiki (ltgwiki)."""

from __future__ import annotations

import pytest

from model.exitcodes import ExitCode
from runner.app import run_wiki
from runner.config import ConfigError, parse_config
from runner.job import RunOptions
from runner.metrics import Metrics
from runner.store import open_store
from tests.conftest import USER_AGENT
from tests.runner_support import migrated
from tests.service_support import Gunicorn, free_port


def runner_config(tmp_path, name, mediawiki, model, recommender=None):
    doc = {"runner": {"workers": 2, "user_agent": USER_AGENT},
           "store": {"type": "sqlite", "path": str(tmp_path / f"{name}.sqlite")},
           "events": {"type": "jsonlines", "path": str(tmp_path / f"{name}.jsonl")},
           "lock": {"type": "file", "dir": str(tmp_path / f"{name}-locks")},
           "wikis": {"ltgwiki": {
               "language": "ltg", "domain": "ltg.wikipedia.org", "model": str(model),
               "pool_target": 1000,
               "source": {"type": "api", "api_url": mediawiki.api_url},
               "criteria": {"minimum_time_since_last_edit": 0, "minimum_link_score": 0.3,
                            "excluded_sections": ["Nūrodys"],
                            "disambiguation_templates": ["Zeimeibu škiršona"]}}}}
    if recommender:
        doc["recommender"] = recommender
    return doc


def rows(cfg) -> dict[int, tuple[int, list, dict]]:
    store = open_store(cfg.store, "ltgwiki")
    try:
        out = {}
        for r in store.iter_data_rows():
            meta = {k: v for k, v in r.data["meta"].items() if k != "task_timestamp"}
            out[r.page_id] = (r.rev_id, r.data["links"], meta)
        return out
    finally:
        store.close()


@pytest.mark.services
def test_runner_through_the_service_equals_in_process(tmp_path, mediawiki, ltg_model):
    titles = tuple(p["title"] for p in mediawiki.get(
        action="query", list="allpages", apnamespace=0, apfilterredir="nonredirects",
        aplimit=60)["query"]["allpages"])
    local = migrated(parse_config(runner_config(tmp_path, "local", mediawiki, ltg_model),
                                  env={}))
    opts = RunOptions(command="backfill", titles=titles)
    res_local = run_wiki(local, "ltgwiki", opts, Metrics())
    service_doc = {"wikis": {"ltgwiki": runner_config(tmp_path, "x", mediawiki,
                                                      ltg_model)["wikis"]["ltgwiki"]}}
    with Gunicorn(service_doc, workers=2) as g:
        remote = migrated(parse_config(runner_config(tmp_path, "remote", mediawiki, ltg_model,
                                                     {"type": "service", "url": g.url}),
                                       env={}))
        res_remote = run_wiki(remote, "ltgwiki", opts, Metrics())
        served = [line for line in g.logs() if '"route": "linkrecommendations"' in line]
    assert res_local.status == res_remote.status == "ok"
    assert res_remote.outcomes == res_local.outcomes
    assert res_local.outcomes["success"] >= 2, res_local.outcomes
    assert rows(remote) == rows(local)
    assert len(served) >= res_local.outcomes["success"]  # they came through the service


@pytest.mark.services
def test_service_recommender_unreachable_fails_the_run_and_config_is_checked(
        tmp_path, mediawiki, ltg_model):
    doc = runner_config(tmp_path, "down", mediawiki, ltg_model,
                        {"type": "service", "url": f"http://127.0.0.1:{free_port()}",
                         "max_attempts": 2, "backoff": 0.1, "timeout": 2})
    cfg = migrated(parse_config(doc, env={}))
    res = run_wiki(cfg, "ltgwiki", RunOptions(command="backfill", titles=("Latgola",)),
                   Metrics())
    assert res.status == "unavailable" and "recommendation service" in res.error
    assert res.exit_code == ExitCode.UNAVAILABLE
    with pytest.raises(ConfigError, match="^recommender.url"):
        parse_config(runner_config(tmp_path, "bad", mediawiki, ltg_model,
                                   {"type": "service"}), env={})

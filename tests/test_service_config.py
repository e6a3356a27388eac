"""The service reads the runner's wiki list through the one shared parser (model/wikis.py)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import yaml

from model.wikis import ConfigError, Wiki
from runner.config import load_config
from service.config import load_service_config, parse_service_config
from tests.model_fixtures import LTG_DUMP
from tests.service_support import REPO

SAMPLE = REPO / "runner" / "sample-config.yaml"


def test_runner_and_service_read_the_same_wiki_entries():
    env = {"ADDLINK_SAMPLE_DUMP": str(LTG_DUMP)}
    runner = load_config(SAMPLE, env=env)
    service = load_service_config(SAMPLE, env=env)
    assert set(runner.wikis) == set(service.wikis) == {"enwiki"}
    shared = [f.name for f in dataclasses.fields(Wiki)]
    for name, w in service.wikis.items():
        assert type(w) is Wiki
        assert {f: getattr(w, f) for f in shared} == \
            {f: getattr(runner.wikis[name], f) for f in shared}
    assert service.wikis["enwiki"].route == ("wikipedia", "en")
    assert load_service_config(env={"ADDLINK_CONFIG": str(SAMPLE), **env}).path == str(SAMPLE)


def doc(**service) -> dict:
    return {"service": service, "wikis": {
        "ltgwiki": {"language": "ltg", "model": "m", "source": {"type": "dump", "path": "x"},
                    "pool_target": 5, "criteria": {"minimum_link_score": 0.7}},
        "frwiktionary": {"language": "fr", "model": "m2",
                         "source": {"type": "api", "api_url": "http://127.0.0.1/api.php"}}}}


def test_routes_runner_fields_left_alone_and_errors_name_the_field():
    cfg = parse_service_config(doc(), env={})
    assert cfg.wikis["ltgwiki"].route == ("wikipedia", "ltg")
    assert cfg.wikis["frwiktionary"].route == ("wiktionary", "fr")
    assert cfg.api_url(cfg.wikis["frwiktionary"]) == "http://127.0.0.1/api.php"
    assert cfg.api_url(cfg.wikis["ltgwiki"]) is None
    templ = parse_service_config(doc(api_url="https://mw-int/{wiki}/api.php"), env={})
    assert templ.api_url(templ.wikis["ltgwiki"]) == "https://mw-int/ltgwiki/api.php"
    for bad, field in [({"deadline": 0}, "service.deadline"),
                       ({"max_body_bytes": "big"}, "service.max_body_bytes"),
                       ({"monitor": {"wiki": "dewiki"}}, "service.monitor.wiki"),
                       ({"proxy": "socks://x"}, "service.proxy"),
                       ({"colour": "blue"}, "service.colour")]:
        with pytest.raises(ConfigError) as e:
            parse_service_config(doc(**bad), env={})
        assert str(e.value).startswith(field), e.value
    broken = doc()
    broken["wikis"]["ltgwiki"]["language"] = None
    with pytest.raises(ConfigError, match="^wikis.ltgwiki.language"):
        parse_service_config(broken, env={})
    same = doc()
    same["wikis"]["ltgwiki2"] = dict(same["wikis"]["ltgwiki"], domain="ltg.wikipedia.org")
    with pytest.raises(ConfigError, match="^wikis.ltgwiki2: same project/domain"):
        parse_service_config(same, env={})


def test_cli_bad_config_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc(deadline=-1)))
    proc = subprocess.run([sys.executable, "-m", "service", "serve", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: service.deadline: must be > 0, got -1.0"
    usage = subprocess.run([sys.executable, "-m", "service", "check", "ftp://x"],
                           capture_output=True, text=True, timeout=60, cwd=REPO)
    assert usage.returncode == 2 and "not an http(s) URL" in usage.stderr

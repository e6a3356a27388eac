"""Config: production defaults, clear errors naming the field, ${ENV}, redacted secrets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from runner.config import (
    AUTO_FALLBACK,
    SAMPLE_CONFIG,
    ConfigError,
    load_config,
    parse_config,
    resolve_criteria,
)
from tests.model_fixtures import LTG_DUMP

DUMP = str(LTG_DUMP)


def minimal(**over) -> dict:
    doc = {"wikis": {"ltgwiki": {"language": "ltg", "model": "var/models/ltgwiki",
                                 "source": {"type": "dump", "path": DUMP}}}}
    doc.update(over)
    return doc


def test_sample_config_loads_with_spec_defaults():
    cfg = load_config(SAMPLE_CONFIG, env={"ADDLINK_SAMPLE_DUMP": DUMP})
    w = cfg.wiki("enwiki")
    assert w.source.type == "dump" and w.source.path == DUMP
    assert cfg.store.type == "sqlite" and cfg.events.type == "jsonlines"
    assert cfg.lock.type == "file" and cfg.metrics.type == "off"
    c = w.criteria
    assert (c.minimum_links_per_task, c.maximum_links_per_task,
            c.maximum_links_to_show_per_task, c.minimum_time_since_last_edit,
            c.minimum_word_count, c.maximum_word_count) == (2, 10, 3, 86400, 0, None)
    assert 0 < w.pool_target <= 106
    # the production defaults when nothing is configured (SPEC §5)
    d = parse_config(minimal(), env={}).wiki("ltgwiki")
    assert (d.pool_target, d.criteria.minimum_links_per_task, d.criteria.minimum_link_score,
            d.criteria.maximum_links_per_task, d.criteria.maximum_links_to_show_per_task,
            d.criteria.minimum_time_since_last_edit, d.criteria.minimum_word_count,
            d.criteria.maximum_word_count) == (500, 2, 0.75, 10, 3, 86400, 0, None)
    assert SAMPLE_CONFIG.name == "sample-config.yaml"


def test_defaults_merge_under_each_wiki():
    cfg = parse_config(minimal(defaults={"pool_target": 7, "criteria": {
        "minimum_link_score": 0.7, "excluded_templates": ["Stub"]}}), env={})
    w = cfg.wiki("ltgwiki")
    assert w.pool_target == 7 and w.criteria.minimum_link_score == 0.7
    assert w.criteria.excluded_templates == ("Stub",)
    assert w.criteria.minimum_links_per_task == 2


def test_minimum_link_score_auto_takes_the_models_suggestion_a_number_overrides():
    def wiki(score):
        doc = minimal()
        doc["wikis"]["ltgwiki"]["criteria"] = {"minimum_link_score": score}
        return parse_config(doc, env={}).wiki("ltgwiki")

    w = wiki("auto")
    assert w.criteria.minimum_link_score == "auto"
    manifest = {"training": {"suggested_minimum_link_score": 0.75}}
    got, origin = resolve_criteria(w, manifest)
    assert (got.criteria.minimum_link_score, origin) == (0.75, "model")
    assert got.criteria.minimum_links_per_task == w.criteria.minimum_links_per_task
    got, origin = resolve_criteria(w, {"training": {"auc": 0.8}})  # trained before auto
    assert got.criteria.minimum_link_score == AUTO_FALLBACK and origin.startswith("fallback")
    assert resolve_criteria(wiki(0.65), manifest)[0].criteria.minimum_link_score == 0.65


@pytest.mark.parametrize("patch, field", [
    ({"pool_target": "many"}, "wikis.ltgwiki.pool_target"),
    ({"criteria": {"minimum_link_score": 1.5}}, "wikis.ltgwiki.criteria.minimum_link_score"),
    ({"criteria": {"minimum_link_score": "autox"}},
     "wikis.ltgwiki.criteria.minimum_link_score"),
    ({"criteria": {"minimum_links_per_task": 20}},
     "wikis.ltgwiki.criteria.minimum_links_per_task"),
    ({"criteria": {"min_link_score": 0.5}}, "wikis.ltgwiki.criteria.min_link_score"),
    ({"source": {"type": "dump", "path": "/nope.xml"}}, "wikis.ltgwiki.source.path"),
    ({"source": {"type": "ftp"}}, "wikis.ltgwiki.source.type"),
    ({"source": {"type": "api"}}, "wikis.ltgwiki.source.api_url"),
    ({"candidates": {"strategy": "search"}}, "wikis.ltgwiki.candidates.strategy"),
    ({"language": None}, "wikis.ltgwiki.language"),
])
def test_bad_wiki_fields_are_named(patch, field):
    doc = minimal()
    doc["wikis"]["ltgwiki"].update(patch)
    with pytest.raises(ConfigError) as e:
        parse_config(doc, env={})
    assert str(e.value).startswith(field)


@pytest.mark.parametrize("doc, field", [
    ({"store": {"type": "mysql"}}, "store.url"),
    ({"store": {"type": "sqlite", "bogus": 1}}, "store.bogus"),
    ({"events": {"type": "eventgate"}}, "events.url"),
    ({"runner": {"workers": 0}}, "runner.workers"),
    ({"lokc": {}}, "lokc"),
])
def test_bad_sections_are_named(doc, field):
    with pytest.raises(ConfigError) as e:
        parse_config(minimal(**doc), env={})
    assert str(e.value).startswith(field)


def test_missing_wikis_and_unknown_wiki():
    with pytest.raises(ConfigError, match="^wikis"):
        parse_config({"store": {}}, env={})
    cfg = parse_config(minimal(), env={})
    with pytest.raises(ConfigError, match="wikis.dewiki: unknown wiki .*ltgwiki"):
        cfg.wiki("dewiki")


def test_several_wikis_need_a_store_per_wiki():
    doc = minimal()
    doc["wikis"]["enwiki"] = dict(doc["wikis"]["ltgwiki"], language="en")
    with pytest.raises(ConfigError, match=r"^store.path: .*\{wiki\}"):
        parse_config(doc, env={})
    doc["store"] = {"path": "var/{wiki}.sqlite"}
    cfg = parse_config(doc, env={})
    assert cfg.store.location("enwiki") == "var/enwiki.sqlite"


def test_env_expansion():
    doc = minimal(store={"type": "mysql", "url": "mysql://addlink@${DBHOST}/${DB:-addlink}"})
    cfg = parse_config(doc, env={"DBHOST": "db1"})
    assert cfg.store.url == "mysql://addlink@db1/addlink"
    with pytest.raises(ConfigError, match=r"^config.store.url: environment variable DBHOST"):
        parse_config(doc, env={})


def test_secrets_from_env_and_file_are_redacted(tmp_path, caplog):
    (tmp_path / "token").write_text("tok-from-file\n")
    doc = minimal(store={"type": "mysql", "url": "mysql://addlink@db/x",
                         "password_env": "DBPASS"},
                  events={"type": "eventgate", "url": "http://eg:8192",
                          "token_file": str(tmp_path / "token")})
    cfg = parse_config(doc, env={"DBPASS": "hunter2-very-secret"})
    assert cfg.store.password.reveal() == "hunter2-very-secret"
    assert cfg.events.token.reveal() == "tok-from-file"
    text = repr(cfg) + str(cfg.store) + f"{cfg.events}"
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("config %s", cfg)
    for shown in (text, caplog.text):
        assert "hunter2" not in shown and "tok-from-file" not in shown
        assert "env DBPASS" in shown and "<redacted>" in shown


@pytest.mark.parametrize("doc, message", [
    ({"store": {"type": "mysql", "url": "mysql://a@b/c", "password": "x"}},
     "store.password: secrets are not allowed"),
    ({"store": {"type": "mysql", "url": "mysql://a@b/c", "password_env": "NOPE"}},
     "store.password_env: environment variable NOPE is not set"),
    ({"events": {"type": "eventgate", "url": "http://x", "token_file": "/nonexistent"}},
     "events.token_file: cannot read /nonexistent"),
])
def test_secret_errors(doc, message):
    with pytest.raises(ConfigError, match="^" + message):
        parse_config(minimal(**doc), env={})


def test_api_source_bot_password(tmp_path):
    doc = minimal()
    doc["wikis"]["ltgwiki"]["source"] = {"type": "api", "api_url": "http://127.0.0.1/api.php",
                                         "bot_user": "Admin@ci", "bot_password_env": "BOTPW"}
    cfg = parse_config(doc, env={"BOTPW": "s3cr3t-bot"})
    assert cfg.wiki("ltgwiki").source.bot_password.reveal() == "s3cr3t-bot"
    assert "s3cr3t" not in repr(cfg)
    del doc["wikis"]["ltgwiki"]["source"]["bot_password_env"]
    with pytest.raises(ConfigError, match="bot_user and bot_password"):
        parse_config(doc, env={})


def test_yaml_off_and_file_errors(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(minimal()) + "metrics: {type: off}\n")
    assert load_config(p, env={}).metrics.type == "off"
    p.write_text("wikis: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p, env={})
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml", env={})


def test_event_stream_defaults_to_the_current_v1_stream():
    """The issue found the old ``.rc0`` stream as the default; it is ``.v1`` everywhere."""
    cfg = parse_config(minimal(), env={})
    assert cfg.events.stream == "mediawiki.cirrussearch.page_weighted_tags_change.v1"
    manifest = Path(__file__).resolve().parent.parent / "manifests" / "base" / "config.yaml"
    assert yaml.safe_load(manifest.read_text())["events"]["stream"] == cfg.events.stream

"""The command line as an operator (or the CronJob) runs it: exit codes, JSON logs, status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runner.lock import FileLock
from tests.runner_support import dump_slice, migrated

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def slice_dump(tmp_path_factory) -> str:
    return dump_slice(tmp_path_factory.mktemp("dump") / "ltg.xml", 300)


@pytest.fixture
def config(tmp_path, ltg_model, slice_dump) -> Path:
    doc = {"runner": {"workers": 2},
           "store": {"type": "sqlite", "path": str(tmp_path / "a.sqlite")},
           "events": {"type": "jsonlines", "path": str(tmp_path / "events.jsonl")},
           "lock": {"type": "file", "dir": str(tmp_path / "locks")},
           "wikis": {"ltgwiki": {
               "language": "ltg", "model": str(ltg_model), "pool_target": 2,
               "source": {"type": "dump", "path": slice_dump,
                          "cache_dir": str(tmp_path / "cache")},
               "candidates": {"strategy": "allpages"}}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return migrated(path)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def log_lines(out: str) -> list[dict]:
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def test_refresh_status_backfill(config):
    r = cli("--config", str(config), "refresh")
    assert r.returncode == 0, r.stderr
    lines = log_lines(r.stdout)
    assert all({"time", "level", "message"} <= set(x) for x in lines)
    evaluated = [x for x in lines if x["message"] == "evaluated"]
    assert evaluated and all({"wiki", "title", "outcome"} <= set(x) for x in evaluated)
    (done,) = [x for x in lines if x["message"] == "run finished"]
    assert (done["status"], done["stop_reason"], done["pool_after"]) == \
        ("ok", "target_reached", 2)

    r = cli("--config", str(config), "status", "--format", "json")
    assert r.returncode == 0
    (st,) = json.loads(r.stdout)["wikis"]
    assert st["wiki"] == "ltgwiki" and st["pool_size"] == 2 and st["target"] == 2
    assert st["last_run"]["status"] == "ok" and st["last_run"]["outcomes"]["success"] == 2
    assert st["outbox"] == {"pending": 0, "failed": 0}
    table = cli("--config", str(config), "status").stdout
    assert table.splitlines()[0].split()[:3] == ["wiki", "pool", "target"]
    assert table.splitlines()[1].split()[:3] == ["ltgwiki", "2", "2"]

    r = cli("--config", str(config), "backfill", "--wiki", "ltgwiki", "--page", "Leivuons",
            "--dry-run")
    assert r.returncode == 0
    (done,) = [x for x in log_lines(r.stdout) if x["message"] == "run finished"]
    assert done["evaluated"] == 1 and done["dry_run"] is True

    r = cli("--config", str(config), "revalidate", "--wiki", "ltgwiki", "--all", "--dry-run")
    assert r.returncode == 0
    (done,) = [x for x in log_lines(r.stdout) if x["message"] == "run finished"]
    assert done["outcomes"] == {"would_revalidate_all": 2}

    r = cli("--config", str(config), "revalidate", "--wiki", "ltgwiki", "--checksum-mismatch",
            "--older-than", "2001-01-15", "--score-below", "0.6", "--dry-run")
    (done,) = [x for x in log_lines(r.stdout) if x["message"] == "run finished"]
    assert r.returncode == 0 and done["outcomes"] == {}  # same model, newer, scores >= 0.6

    r = cli("--config", str(config), "drift", "--wiki", "ltgwiki")
    (done,) = [x for x in log_lines(r.stdout) if x["message"] == "run finished"]
    assert r.returncode == 0 and done["outcomes"] == {"clear": 0, "set": 0, "no_title": 0,
                                                   "dead_letters": 0, "tag_without_row": 0,
                                                   "row_without_tag": 0}


def test_lock_held_exits_3(config, tmp_path):
    lock = FileLock(str(tmp_path / "locks"), "ltgwiki")
    lock.acquire()
    try:
        r = cli("--config", str(config), "refresh")
    finally:
        lock.release()
    assert r.returncode == 3
    assert any(x["message"].startswith("lock held") for x in log_lines(r.stdout))


@pytest.mark.parametrize("args, message", [
    (("refresh", "--wiki", "dewiki"), "wikis.dewiki: unknown wiki"),
    (("refresh", "--shard", "3/3"), "need 0 <= i < N"),
    (("refresh", "--workers", "0"), "must be > 0"),
    (("revalidate", "--wiki", "ltgwiki"), "give at least one of"),
    (("backfill", "--wiki", "ltgwiki", "--titles-file", "/nonexistent"), "--titles-file"),
    (("backfill", "--wiki", "ltgwiki", "--page", "Leivuons", "--page", "A|B"),
     "invalid title 'A|B': contains '|'"),
    (("backfill", "--wiki", "ltgwiki", "--page", " "), "invalid title ' ': empty"),
])
def test_bad_usage_exits_2(config, args, message):
    r = cli("--config", str(config), *args)
    assert r.returncode == 2 and message in r.stderr


def test_bad_config_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("wikis: {ltgwiki: {language: ltg, model: m, pool_target: -1, "
                   "source: {type: api, api_url: 'http://x/api.php'}}}\n")
    r = cli("--config", str(bad), "refresh")
    assert r.returncode == 2 and "wikis.ltgwiki.pool_target: must be >= 0" in r.stderr

"""The command line as an operator (or the CronJob) runs it: exit codes, JSON logs, status."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from model.exitcodes import ExitCode
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
    assert st["last_refresh"]["status"] == "ok" and st["last_refresh"]["outcomes"]["success"] == 2
    assert st["last_command"] == st["last_refresh"]
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


@pytest.mark.parametrize("value, message", [
    ("autox", "wikis.ltgwiki.criteria.minimum_link_score: expected a number or 'auto', "
              "got 'autox'"),
    ("1.5", "wikis.ltgwiki.criteria.minimum_link_score: must be within [0, 1] or 'auto'"),
])
def test_a_bad_minimum_link_score_is_one_line_and_the_config_exit_code(tmp_path, value,
                                                                       message):
    bad = tmp_path / "bad.yaml"
    bad.write_text("wikis: {ltgwiki: {language: ltg, model: m, criteria: {minimum_link_score: "
                   f"{value}}}, source: {{type: api, api_url: 'http://x/api.php'}}}}}}\n")
    r = cli("--config", str(bad), "refresh")
    assert r.returncode == ExitCode.USAGE  # bad usage or configuration
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_status_separates_the_last_refresh_from_the_last_command(config):
    assert cli("--config", str(config), "refresh").returncode == 0
    r = cli("--config", str(config), "backfill", "--wiki", "ltgwiki", "--page", "Leivuons")
    assert r.returncode in (0, 2), r.stderr  # 2: the page is not an article of the slice
    (st,) = json.loads(cli("status", "--format", "json", "--config", str(config)).stdout)["wikis"]
    assert st["last_refresh"]["command"] == "refresh"
    assert st["last_refresh"]["stop_reason"] == "target_reached"
    assert st["last_command"]["command"] == "backfill"
    assert st["last_command"]["id"] > st["last_refresh"]["id"]
    head, row = cli("status", "--config", str(config)).stdout.splitlines()[:2]
    assert "last refresh" in head and "last command" in head
    assert "target_reached" in row and "backfill " in row


def _tree(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root``: size, mtime and sha256 (what "writes nothing" compares)."""
    import hashlib

    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns,
                                       hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_dry_runs_write_nothing(config, tmp_path):
    """After a real refresh (store, events, run log, resume point, caches all there), every
    dry run leaves every file byte for byte and mtime for mtime as it was."""
    assert cli("--config", str(config), "refresh").returncode == 0
    before = _tree(tmp_path)
    for args in (("refresh", "--dry-run", "--target", "6"),
                 ("backfill", "--wiki", "ltgwiki", "--page", "Leivuons", "--dry-run"),
                 ("revalidate", "--wiki", "ltgwiki", "--all", "--dry-run"),
                 ("drift", "--wiki", "ltgwiki", "--resend", "--dry-run"),
                 ("migrate", "--print")):
        r = cli("--config", str(config), *args)
        assert r.returncode in (0, 2), (args, r.stderr)
        if args[0] == "refresh":
            (done,) = [x for x in log_lines(r.stdout) if x["message"] == "run finished"]
            assert done["dry_run"] and done["evaluated"] > 0, done
        assert _tree(tmp_path) == before, args


def test_a_dry_run_on_a_store_never_migrated_creates_nothing(tmp_path, ltg_model, slice_dump):
    """The issue's case: refresh --dry-run created the SQLite file. Now: exit 2 naming
    migrate, and no store, events file, lock or run log anywhere (only the source's cache
    directory, for the model's verdict)."""
    work = tmp_path / "work"
    doc = {"store": {"type": "sqlite", "path": str(work / "db" / "a.sqlite")},
           "events": {"type": "jsonlines", "path": str(work / "events" / "e.jsonl")},
           "lock": {"type": "file", "dir": str(work / "locks")},
           "wikis": {"ltgwiki": {"language": "ltg", "model": str(ltg_model),
                                 "source": {"type": "dump", "path": slice_dump,
                                            "cache_dir": str(tmp_path / "cache")}}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = cli("--config", str(path), "refresh", "--dry-run")
    assert r.returncode == 2 and "migrate" in r.stderr.strip().splitlines()[-1], r.stderr
    assert not work.exists()
    assert {p.name for p in (tmp_path / "cache").iterdir()} <= {"model-verdicts.json"}


def test_the_config_is_never_a_silent_default(tmp_path, config):
    """No --config and no ADDLINK_CONFIG: one line, exit 2, nothing written where it ran
    (before, the bundled sample would have been refreshed). ADDLINK_CONFIG is the default."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "ADDLINK_CONFIG"}
    env["PYTHONPATH"] = str(REPO)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    r = subprocess.run([sys.executable, "-m", "runner", "status"], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == ("error: no configuration: pass --config FILE or set "
                                "ADDLINK_CONFIG (runner/sample-config.yaml is the offline "
                                "sample of make run)")
    assert list(cwd.iterdir()) == []
    env["ADDLINK_CONFIG"] = str(config)
    r = subprocess.run([sys.executable, "-m", "runner", "status", "--format", "json"],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["wikis"][0]["wiki"] == "ltgwiki"


def test_global_options_before_or_after_the_command(config):
    for args in (("--log-level", "warning", "--config", str(config), "refresh"),
                 ("refresh", "--config", str(config), "--log-level", "warning"),
                 ("--config", str(config), "refresh", "--quiet")):
        r = cli(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert log_lines(r.stdout) == [], args  # warnings only: a clean run logs none
    r = cli("--config", str(config), "--log-level", "warning", "status", "--log-format", "json")
    assert r.returncode == 0 and r.stdout.startswith("wiki")


def test_a_failed_run_is_one_line_on_stderr_with_its_exit_code(config, tmp_path):
    """A run's error is in its JSON log record and also the one line on stderr."""
    doc = yaml.safe_load(config.read_text())
    doc["wikis"]["ltgwiki"]["model"] = str(tmp_path / "no-model")
    config.write_text(yaml.safe_dump(doc))
    r = cli("--config", str(config), "refresh")
    assert r.returncode == 8
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: ltgwiki: model ") and "no-model" in line
    assert "Traceback" not in r.stdout + r.stderr


# ---- what a person at a terminal sees, and what a CronJob sees ------------------------------

def test_refresh_on_a_terminal_text_logs_progress_line_and_summary(config):
    from tests.cli_support import TEXT_RECORD, bar_states, in_terminal

    code, out = in_terminal("-m", "runner", "--config", str(config), "refresh")
    assert code == 0, out[-3000:]
    assert '{"time"' not in out  # text, not JSON, on a terminal
    records = TEXT_RECORD.findall(out)
    assert records and re.search(r"Z INFO evaluated wiki=ltgwiki title=\S", out), out[-3000:]
    states = bar_states(out, "ltgwiki refresh")
    assert states and "2/2" in states[-1] and states[-1].startswith("ltgwiki refresh: 100%"), \
        states
    assert all(int(re.search(r"(\d+)/2", s)[1]) <= 2 for s in states if re.search(r"/2", s))
    assert "ltgwiki: ok (target_reached)" in out  # the summary

    # --log-format wins over the terminal; --quiet drops the records, bar and summary.
    code, out = in_terminal("-m", "runner", "--config", str(config), "refresh",
                            "--log-format", "json", "--target", "3")
    records = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert code == 0 and records and not TEXT_RECORD.search(out)
    code, out = in_terminal("-m", "runner", "--config", str(config), "--quiet", "refresh",
                            "--target", "4")
    assert code == 0 and out.strip() == "", out[-2000:]


def test_backfill_on_a_terminal_counts_the_pages(config):
    from tests.cli_support import bar_states, in_terminal

    code, out = in_terminal("-m", "runner", "backfill", "--config", str(config),
                            "--wiki", "ltgwiki", "--page", "Leivuons", "--dry-run")
    assert code == 0, out[-3000:]
    states = bar_states(out, "ltgwiki backfill")
    assert states and "1/1" in states[-1], states


def test_no_terminal_json_lines_with_milliseconds_and_no_progress_line(config):
    from tests.cli_support import TIME_MS, piped

    r = piped("-m", "runner", "--config", str(config), "refresh")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines and all(json.loads(x) for x in lines)  # every line a JSON record
    assert all(re.fullmatch(TIME_MS, json.loads(x)["time"]) for x in lines)
    assert r.stderr == ""  # no bar, no summary

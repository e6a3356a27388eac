"""benchmarks/capacity.py: the arithmetic on a small hand-checkable input, and its refusals."""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load_capacity():
    spec = importlib.util.spec_from_file_location("capacity", REPO / "benchmarks/capacity.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["capacity"] = module
    spec.loader.exec_module(module)
    return module


capacity = _load_capacity()

# Round numbers so every expected value below can be checked by hand.
SMALL = {
    "format": 1,
    "command": "hand-made test input",
    "wiki": "testwiki",
    "workers": 2,
    "pages_evaluated": 1000,
    "pages_per_second_per_worker": 2.0,
    "cpu_per_worker": 0.5,
    "worker_rss_mb": 200.0,
    "parent_rss_mb": 100.0,
}


@pytest.fixture
def small(tmp_path) -> Path:
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(SMALL))
    return path


def test_plan_arithmetic(small):
    m = capacity.load_measurement(small)
    a = capacity.Assumptions(wikis=10, pool_target=1000, churn=0.1, success_rate=0.25,
                             workers=2, runs_per_day=24, max_runtime=1000.0,
                             startup_seconds=10.0, memory_headroom=1.0, backfill_shards=4)
    p = capacity.plan(m, a)
    # 1000 x 0.1 / 0.25 = 400 evaluations per wiki per day; 10 wikis -> 4000.
    assert p.evaluations_per_wiki_per_day == pytest.approx(400)
    assert p.evaluations_per_day == pytest.approx(4000)
    # 4000 evaluations at 2 pages/s/worker = 2000 worker-seconds; x 0.5 cores / 86400 s.
    assert p.worker_seconds_per_day == pytest.approx(2000)
    assert p.average_cores == pytest.approx(2000 / 86400 * 0.5)
    # 400 / 24 runs = 16.67 evaluations per run; / (2 workers x 2 pages/s) + 10 s startup.
    assert p.evaluations_per_wiki_per_run == pytest.approx(400 / 24)
    assert p.seconds_per_wiki_run == pytest.approx(400 / 24 / 4 + 10)
    # floor(1000 / 14.1667) = 70 wikis per group >= 10 wikis: one group.
    assert p.wikis_per_group == 70
    assert p.groups == 1
    # Memory: 100 + 2 x 200 = 500 MiB -> 512 MiB; CPU: 2 x 0.5 = 1 core.
    assert p.pod_memory_mib == 512
    assert p.pod_cpu == pytest.approx(1.0)
    assert p.peak_memory_mib == 512
    # 10 wikis x 14.1667 s x 24 runs / 86400 s.
    assert p.busy_fraction == pytest.approx(10 * (400 / 24 / 4 + 10) * 24 / 86400)
    # Fill: 1000 / 0.25 = 4000 evaluations per wiki; 4 shards x 2 workers x 2 pages/s = 16/s.
    assert p.fill_evaluations_per_wiki == pytest.approx(4000)
    assert p.fill_hours_per_wiki == pytest.approx(4000 / 16 / 3600)
    # All wikis by one group: 40000 / (1 x 2 x 2 x 1000 s x 24 runs) days.
    assert p.fill_days_all_wikis == pytest.approx(40000 / (4 * 1000 * 24))


def test_groups_split_when_a_group_would_overrun_max_runtime(small):
    m = capacity.load_measurement(small)
    a = capacity.Assumptions(wikis=300, pool_target=20000, churn=0.05, success_rate=0.2,
                             workers=2, runs_per_day=24, max_runtime=3000.0,
                             startup_seconds=10.0)
    p = capacity.plan(m, a)
    # 20000 x 0.05 / 0.2 = 5000/day; /24 = 208.3 per run; /4 per s = 52.08 s + 10 s.
    assert p.seconds_per_wiki_run == pytest.approx(5000 / 24 / 4 + 10)
    assert p.wikis_per_group == 48  # floor(3000 / 62.08)
    assert p.groups == 7  # ceil(300 / 48)
    assert p.wikis_per_group * p.seconds_per_wiki_run <= a.max_runtime


def test_pod_resources_round_up_and_scale_with_workers(small):
    m = capacity.load_measurement(small)
    one = capacity.pod_resources(m, 1, headroom=1.25)
    # (100 + 200) x 1.25 = 375 -> 384 MiB; 0.5 cores -> 500m.
    assert one == {"requests": {"cpu": "500m", "memory": "384Mi"},
                   "limits": {"cpu": "1000m", "memory": "384Mi"}}
    four = capacity.pod_resources(m, 4, headroom=1.25)
    # (100 + 800) x 1.25 = 1125 -> 1152 MiB; 4 x 0.5 = 2 cores requested, 4 allowed.
    assert four == {"requests": {"cpu": "2000m", "memory": "1152Mi"},
                    "limits": {"cpu": "4000m", "memory": "1152Mi"}}
    # 0.33 cores per worker rounds up to the next 100m.
    m3 = capacity.Measurement(**{**m.__dict__, "cpu_per_worker": 0.33})
    assert capacity.pod_resources(m3, 2)["requests"]["cpu"] == "700m"
    with pytest.raises(ValueError):
        capacity.pod_resources(m, 0)


def test_missing_input_fails_clearly(tmp_path, capsys):
    missing = tmp_path / "nothing.json"
    with pytest.raises(capacity.InputError, match="measurement file not found"):
        capacity.load_measurement(missing)
    code = capacity.main(["plan", "--input", str(missing), "--wikis", "300",
                          "--pool-target", "3000", "--churn", "0.05", "--success-rate", "0.3"])
    captured = capsys.readouterr()
    assert code == 2
    assert "nothing.json" in captured.err and "not found" in captured.err
    assert captured.out == ""  # no figures at all


@pytest.mark.parametrize(("change", "message"), [
    ({"format": 2}, "format"),
    ({"worker_rss_mb": None}, "worker_rss_mb"),
    ({"pages_per_second_per_worker": 0}, "pages_per_second_per_worker"),
    ({"workers": 1.5}, "workers"),
    ({"command": ""}, "command"),
    ({"cpu_per_worker": 3.0}, "cpu_per_worker"),
])
def test_bad_input_names_the_field(tmp_path, change, message):
    data = {**SMALL, **change}
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(capacity.InputError, match=message):
        capacity.load_measurement(path)


def test_bad_assumptions_are_refused(small):
    m = capacity.load_measurement(small)
    with pytest.raises(ValueError, match="success_rate"):
        capacity.plan(m, capacity.Assumptions(wikis=1, pool_target=1, churn=0.1,
                                              success_rate=0.0))
    with pytest.raises(ValueError, match="overlap"):
        capacity.plan(m, capacity.Assumptions(wikis=1, pool_target=1, churn=0.1,
                                              success_rate=0.5, max_runtime=4000,
                                              runs_per_day=24))
    with pytest.raises(ValueError, match="more than max_runtime"):
        capacity.plan(m, capacity.Assumptions(wikis=1, pool_target=10**7, churn=1.0,
                                              success_rate=0.1))


def test_cli_json_and_doc_update(small, tmp_path, capsys):
    args = ["plan", "--input", str(small), "--wikis", "10", "--pool-target", "1000",
            "--churn", "0.1", "--success-rate", "0.25", "--max-runtime", "1000",
            "--memory-headroom", "1.0"]
    assert capacity.main([*args, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plan"]["evaluations_per_day"] == pytest.approx(4000)
    assert out["plan"]["pod_memory_mib"] == 512

    doc = tmp_path / "ops.md"
    doc.write_text(f"# Ops\n\n{capacity.DOC_BEGIN}\nold\n{capacity.DOC_END}\n\nafter\n")
    assert capacity.main([*args, "--update-doc", str(doc)]) == 0
    printed = capsys.readouterr().out
    text = doc.read_text()
    assert "old" not in text and text.endswith("\n\nafter\n")
    section = capacity.doc_section(doc)
    assert section == printed
    assert "| CronJob groups | 1 |" in section
    assert "--update-doc" not in section  # the recorded command reproduces the section


# --- measure: the real runner, a real process tree ------------------------------------------

LTG_DUMP = REPO.parent / "shared" / "data" / "dumps" / "ltgwiki-20170901-pages-articles.xml.bz2"


@pytest.fixture(scope="module")
def ltg_model_dir(ltg_model) -> Path:
    """The session's ltgwiki model (tests/model_fixtures.py)."""
    return Path(ltg_model)


def test_measure_a_real_runner_run(ltg_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # python -m runner from the checkout
    config = tmp_path / "config.yaml"
    config.write_text(f"""
store: {{type: sqlite, path: {tmp_path}/addlink.sqlite}}
events: {{type: jsonlines, path: {tmp_path}/events.jsonl}}
lock: {{type: file, dir: {tmp_path}/locks}}
metrics: {{type: "off"}}
wikis:
  ltgwiki:
    language: ltg
    model: {ltg_model_dir}
    pool_target: 100000
    source: {{type: dump, path: {LTG_DUMP}, complete: true, cache_dir: {tmp_path}/cache}}
    candidates: {{strategy: random, seed: 1}}
""")
    command = [sys.executable, "-m", "runner", "--config", str(config), "--log-format=json",
               "refresh", "--wiki=ltgwiki", "--workers=2", "--limit=80"]
    record = capacity.measure(command, machine="test")
    out = tmp_path / "m.json"
    out.write_text(json.dumps(record))
    m = capacity.load_measurement(out)  # what measure writes, plan accepts
    assert m.workers == 2 and m.wiki == "ltgwiki"
    assert 0 < m.pages_evaluated <= 80
    assert m.pages_evaluated == sum(record["outcomes"].values())
    # A Python process with numpy and xgboost loaded is tens of MiB; the workers load the
    # model on top of what the main process has.
    assert 20 < m.parent_rss_mb < 300 and 20 < m.worker_rss_mb < 300
    assert 0 < m.cpu_per_worker <= 1.5
    assert record["cpu_seconds"] > 0.5  # the workers' CPU is counted, not only the parent's
    assert m.pages_per_second_per_worker > 0


def test_measure_refuses_a_failed_or_silent_run(tmp_path):
    with pytest.raises(capacity.InputError, match="--workers"):
        capacity.measure([sys.executable, "-c", "pass"])
    with pytest.raises(capacity.InputError, match="exited 3"):
        capacity.measure([sys.executable, "-c", "import sys; sys.exit(3)", "--workers=1"])
    with pytest.raises(capacity.InputError, match="run finished"):
        capacity.measure([sys.executable, "-c", "print('hello')", "--workers=1"])


def test_operations_doc_capacity_section_is_what_its_command_prints(capsys, monkeypatch):
    """docs/operations.md's capacity figures are regenerated output, not edited by hand."""
    monkeypatch.chdir(REPO)  # the recorded command uses repository-relative paths
    doc = REPO / "docs" / "operations.md"
    section = capacity.doc_section(doc)
    command = section.split("`", 2)[1]
    words = shlex.split(command)
    assert words[:2] == ["python", "benchmarks/capacity.py"], command
    assert capacity.main(words[2:]) == 0, f"the recorded command fails: {command}"
    assert capsys.readouterr().out == section, (
        "docs/operations.md is stale: rerun its capacity command with --update-doc")

"""Parallel training: the same model for any number of workers, the ordered map, the reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mwxml
import pytest

from model.dump import open_file, pages
from model.parallel import available_cpus, ordered_map, recorded, recording, stage
from model.text import normalize_title
from model.train import Settings, pair_sample, train_model
from tests.model_fixtures import DUMPS, EN_DUMP, LTG_DUMP, OWN_ROWS, REPO

RUN_FIELDS = ("seconds", "timing")


def _model_bytes(model) -> dict[str, bytes]:
    out = {}
    for f in sorted(model.iterdir()):
        if f.name == "manifest.json":
            manifest = json.loads(f.read_text(encoding="utf-8"))
            for field in RUN_FIELDS:
                manifest.pop(field)
            out[f.name] = json.dumps(manifest, sort_keys=True).encode()
        else:
            out[f.name] = f.read_bytes()
    return out


@pytest.mark.parametrize("workers", [2, 3])
def test_any_number_of_workers_gives_the_same_model(ltg_model, tmp_path, workers):
    """ltgwiki (the smallest shared dump) trained in 2 and 3 processes equals the 1-process
    model (the session fixture): every file byte for byte, the manifest but its run fields."""
    manifest = train_model(LTG_DUMP, tmp_path / "m", Settings(seed=1, workers=workers))
    assert manifest["timing"]["workers"] == workers
    reference = json.loads((ltg_model / "manifest.json").read_text())
    assert reference["timing"]["workers"] == 1
    assert _model_bytes(tmp_path / "m") == _model_bytes(ltg_model)
    stages = {s["stage"]: s for s in manifest["timing"]["stages"]}
    assert {"parse", "resolve", "link probability", "fold models and pairs",
            "classifier"} <= set(stages)
    # Done by the workers: the parsing, the folds, the classifier fits; the sentence rules
    # in a background process.
    for name in ("parse", "fold models and pairs", "classifier", "abbreviations"):
        assert stages[name]["worker_cpu_s"] > 0, name
    assert stages["parse"]["worker_private_peak_mb"] > 0
    parse = next(s for s in reference["timing"]["stages"] if s["stage"] == "parse")
    assert parse["worker_cpu_s"] == 0  # one worker: all in this process


def test_a_snowball_wiki_trains_the_same_in_two_workers(en_model, tmp_path):
    """English has a Snowball stemmer (a C object inside every fold model the workers send
    back): 2 processes give the 1-process model, byte for byte."""
    manifest = train_model(EN_DUMP, tmp_path / "m", Settings(seed=1, workers=2))
    assert manifest["stemmer"]["method"] == "snowball"
    assert _model_bytes(tmp_path / "m") == _model_bytes(en_model)


def test_ordered_map_keeps_input_order_and_runs_closures():
    offset = 1000  # a closure: inherited by the forked workers, never pickled
    items = list(range(300))
    for workers in (1, 2, 3):
        assert list(ordered_map(lambda i: i * i + offset, iter(items), workers, batch=7)) == [
            i * i + offset for i in items
        ]


def test_ordered_map_reads_ahead_a_bounded_window():
    """The reader is not drained into memory: at most workers * WINDOW batches in flight."""
    from model import parallel

    taken = []

    def source():
        for i in range(10_000):
            taken.append(i)
            yield i

    results = ordered_map(lambda i: i, source(), 2, batch=10)
    assert next(results) == 0
    assert len(taken) <= 2 * parallel.WINDOW * 10 + 10
    results.close()


def test_a_worker_error_reaches_the_caller():
    def fail(i: int) -> int:
        if i == 57:
            raise ValueError("article 57 is broken")
        return i

    with pytest.raises(ValueError, match="article 57 is broken"):
        list(ordered_map(fail, range(100), 2, batch=4))


def test_stages_record_wall_cpu_and_memory():
    with recording():
        with stage("square"):
            list(ordered_map(lambda i: sum(range(i)), range(2000), 2))
        stages = recorded()
    assert recorded() == []  # nothing kept outside recording()
    (square,) = stages
    assert square["stage"] == "square" and square["wall_s"] >= 0
    assert square["worker_cpu_s"] > 0 and square["rss_peak_mb"] > 0


def test_available_cpus_is_at_least_one():
    assert available_cpus() >= 1


@pytest.mark.parametrize("dump", sorted(DUMPS.glob("*.xml.*")), ids=lambda p: p.name[:6])
def test_reader_gives_the_pages_mwxml_gives(dump):
    """The ElementTree reader and mwxml agree on every page of every shared dump."""
    expected = []
    for page in mwxml.Dump.from_file(open_file(dump)):
        revisions = list(page)
        if not revisions:
            continue
        last = revisions[-1]
        expected.append((
            page.id, normalize_title(page.title), page.namespace,
            normalize_title(page.redirect) if page.redirect else None, last.id,
            float(last.timestamp.unix()) if last.timestamp else 0.0, last.text or "",
        ))
    got = [(p.page_id, p.title, p.namespace, p.redirect, p.rev_id, p.timestamp, p.text)
           for p in pages(dump)]
    assert got == expected and len(got) > 100


def test_pair_sample_is_seeded_capped_and_order_free():
    titles = [f"Title {i}" for i in range(1000)]
    assert pair_sample(titles, 1000, seed=1) is None  # at or below the cap: every article
    sample = pair_sample(titles, 100, seed=1)
    assert len(sample) == 100
    assert pair_sample(list(reversed(titles)), 100, seed=1) == sample
    assert pair_sample(titles, 100, seed=2) != sample


def test_cli_refuses_a_zero_worker_count(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "model", "train", "--wiki", "ltgwiki", "--dump", str(LTG_DUMP),
         "--out", str(tmp_path / "m"), "--workers", "0"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert run.returncode == 2
    assert "0 is not a positive number of workers" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_subset_model_pairs_only_its_articles_for_any_worker_count(ltg_corpus, ltg_model,
                                                                     tmp_path):
    """A backtest trains on half the articles: its training pairs come from that half only
    (not the whole corpus), the same with 1 and 2 workers."""
    from model.backtest import in_test_half
    from model.train import build_model

    train = {t for t in ltg_corpus.articles if not in_test_half(t, 1)}
    manifests = [build_model(ltg_corpus, tmp_path / f"m{w}",
                             Settings(seed=1, workers=w, prior=OWN_ROWS), include=train)
                 for w in (1, 2)]
    assert manifests[0]["checksums"] == manifests[1]["checksums"]
    whole = json.loads((ltg_model / "manifest.json").read_text())["counts"]["training_pairs"]
    assert manifests[0]["counts"]["training_pairs"] < 0.7 * whole


def test_a_dump_in_part_files_gives_the_model_of_the_one_file(ltg_model, tmp_path):
    """ltgwiki cut into 3 part files at page boundaries (each with the XML header and footer,
    as published parts are), given in reverse order and read by 2 workers, one part each at a
    time: the model of the one file read by one process, byte for byte."""
    from model.dump import parts, write_parts

    cut = write_parts(LTG_DUMP, 3, tmp_path / "parts")
    assert len(cut) == 3
    assert [len(list(pages(p))) for p in cut] != [0, 0, 0]
    assert sum(len(list(pages(p))) for p in cut) == len(list(pages(LTG_DUMP)))
    assert parts(list(reversed(cut))) == cut  # page order, whatever order they are given in
    manifest = train_model(list(reversed(cut)), tmp_path / "m", Settings(seed=1, workers=2))
    assert _model_bytes(tmp_path / "m") == _model_bytes(ltg_model)
    parse = next(s for s in manifest["timing"]["stages"] if s["stage"] == "parse")
    assert parse["worker_cpu_s"] > parse["cpu_s"]  # the parts were read by the workers


def test_cli_refuses_parts_of_different_wikis(tmp_path):
    """``--dump`` repeated: the parts of one dump; parts of two wikis are a usage error."""
    from model.dump import write_parts

    ltg = write_parts(LTG_DUMP, 2, tmp_path / "ltg")
    run = subprocess.run(
        [sys.executable, "-m", "model", "train", "--wiki", "ltgwiki", "--dump", str(ltg[0]),
         "--dump", str(EN_DUMP), "--dump", str(ltg[1]), "--out", str(tmp_path / "m")],
        cwd=REPO, capture_output=True, text=True,
    )
    assert run.returncode == 2
    assert "the dump parts are of different wikis: enwiki, ltgwiki" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_background_step_returns_its_result_or_raises_its_error_and_counts_its_cpu():
    from model.parallel import Background

    with recording():
        with stage("beside"):
            step = Background(lambda: sum(i * i for i in range(2_000_000)))
            assert step.result() == sum(i * i for i in range(2_000_000))
        (beside,) = recorded()
    assert beside["worker_cpu_s"] > 0  # reaped by result(): its CPU counts for the stage
    failing = Background(lambda: 1 // 0)
    with pytest.raises(ZeroDivisionError):
        failing.result()


def test_stop_background_kills_and_reaps_a_running_step():
    """Ctrl-C or an error in train: the Punkt child must not run on (nor log) after it."""
    import time

    from model.parallel import Background, _live, stop_background

    step = Background(lambda: time.sleep(60))
    pid = step._pid
    assert pid in _live
    started = time.monotonic()
    stop_background()
    assert time.monotonic() - started < 10  # killed, not waited for
    assert pid not in _live
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)


def test_a_background_step_dies_with_its_parent(tmp_path):
    """The parent killed outright (no cleanup runs): PR_SET_PDEATHSIG ends the child."""
    import subprocess
    import sys
    import time

    script = (
        "import os, sys, time\n"
        "from model.parallel import Background\n"
        "step = Background(lambda: time.sleep(60))\n"
        "print(step._pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    child = int(proc.stdout.readline())
    os.kill(child, 0)  # running
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:  # gone, or a zombie waiting for whoever inherited it to reap it: not running
            if Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.05)
    else:
        os.kill(child, 9)
        pytest.fail(f"background child {child} outlived its killed parent")

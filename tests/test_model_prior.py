"""Other wikis' training rows as a classifier's prior (model/prior.py), on real models.

Every model keeps a sample of its own training rows; training another wiki with them as its
prior joins them at a share the folds choose, records what it chose, and refuses a prior it
cannot use (its own wiki's, another feature set's, a model without rows) in one line.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from model import open_model
from model import prior as priors
from model.datasets import DatasetError, file_checksum
from model.dump import pages
from model.features import FEATURE_SETS
from model.recommend import recommend
from model.train import Settings, train_model
from tests.model_fixtures import REPO
from tests.runner_support import dump_slice


def test_a_model_keeps_its_own_training_rows(en_model):
    manifest = json.loads((en_model / "manifest.json").read_text())
    with np.load(en_model / priors.FILE) as rows:
        x, y = rows["x"], rows["y"]
        assert str(rows["wiki"]) == "enwiki" and str(rows["features"]) == "full"
    assert manifest["counts"]["training_pairs"] <= priors.ROWS  # so all of them are kept
    assert x.shape == (manifest["counts"]["training_pairs"], len(FEATURE_SETS["full"]))
    assert int(y.sum()) == manifest["counts"]["positives"]
    assert set(np.unique(y)) == {0.0, 1.0}
    # The manifest lists it with its checksum like every other file the model has.
    assert priors.FILE in manifest["files"]


def test_sampled_to_at_most_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(priors, "ROWS", 10)
    x = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    y = (np.arange(50) % 2).astype(np.float32)
    priors.save(tmp_path / "r.npz", x, y, wiki="xxwiki", features="full", seed=4)
    with np.load(tmp_path / "r.npz") as kept:
        assert kept["x"].shape == (10, 3)
        # the rows kept are rows of the input, each with its own label, in row order
        index = (kept["x"][:, 0] // 3).astype(int)
        assert list(index) == sorted(index) and (kept["y"] == y[index]).all()


def test_a_prior_that_cannot_be_used_is_refused(tmp_path, en_model):
    columns = len(FEATURE_SETS["full"])
    with pytest.raises(ValueError, match="enwiki itself cannot be its prior"):
        priors.load([en_model], wiki="enwiki", features="full", columns=columns)
    with pytest.raises(DatasetError, match="reference"):
        priors.load([en_model], wiki="ltgwiki", features="reference",
                    columns=len(FEATURE_SETS["reference"]))
    narrow = tmp_path / "narrow.npz"
    priors.save(narrow, np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1], np.float32),
                wiki="xxwiki", features="full", seed=1)
    with pytest.raises(DatasetError, match="3 features.*retrain it"):
        priors.load([narrow], wiki="ltgwiki", features="full", columns=columns)
    with pytest.raises(DatasetError, match="no prior.rows.npz"):
        priors.load([tmp_path], wiki="ltgwiki", features="full", columns=columns)
    got = priors.load([en_model], wiki="ltgwiki", features="full", columns=columns)
    assert got.wikis == ("enwiki",) and got.x.shape[1] == columns


def test_training_with_another_wikis_rows(tmp_path, en_model):
    dump = dump_slice(tmp_path / "slice.xml", 250)
    out = tmp_path / "ltg-prior"
    manifest = train_model(dump, out, Settings(seed=1, workers=2, prior=(str(en_model),)))
    prior = manifest["training"]["prior"]
    en = json.loads((en_model / "manifest.json").read_text())
    assert prior["wikis"] == ["enwiki"]
    assert prior["sha256"] == [en["files"][priors.FILE]]  # exactly which rows taught it
    assert prior["rows"] == en["counts"]["training_pairs"]
    # The share shipped is the one whose best out-of-fold log loss is lowest (ties to less).
    losses = {float(r): v for r, v in prior["log_loss"].items()}
    assert set(losses) == set(priors.RATIOS)
    assert prior["ratio"] == min(losses, key=lambda r: (round(losses[r], 6), r))
    assert manifest["training"]["rounds_log_loss"][str(manifest["training"]["rounds"])] == \
        pytest.approx(losses[prior["ratio"]], abs=1e-6)
    # Its own rows only, for the next wiki: the prior's are not passed on.
    with np.load(out / priors.FILE) as rows:
        assert len(rows["y"]) == manifest["counts"]["training_pairs"]
        assert str(rows["wiki"]) == "ltgwiki"
    # It recommends like any model: the slice's longest article, scored at threshold 0.
    page = max((p for p in pages(dump) if p.namespace == 0 and not p.redirect),
               key=lambda p: len(p.text))
    model = open_model(out)
    try:
        got = recommend(model, page.text, title=page.title, threshold=0.0)
    finally:
        model.close()
    assert got["links"] and all(0.0 <= link["score"] <= 1.0 for link in got["links"])


def _train(tmp_path, *prior: str) -> subprocess.CompletedProcess:
    dump = dump_slice(tmp_path / "slice.xml", 60)
    args = [sys.executable, "-m", "model", "train", "--wiki", "ltgwiki", "--dump", dump,
            "--out", str(tmp_path / "out"), "--workers", "1"]
    for p in prior:
        args += ["--prior", p]
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)


def _last_line(done: subprocess.CompletedProcess) -> str:
    """The error line, after the log's record of the failure and nothing else: no stage of
    training ran (the prior is checked before the dump is read), no traceback."""
    *log, last = done.stderr.strip().splitlines()
    assert [json.loads(line)["message"] for line in log] == ["failed"], done.stderr
    return last


def test_cli_refuses_the_wikis_own_model_as_its_prior(tmp_path, ltg_model):
    done = _train(tmp_path, str(ltg_model))
    assert done.returncode == 2, done.stderr
    assert _last_line(done) == \
        f"error: prior {ltg_model}: a model of ltgwiki itself cannot be its prior"
    assert not (tmp_path / "out").exists()  # refused before any work, nothing written


def test_cli_refuses_a_model_without_rows(tmp_path):
    empty = tmp_path / "old-model"
    empty.mkdir()
    done = _train(tmp_path, str(empty))
    assert done.returncode == 8, done.stderr  # MODEL_INVALID, docs/runner.md
    assert _last_line(done) == f"error: prior {empty}: no {priors.FILE} (a model trained " \
        "before priors existed keeps none; retrain it)"
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ the shipped prior

def test_the_shipped_rows_are_of_this_versions_features():
    """One file per shared dump, of the features this code computes: a feature change that
    did not make them again (scripts/prior_rows.py) fails here, not in a user's training."""
    files = sorted(priors.SHIPPED.glob("*.npz"))
    dumps = sorted((REPO.parent / "shared" / "data" / "dumps").glob("*.xml*"))
    assert [f.stem for f in files] == sorted(d.name.split("-")[0] for d in dumps)
    for path in files:
        with np.load(path) as rows:
            x, y = rows["x"], rows["y"]
            assert str(rows["wiki"]) == path.stem and str(rows["features"]) == "full"
        assert x.shape == (len(y), len(FEATURE_SETS["full"])) and 0 < len(y) <= \
            priors.SHIPPED_ROWS
        assert set(np.unique(y)) == {0.0, 1.0}
        assert np.isfinite(x[~np.isnan(x)]).all()


def test_the_shipped_prior_leaves_the_wikis_own_rows_out():
    every = {f.stem for f in priors.SHIPPED.glob("*.npz")}
    assert {f.stem for f in priors.shipped(wiki="ltgwiki", features="full")} == \
        every - {"ltgwiki"}
    assert {f.stem for f in priors.shipped(wiki="xxwiki", features="full")} == every
    # The reference's feature set is the reference's classifier: no prior.
    assert priors.shipped(wiki="xxwiki", features="reference") == []
    columns = len(FEATURE_SETS["reference"])
    assert priors.load(priors.DEFAULT, wiki="xxwiki", features="reference",
                       columns=columns) is None


def test_a_model_trained_by_default_learns_from_the_shipped_rows(en_model):
    """The fixture's model is trained with Settings() as they come: the shipped rows of
    every shared dump but its own are its prior, each recorded by its checksum."""
    prior = json.loads((en_model / "manifest.json").read_text())["training"]["prior"]
    files = priors.shipped(wiki="enwiki", features="full")
    assert prior["wikis"] == [f.stem for f in files] and "enwiki" not in prior["wikis"]
    assert prior["sha256"] == [file_checksum(f) for f in files]
    with np.load(en_model / priors.FILE) as rows:  # and it keeps its own rows only
        assert str(rows["wiki"]) == "enwiki"


def test_cli_prior_none_trains_on_the_wikis_own_rows_alone(tmp_path):
    done = _train(tmp_path, "none")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "prior" not in manifest["training"]


def test_cli_refuses_none_beside_a_prior(tmp_path, en_model):
    done = _train(tmp_path, "none", str(en_model))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == \
        "error: --prior none cannot be given with other priors"
    assert not (tmp_path / "out").exists()

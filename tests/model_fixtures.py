"""Session fixtures with real models, trained once per test session from the shared dumps."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.train import Settings, train_model

REPO = Path(__file__).resolve().parent.parent
DUMPS = REPO.parent / "shared" / "data" / "dumps"
FIXTURES = REPO.parent / "shared" / "data" / "addlink-fixtures"
LTG_DUMP = DUMPS / "ltgwiki-20170901-pages-articles.xml.bz2"
EN_DUMP = DUMPS / "enwiki-20160501-sample.xml.bz2"
JA_DUMP = DUMPS / "jawiki-20230501-first100klines.xml.xz"

# ``Settings.prior`` for the tests of what the classifier's prior does not touch (anchors,
# candidates, own-page statistics, layouts, models compared among themselves): the shipped
# prior fits each fold three times over some 53,000 more rows (docs/model.md), minutes over
# the suite. The session models above keep the default, the model a user trains.
OWN_ROWS: tuple[str, ...] = ()


def _dump(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"shared dump missing: {path} (see ../shared/data/README.md)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def ltg_model(tmp_path_factory) -> Path:
    """ltgwiki, a complete wiki: the one the local MediaWiki serves."""
    out = tmp_path_factory.mktemp("models") / "ltgwiki"
    train_model(_dump(LTG_DUMP), out, Settings(seed=1))
    return out


@pytest.fixture(scope="session")
def en_model(tmp_path_factory) -> Path:
    """The English sample (a slice of a dump): the `make run` model."""
    out = tmp_path_factory.mktemp("models") / "enwiki"
    train_model(_dump(EN_DUMP), out, Settings(seed=1))
    return out


@pytest.fixture(scope="module")
def ltg(ltg_model):
    """The ltgwiki model, opened once per test module."""
    from model import open_model

    model = open_model(ltg_model)
    yield model
    model.close()


@pytest.fixture(scope="module")
def ltg_corpus(tmp_path_factory):
    """The ltgwiki dump extracted into a corpus (training's first pass), once per module."""
    from model.train import extract

    return extract(_dump(LTG_DUMP), tmp_path_factory.mktemp("ltg-corpus"))


def model_of_other_features(source: Path, directory: Path) -> Path:
    """A copy of the model ``source`` whose classifier takes 3 features, as a model trained
    by a version with another feature set would; its manifest consistent with its files (as
    such a model's is), so only the feature count can tell."""
    import json
    import shutil

    import numpy as np
    import xgboost

    from model.datasets import classifier_checksum, file_checksum

    shutil.copytree(source, directory)
    x = np.random.default_rng(1).normal(size=(200, 3))
    other = xgboost.train({"objective": "binary:logistic", "nthread": 1},
                          xgboost.DMatrix(x, x[:, 0] > 0, nthread=1), 2)
    other.save_model(str(directory / "model.json"))
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"]["model.json"] = file_checksum(directory / "model.json")
    manifest["checksums"]["model"] = classifier_checksum(directory)
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory

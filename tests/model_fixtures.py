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

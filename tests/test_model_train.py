"""Training from real dumps: determinism, manifest, complete vs slice, errors, MySQL store."""

from __future__ import annotations

import bz2
import json
import secrets
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest

from model import open_model, recommend
from model.datasets import DATASETS, DatasetError, mysql_connect, mysql_table
from model.dump import DumpError, pages
from model.exitcodes import ExitCode
from model.load import load
from model.text import ngrams, normalize, tokens
from model.train import FOLDS, Settings, TrainingError, extract, train_model
from model.wikitext import parse
from tests.model_fixtures import (
    EN_DUMP,
    JA_DUMP,
    LTG_DUMP,
    OWN_ROWS,
    REPO,
    model_of_other_features,
)
from tests.runner_support import dump_slice


def test_same_dump_and_seed_give_the_same_checksums(ltg_model, tmp_path):
    again = train_model(LTG_DUMP, tmp_path / "again", Settings(seed=1))
    first = json.loads((ltg_model / "manifest.json").read_text())
    assert again["checksums"] == first["checksums"]
    assert set(first["checksums"]) == {"anchors", "redirects", "pageids", "w2vfiltered", "model"}


def test_manifest_describes_the_model(ltg_model, en_model):
    ltg = json.loads((ltg_model / "manifest.json").read_text())
    assert ltg["wiki"] == "ltgwiki" and ltg["language"] == "ltg"
    assert ltg["complete"] is True  # a whole wiki: most links resolve inside the dump
    assert ltg["counts"]["articles"] == 903 and ltg["counts"]["redirects"] == 147
    assert ltg["counts"]["anchors"] > 100 and ltg["counts"]["positives"] > 100
    assert ltg["dump_date"].startswith("2017")
    training = ltg["training"]
    assert training["heldout"] == f"articles, {FOLDS} folds"
    assert training["calibration"] in {"isotonic", "platt", "beta"}
    assert training["auc"] > 0.7 and training["mentions"] > 150  # probe mentions
    assert 0 <= training["ece"] <= 0.1 and 0 < training["log_loss"] < 1
    assert ltg["code_version"].startswith("0.1.0+")
    en = json.loads((en_model / "manifest.json").read_text())
    assert en["complete"] is False  # a slice: most targets lie outside the file
    for name, (file, *_rest) in DATASETS.items():
        assert (ltg_model / file).is_file(), name


def test_complete_mode_drops_red_link_targets_slice_mode_keeps_them(tmp_path):
    corpus = extract(LTG_DUMP, tmp_path)
    from model.train import build_anchors

    complete = build_anchors(corpus, None, Settings(), complete=True)
    sliced = build_anchors(corpus, None, Settings(), complete=False)
    complete_targets = {t for a in complete.values() for t, _ in a.targets}
    sliced_targets = {t for a in sliced.values() for t, _ in a.targets}
    assert complete_targets <= set(corpus.articles)
    assert sliced_targets - set(corpus.articles), "a slice keeps targets outside the dump"


def test_anchor_dictionary_rules(ltg_model):
    model = open_model(ltg_model)
    rows = list(model.store.rows("anchors"))
    assert rows
    titles = 0
    for key, link_prob, total, _kurtosis, targets, origin in rows:
        assert key == normalize(key)
        assert any(c.isalpha() for c in key), "anchors made only of digits/dates are dropped"
        origin = json.loads(origin)
        targets = json.loads(targets)
        linked = [n for _, n in targets if n > 0]
        assert linked == sorted(linked, reverse=True) and total == sum(linked)
        if origin["t"] or origin["r"]:
            titles += 1
            # A title counts as one more linking page: common words do not survive.
            pages = link_prob * origin["u"] / (1 - link_prob) if link_prob < 1 else 0.0
            assert (pages + 1) / (pages + origin["u"] + 1) >= 0.065
            assert {t for t, n in targets if n == 0} <= set(origin["t"]) | set(origin["r"])
        else:
            assert link_prob >= 0.065 and total >= 1
    assert titles > 100
    model.close()


def test_bad_dumps_are_clear_errors(tmp_path):
    with pytest.raises(DumpError, match="not found"):
        train_model(tmp_path / "missing.xml.bz2", tmp_path / "out")
    junk = tmp_path / "junk.xml.bz2"
    junk.write_bytes(bz2.compress(b"this is not xml at all"))
    with pytest.raises(DumpError, match="not a MediaWiki XML dump"):
        train_model(junk, tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing half-written"


def test_wrong_wiki_name_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(TrainingError, match="ltgwiki"):
        train_model(LTG_DUMP, tmp_path / "out", wiki="enwiki")
    assert not (tmp_path / "out").exists()


def test_open_model_errors(tmp_path):
    with pytest.raises(DatasetError, match="manifest.json missing"):
        open_model(tmp_path)


def test_a_classifier_of_another_feature_set_is_refused_when_the_model_opens(ltg_model, tmp_path):
    """A model trained by a version with other features: one line naming what to do, at
    open, not xgboost's shape mismatch on every page."""
    model = model_of_other_features(ltg_model, tmp_path / "model")
    with pytest.raises(DatasetError, match=r"takes 3 features where this version's 'full' set "
                                           r"has \d+ .*retrain it"):
        open_model(model)
    page = tmp_path / "page.wikitext"
    page.write_text("Latgola ir regions Latvejā.", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "model", "recommend", "--model", str(model),
         "--wikitext-file", str(page), "--title", "Latgola"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    # the one error line last (before it, the structured log record of the same failure)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == ExitCode.MODEL_INVALID, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert lines[-1].startswith(f"error: {model}: its classifier takes 3 features")
    assert lines[-1].endswith("retrain it")
    assert open_model(ltg_model).features == "full", "the model it was copied from still opens"


def test_cli_train_refuses_a_wrong_wiki(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "model",
            "train",
            "--wiki",
            "enwiki",
            "--dump",
            str(LTG_DUMP),
            "--out",
            str(tmp_path / "m"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2  # ExitCode.USAGE: the input does not match the command
    assert "ltgwiki" in proc.stderr


def test_japanese_tokens_reproduce_link_anchors():
    """In jawiki, the text of a link is found again as an n-gram of the link-stripped text."""
    found = total = 0
    for page in pages(JA_DUMP):
        if page.namespace != 0 or page.redirect:
            continue
        for link in parse(page.text).links:
            anchor = link.anchor
            if not anchor or len(anchor) > 30:
                continue
            total += 1
            keys = {m.key for m in ngrams(f"これは{anchor}です。", "ja")}
            found += normalize(anchor) in keys
        if total > 3000:
            break
    assert total > 3000
    assert found / total > 0.8, f"only {found}/{total} Japanese anchors tokenized as n-grams"
    text = "東京都は日本の首都であり、関東地方に位置する。"
    words = [text[a:b] for a, b in tokens(text, "ja")]
    assert {"東京都", "は", "日本", "首都"} <= set(words)
    assert "関東地方" in {m.key for m in ngrams(text, "ja")}


def test_japanese_model_recommends_in_japanese(tmp_path):
    """The dump's first 50 pages (41 articles): the whole slice takes 90 s to train here,
    and a model of any size shows that tokens, n-grams and offsets work in Japanese."""
    out = tmp_path / "jawiki"
    dump = Path(dump_slice(tmp_path / "jawiki.xml", 50, str(JA_DUMP)))
    manifest = train_model(dump, out, Settings(prior=OWN_ROWS))
    assert manifest["language"] == "ja" and manifest["counts"]["anchors"] > 100
    model = open_model(out)
    links = 0
    for page in pages(dump):
        if page.namespace != 0 or page.redirect:
            continue
        result = recommend(model, page.text, title=page.title, threshold=0.3)
        for link in result["links"]:
            start = link["wikitext_offset"]
            assert page.text[start : start + len(link["link_text"])] == link["link_text"]
            links += 1
        if links >= 20:
            break
    assert links >= 20


@pytest.fixture
def datasets_url(mysql_url):
    """A database of its own on the session's MariaDB, so the runner's tables stay apart."""
    server, _, _ = mysql_url.rpartition("/")
    name = f"addlink_model_{secrets.token_hex(4)}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield f"{server}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def test_mysql_store_gives_the_same_recommendations(ltg_model, datasets_url):
    mysql_url = datasets_url
    assert set(load(ltg_model, mysql_url).values()) == {"loaded"}
    assert set(load(ltg_model, mysql_url).values()) == {"unchanged"}  # checksums recorded
    sqlite_model = open_model(ltg_model)
    mysql_model = open_model(ltg_model, store=mysql_url)
    compared = 0
    for page in pages(LTG_DUMP):
        if page.namespace != 0 or page.redirect:
            continue
        a = recommend(sqlite_model, page.text, title=page.title, threshold=0.2)
        b = recommend(mysql_model, page.text, title=page.title, threshold=0.2)
        assert a == b
        compared += a["links_count"]
        if compared > 40:
            break
    assert compared > 40
    conn = mysql_connect(mysql_url)
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {mysql_table('ltgwiki', 'anchors')}")
        assert cur.fetchone()[0] == len(list(sqlite_model.store.rows("anchors")))
    conn.close()


def test_load_refuses_another_wiki(ltg_model, datasets_url):
    with pytest.raises(DatasetError, match="ltgwiki"):
        load(ltg_model, datasets_url, wiki="enwiki")


def test_cli_backtest_json_and_plot(tmp_path):
    plot = tmp_path / "bt.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "model",
            "backtest",
            "--wiki",
            "ltgwiki",
            "--dump",
            str(LTG_DUMP),
            "--format",
            "json",
            "--plot",
            str(plot),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout)
    assert result["wiki"] == "ltgwiki"
    assert [r["threshold"] for r in result["rows"]] == [round(0.1 * i, 1) for i in range(10)]
    for row in result["rows"]:
        assert {"threshold", "precision", "recall", "f1"} <= set(row)
        assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1
    recalls = [r["recall"] for r in result["rows"]]
    assert recalls == sorted(recalls, reverse=True), "recall falls as the threshold rises"
    assert plot.stat().st_size > 1000


def test_cli_recommend_from_a_dump(en_model):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "model",
            "recommend",
            "--model",
            str(en_model),
            "--dump",
            str(EN_DUMP),
            "--title",
            "Anarchism",
            "--threshold",
            "0.3",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout)
    assert result["page_title"] == "Anarchism" and result["pageid"] == 12
    assert result["meta"]["format_version"] == 1

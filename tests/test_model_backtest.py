"""The backtest's own figures: candidate ceiling, calibration, ablation, plot, CLI errors."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import unicodedata
from dataclasses import replace

import pytest

from model import open_model
from model.backtest import (
    LOSSES,
    Row,
    calibration,
    ceiling_losses,
    evaluate,
    gold_links,
    in_test_half,
    pool_calibration,
    recall_at_precision,
    rendered,
    wilson,
)
from model.exitcodes import ExitCode
from model.recommend import Traced, mention_anchors, score
from model.text import link_trail, normalize, page_mentions
from model.train import Settings, build_model
from tests.model_fixtures import LTG_DUMP, OWN_ROWS, REPO


def _stem_key(key: str, endings: list[str]) -> str:
    """Independently of model/stems.py: each word without its longest learnt ending."""
    out, word = ["\x01"], ""

    def flush() -> None:
        nonlocal word
        if word and all(unicodedata.category(c)[0] in "LM" for c in word):
            for e in sorted(endings, key=len, reverse=True):
                if word.endswith(e) and len(word) - len(e) >= 3:
                    word = word[: -len(e)]
                    break
        out.append(word)
        word = ""

    for i, ch in enumerate(key):
        inner = ch in "'’-." and 0 < i < len(key) - 1 and word and \
            unicodedata.category(key[i + 1])[0] in "LMN"
        if unicodedata.category(ch)[0] in "LMN" or inner:
            word += ch
        else:
            flush()
            out.append(" " if ch.isspace() else ch)
    flush()
    return "".join(out)


def test_ceiling_matches_an_independent_count(ltg_corpus, tmp_path):
    result = evaluate(ltg_corpus, Settings(seed=1, prior=OWN_ROWS))
    # The same train half, built again, read straight from its SQLite anchor table.
    test = {t for t in ltg_corpus.articles if in_test_half(t, 1)}
    train = set(ltg_corpus.articles) - test
    manifest = build_model(ltg_corpus, tmp_path / "m", Settings(seed=1, prior=OWN_ROWS),
                           include=train)
    conn = sqlite3.connect(tmp_path / "m" / "anchors.sqlite")
    targets = {k: [t for t, _ in json.loads(v)] for k, v in conn.execute(
        "SELECT anchor, targets FROM anchors")}
    conn.close()
    # ltgwiki has no Snowball stemmer: its stem classes come from endings learnt in training.
    assert manifest["stemmer"]["method"] == "learnt"
    endings = manifest["stemmer"]["endings"]
    gold_pairs = unknown = not_candidate = by_stem = 0
    for record in ltg_corpus.records(test):
        probes = [x for x in record["x"] if x[1]]
        if not probes:
            continue
        text, links = probes[0]
        # A gold link is the text it shows (its trail letters in), its anchor its link text.
        shown = {}
        for a, b, t in links:
            end = b
            while end < len(text) and text[end] in LTG_LETTERS:
                end += 1
            shown[(normalize(text[a:end]), t)] = normalize(text[a:b])
        for (_, target), key in shown.items():
            gold_pairs += 1
            if key not in targets:  # not an exact anchor: its stem class, if any
                key = _stem_key(key, endings)
                by_stem += key in targets
            if key not in targets:
                unknown += 1
            elif target not in targets[key][:10]:
                not_candidate += 1
    c = result["ceiling"]
    assert c["expected"] == gold_pairs == result["rows"][0]["expected"]
    assert c["losses"]["anchor_unknown"] == unknown > 0
    assert by_stem > 10  # stems make anchors of inflected gold links
    assert c["losses"]["target_not_candidate"] == not_candidate
    assert set(c["losses"]) == set(LOSSES)
    assert c["reachable"] + sum(c["losses"].values()) == gold_pairs
    assert c["share"] == round(c["reachable"] / gold_pairs, 4)
    # Nothing outside the ceiling can be found: it bounds recall at threshold 0.
    assert result["rows"][0]["correct"] <= c["reachable"]


def test_trace_names_the_skip_rule(ltg_model):
    model = open_model(ltg_model)
    conn = sqlite3.connect(ltg_model / "anchors.sqlite")
    key, raw = next(
        (k, v) for k, v in conn.execute("SELECT anchor, targets FROM anchors ORDER BY total DESC")
        if k.isalpha()
    )
    conn.close()
    target = json.loads(raw)[0][0]
    text = f"Vīnreiz {key} beja."

    def skips(**kw) -> dict[str, str | None]:
        trace: list[Traced] = []
        score(model, text, trace=trace, **kw)
        assert all(text[t.start : t.end].lower() == t.key for t in trace)
        return {t.key: t.skip for t in trace}

    assert skips(title="Cyts rakstīņs")[key] is None
    assert skips(title=f"{key.title()} (nūzeime)")[key] == "in_title"
    assert skips(title="Cyts rakstīņs", extra_links=[target])[key] == "target_linked"
    model.close()


def test_a_pair_is_reachable_when_any_mention_showing_its_text_has_the_target(ltg_model):
    """Two generated mentions may show one text (a word that is an anchor of its own, and a
    shorter anchor written with a trail): the gold pair is reachable through either."""
    model = open_model(ltg_model)
    conn = sqlite3.connect(ltg_model / "anchors.sqlite")
    (key, raw), (other, raw2) = [
        (k, v) for k, v in conn.execute(
            "SELECT anchor, targets FROM anchors WHERE anchor NOT LIKE '% %' ORDER BY total DESC")
        if k.isalpha()
    ][:2]
    conn.close()
    target, wrong = json.loads(raw)[0][0], json.loads(raw2)[0][0]
    assert target != wrong
    text = f"Vīnreiz {key} beja."
    a = text.index(key)
    gold = {(key, target): key}
    mine = Traced(a, a + len(key), key, None, "", (target,))
    theirs = Traced(a, a + len(key), other, None, "", (wrong,))  # another anchor, same text
    for trace in ([theirs, mine], [mine, theirs]):
        assert ceiling_losses(model, gold, trace, text) == {"reachable": 1}
    # Neither has the target: lost there; both skipped: the first one's skip rule.
    assert ceiling_losses(model, gold, [theirs], text) == {"target_not_candidate": 1}
    skipped = [replace(mine, skip="in_title"), replace(theirs, skip="target_linked")]
    assert ceiling_losses(model, gold, skipped, text) == {"skipped_in_title": 1}
    assert ceiling_losses(model, gold, [], text) == {"mention_not_generated": 1}
    model.close()


def test_calibration_of_a_constructed_example():
    pairs = [(0.05, False), (0.05, True), (0.95, True), (0.95, True), (1.0, False)]
    cal = calibration(pairs)
    # bin [0, 0.1): mean 0.05, 1 of 2 right; bin [0.9, 1]: mean 0.9667, 2 of 3 right.
    assert cal["predictions"] == 5
    assert cal["ece"] == pytest.approx(2 / 5 * 0.45 + 3 / 5 * abs(2 / 3 - 2.9 / 3), abs=1e-4)
    low, high = cal["bins"][0], cal["bins"][9]
    assert (low["count"], low["mean_score"], low["accuracy"]) == (2, 0.05, 0.5)
    assert (high["count"], high["correct"]) == (3, 2)
    assert all(b["count"] == 0 and b["accuracy"] is None for b in cal["bins"][1:9])
    # Pooling two results' bins gives the calibration of all their predictions.
    pooled = pool_calibration([{"calibration": calibration(pairs[:3])},
                               {"calibration": calibration(pairs[3:])}])
    assert pooled["ece"] == cal["ece"] and pooled["bins"] == cal["bins"]
    perfect = calibration([(0.25, True), (0.25, False), (0.25, False), (0.25, False)])
    assert perfect["ece"] == 0.0


def test_wilson_interval_and_recall_at_precision():
    assert wilson(8, 10) == (0.4902, 0.9433)
    assert wilson(0, 0) == (0.0, 1.0)
    rows = [Row(t, p, wilson(c, n), c / 20, 0.0, n, c, 20)
            for t, p, c, n in [(0.1, 0.5, 5, 10), (0.5, 0.8, 4, 5), (0.9, 1.0, 2, 2)]]
    assert recall_at_precision(rows)["threshold"] == 0.5
    assert recall_at_precision(rows[:1]) is None


def test_ablated_feature_is_never_used(ltg_corpus, tmp_path):
    manifest = build_model(ltg_corpus, tmp_path / "m", Settings(ablate=("similarity", "prior")))
    assert manifest["ablate"] == ["similarity", "prior"]
    model = open_model(tmp_path / "m")
    assert model.ablate == ("similarity", "prior")
    used = set(model.booster.get_score(importance_type="weight"))
    assert used and not used & {"f4", "f7"}  # columns of similarity and prior
    model.close()


def test_cli_plot_and_ablation(tmp_path):
    png = tmp_path / "bt.png"
    proc = subprocess.run(
        [sys.executable, "-m", "model", "backtest", "--dump", str(LTG_DUMP), "--format",
         "json", "--plot", str(png), "--ablate", "similarity"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    result = json.loads(proc.stdout)
    assert result["ablate"] == ["similarity"]
    assert {"ceiling", "calibration", "recall_at_p80", "sweep"} <= set(result)
    assert len(result["sweep"]) == 101
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.parametrize(
    "args, name",
    [(["--ablate", "similarity,nonsense"], "nonsense"),
     (["--features", "reference", "--ablate", "link_prob"], "link_prob")],
)
def test_cli_unknown_ablated_feature_is_a_usage_error(args, name):
    proc = subprocess.run(
        [sys.executable, "-m", "model", "backtest", "--dump", str(LTG_DUMP), *args],
        cwd=REPO, capture_output=True, text=True,
    )
    assert proc.returncode == ExitCode.USAGE
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "--ablate" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# Letters of the Latgalian alphabet, written out here (not read from model/linktrails.json).
LTG_LETTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZĀāČčĒēĢģĪīĶķĻļŅņŠšŪūŽž")


def test_gold_links_are_compared_by_the_text_they_show(ltg_corpus):
    """A probe's [[X]]suffix shows as one linked word: its gold text runs through the trail."""
    trail = link_trail("ltg")
    trailed = plain = 0
    for record in ltg_corpus.records():
        probe = next((x for x in record["x"] if x[1]), None)
        if probe is None:
            continue
        text, links = probe
        shows = gold_links(text, links, trail)
        for a, b, t in links:
            end = b
            while end < len(text) and text[end] in LTG_LETTERS:
                end += 1
            shown = normalize(text[a:end])
            assert shows[(shown, t)] == normalize(text[a:b])
            trailed += end > b
            plain += end == b
    assert trailed > 0 and plain > 500  # few probes trail their link (3 on ltgwiki)
    # Without a trail pattern the comparison is by link text, as before.
    text = "Jis dzeivoja Rēznēs pusē."
    a = text.index("Rēzn")
    assert gold_links(text, [(a, a + 4, "Rēzne")], None) == {("rēzn", "Rēzne"): "rēzn"}
    assert gold_links(text, [(a, a + 4, "Rēzne")], trail) == {("rēznēs", "Rēzne"): "rēzn"}


def test_a_trail_suggestion_counts_for_the_editors_piped_link():
    """[[Лондон]]ові (the recommender's) and [[Лондон|Лондонові]] (the editors') are one link."""
    from tests.test_model_mentions import bloom_of
    from tests.test_model_stems import UK, _stem_model

    stemmer, anchors, keys = _stem_model("uk", UK, "Лондон")
    text = "Він жив у Лондонові."
    a = text.index("Лондонові")
    trail = link_trail("uk")
    found = page_mentions([text], "uk", bloom_of(keys, "uk").contains, trail=trail,
                          stemmer=stemmer)
    chosen = mention_anchors(found, lambda ks: {k: anchors[k] for k in ks if k in anchors},
                             [text], trail)
    _, m, _ = chosen["лондон"]
    assert (m.start, m.end, m.trail) == (a, a + 6, 3)
    shows = gold_links(text, [(a, a + 9, "Лондон")], trail)
    assert (rendered(text, m.start, m.end, trail), "Лондон") in shows
    # By link text alone ("лондон" against "лондонові") it would count as wrong.
    assert ("лондон", "Лондон") not in shows

"""Invalid titles are refused with the title and the rule, by the function and by the CLIs."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from model import open_model, recommend
from model.dump import pages
from model.titles import InvalidTitle, validate_title
from tests.model_fixtures import DUMPS, REPO

INVALID = [
    ("", "empty"),
    ("   ", "empty"),
    ("_ _", "empty"),
    ("A#B", "'#'"),
    ("A|B", "'|'"),
    ("A<b>", "'<'"),
    ("[[Riga]]", "'['"),
    ("{{Infobox}}", "'{'"),
    ("Riga\x00x", "U+0000"),
    ("Riga\nLatgola", "U+000A"),
    ("Riga\x7f", "U+007F"),
    ("Caf%C3%A9", "percent-encoding"),
    (":Riga", "starts with ':'"),
    (".", "relative path"),
    ("..", "relative path"),
    ("../Riga", "relative path"),
    ("Riga/./Latgola", "relative path"),
    ("Riga/..", "relative path"),
    ("Sign ~~~~", "'~~~'"),
    ("ā" * 128, "256 bytes"),
]


@pytest.mark.parametrize("title, rule", INVALID)
def test_invalid_titles_name_the_title_and_the_rule(title, rule):
    with pytest.raises(InvalidTitle, match=re.escape(rule)) as caught:
        validate_title(title)
    assert isinstance(caught.value, ValueError)
    assert repr(title) in str(caught.value) and caught.value.title == title


def test_every_title_of_every_shared_dump_is_valid():
    """The rules must never refuse a page that exists: all titles of all dumps pass."""
    checked = 0
    for dump in sorted(DUMPS.glob("*.xml.*")):
        for page in pages(dump):
            assert validate_title(page.title) == page.title
            checked += 1
    assert checked > 6000
    # Legal look-alikes of the rules: a lone '%', '~~', a dot inside a word, 255 bytes.
    for title in ("100% Latgola", "A~~B", "U.S. Army", "St. Petersburg", "Ā" * 127 + "a"):
        assert validate_title(title) == title
    assert validate_title("latgolys_vaivadeja ") == "Latgolys vaivadeja"


def test_recommend_refuses_an_invalid_title(ltg_model):
    model = open_model(ltg_model)
    try:
        with pytest.raises(InvalidTitle, match="'A|B'"):
            recommend(model, "Latgola ir regions.", title="A|B")
    finally:
        model.close()


@pytest.mark.parametrize("title, rule", [("A#B", "'#'"), ("", "empty"), ("x" * 300, "300 bytes")])
def test_model_recommend_cli_exits_2_with_one_line(ltg_model, tmp_path, title, rule):
    page = tmp_path / "page.wikitext"
    page.write_text("Latgola ir regions Latvejā.", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "model", "recommend", "--model", str(ltg_model),
         "--wikitext-file", str(page), "--title", title],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"error: invalid title {title!r}") and rule in lines[0]
    assert proc.stdout == ""

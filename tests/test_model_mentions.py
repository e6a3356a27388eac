"""Mention generation is complete: every known anchor at token boundaries becomes a mention.

In every script, before any skip rule: an anchor set is built, each anchor is put in a
sentence, and the test finds each anchor's occurrences at token boundaries by its own means
(Unicode categories, not model/text.py's regexes) and asserts that the recommender's
generator (``page_mentions`` through a real Bloom filter of anchor prefixes, as in a model)
produces each of them, with the exact offsets. Link trails: a stem followed by an ending
that MediaWiki's trail of the language accepts is generated too, at the stem's offsets.
"""

from __future__ import annotations

import json
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from model.datasets import Anchor, Bloom
from model.dump import pages
from model.features import FULL
from model.text import (
    MAX_TRAIL,
    WHOLE,
    filter_keys,
    link_trail,
    ngram_keys,
    ngrams,
    normalize,
    page_mentions,
    prefixes,
    trail_endings,
)
from model.train import _Lookup, page_pairs
from tests.model_fixtures import EN_DUMP

REPO = Path(__file__).resolve().parent.parent
MESSAGES = Path("/usr/share/mediawiki/languages/messages")

# (language, sentence, anchor surface forms as they appear in it). Every shared language
# and scripts we have no dump for.
CASES = [
    ("ltg", "Rēzeknis ir Latgolys kulturys centrys.", ["Rēzeknis", "Latgolys kulturys"]),
    (
        "en",
        "The army of the U.S. fought in World War II and in The Lord of the Rings: The Return "
        "of the King, Apollo 11 landed, rock 'n' roll, l'Italie and attention deficit "
        "hyperactivity disorder (ADHD).",
        [
            "U.S.",  # a key ending in punctuation
            "disorder (ADHD)",
            "World War II",
            "The Lord of the Rings: The Return of the King",  # more than five tokens
            "Apollo 11",
            "rock 'n' roll",
            "l'Italie",
        ],
    ),
    ("bn", "বাংলাদেশ দক্ষিণ এশিয়ার একটি রাষ্ট্র।", ["বাংলাদেশ", "দক্ষিণ এশিয়ার", "রাষ্ট্র"]),
    ("el", "Η Αθήνα είναι η πρωτεύουσα της ΕΛΛΑΔΟΣ.", ["Αθήνα", "πρωτεύουσα", "ΕΛΛΑΔΟΣ"]),
    (
        "ja",
        "東京都は日本の首都であり、関東地方に位置する。",
        ["東京", "京都", "関東地方", "日本の首都"],
    ),
    ("mr", "महाराष्ट्र हे भारतातील एक राज्य आहे.", ["महाराष्ट्र", "भारतातील", "राज्य"]),
    (
        "uk",
        "Київ — столиця України, «Київська Русь» і журнал «Космос».",
        ["Київ", "України", "Київська Русь", "«Космос»", "«Космос"],
    ),
    ("ka", "თბილისი საქართველოს დედაქალაქია.", ["თბილისი", "საქართველოს"]),
    ("he", "צה״ל הוא צבא ההגנה לישראל, וגם צה\"ל.", ["צה״ל", "צבא ההגנה לישראל", 'צה"ל']),
    ("ar", "القاهرة هي عاصمة جمهورية مصر العربية.", ["القاهرة", "جمهورية مصر العربية"]),
    ("fa", "کتاب‌ها در کتابخانه‌ی ملی ایران.", ["کتاب‌ها", "کتاب", "کتابخانه‌ی ملی ایران"]),
    ("hi", "नई दिल्ली भारत की राजधानी है।", ["नई दिल्ली", "भारत", "राजधानी"]),
    ("th", "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย", ["กรุงเทพมหานคร", "ประเทศไทย", "ไทย"]),
    ("ru", "Москва — столица Российской Федерации.", ["Москва", "Российской Федерации"]),
    ("zh", "北京是中华人民共和国的首都。", ["北京", "中华人民共和国", "人民"]),
    ("ko", "한국 전쟁 당시 서울특별시.", ["한국 전쟁", "서울특별시"]),
    ("hy", "Երևանը Հայաստանի մայրաքաղաքն է։", ["Երևանը", "Հայաստանի"]),
    ("ta", "சென்னை தமிழ்நாட்டின் தலைநகரம் ஆகும்.", ["சென்னை", "தமிழ்நாட்டின்"]),
    ("tr", "İstanbul Türkiye'nin en büyük şehridir.", ["İstanbul", "Türkiye'nin"]),
    ("fr", "Le Cafe\u0301 de Flore est a\u0300 Paris.", ["Cafe\u0301 de Flore", "Paris"]),
]
NO_SPACE = ("Han", "Hiragana", "Katakana", "Thai")
JOINERS = "'’-."


def _word(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LMN"


def _no_space(ch: str) -> bool:
    name = unicodedata.name(ch, "")
    return any(s.upper() in name for s in ("CJK", "HIRAGANA", "KATAKANA", "THAI"))


def _boundary(text: str, i: int) -> bool:
    """Independent: may a token start or end at ``i``? (Unicode categories only.)"""
    if i in (0, len(text)):
        return True
    left, right = text[i - 1], text[i]
    if _no_space(left) and _no_space(right):  # any grapheme boundary inside such a run
        return unicodedata.category(right)[0] != "M"
    if _word(left) and _word(right):
        return False
    if left in JOINERS and i >= 2 and _word(text[i - 2]) and _word(right):
        return False  # the joiner is inside a word: "l'Italie", "U.S."
    return not (right in JOINERS and i + 1 < len(text) and _word(left) and _word(text[i + 1]))


def occurrences(text: str, surface: str) -> list[tuple[int, int]]:
    """Where ``surface`` occurs at token boundaries, found with str.find."""
    out, at = [], text.find(surface)
    while at >= 0:
        end = at + len(surface)
        if _boundary(text, at) and _boundary(text, end):
            out.append((at, end))
        at = text.find(surface, at + 1)
    return out


def bloom_of(keys: set[str], language: str) -> Bloom:
    """The filter a model ships: every prefix of every anchor key, and the keys as such.

    Sized for a one-in-a-million false positive rather than a model's 1 %: the tests also
    assert what is *not* generated, and a filter of a few keys is only 64 bits at 1 %.
    """
    entries = sorted(filter_keys(keys, language))
    size, hashes = Bloom.sized(len(entries), error=1e-6)
    bloom = Bloom(np.zeros(size, dtype=np.uint8), hashes)
    bloom.add(entries)
    return bloom


def test_whole_key_probes_tell_keys_from_their_prefixes():
    """WHOLE + key must not hash like the bare key: the "poly64" hash gave a leading NUL no
    weight, so every prefix of an anchor passed as a whole key and was looked up for nothing.
    A model's filter (1 % false positives), over the 3-grams of a real page."""
    page = next(p for p in pages(EN_DUMP) if p.namespace == 0 and not p.redirect)
    keys = {m.key for m in ngrams(page.text[:30000], "en", 3) if m.length == 3}
    entries = sorted(filter_keys(keys, "en"))
    size, hashes = Bloom.sized(len(entries))
    bloom = Bloom(np.zeros(size, dtype=np.uint8), hashes)
    bloom.add(entries)
    assert bloom.scheme == "poly64b"
    only_prefixes = sorted({p for k in keys for p in prefixes(k, "en")} - keys)
    assert len(keys) > 1000 and len(only_prefixes) > 1000
    assert bloom.contains([WHOLE + k for k in keys]).all()
    assert bloom.contains(only_prefixes).all()  # still prefixes: the walk grows them
    assert bloom.contains([WHOLE + p for p in only_prefixes]).mean() < 0.03


@pytest.mark.parametrize(("language", "sentence", "surfaces"), CASES, ids=[c[0] for c in CASES])
def test_every_known_anchor_at_token_boundaries_is_a_mention(language, sentence, surfaces):
    keys = {normalize(s) for s in surfaces}
    bloom = bloom_of(keys, language)
    # The sentence in a page of several texts, not first: offsets are per text.
    texts = ["Intro text.", sentence]
    found = {
        (t, m.start, m.end, m.key)
        for t, m in page_mentions(texts, language, bloom.contains, trail=link_trail(language))
    }
    expected = 0
    for surface in surfaces:
        spots = occurrences(sentence, surface)
        assert spots, f"test data: {surface!r} not at token boundaries in {sentence!r}"
        for a, b in spots:
            expected += 1
            assert (1, a, b, normalize(sentence[a:b])) in found, (language, surface, a, b)
    assert expected >= len(surfaces)
    # The skip rule "part of an already-linked anchor" finds the same keys in link texts.
    assert ngram_keys([sentence], language, keys | {"zzz"}) == keys


# (language, sentence, stem as linked, ending left to trail): [[stem]]ending as editors write.
TRAILS = [
    ("uk", "Він жив у Лондоні до війни.", "Лондон", "і"),
    ("uk", "Музей у Великій Британії.", "Великій Британ", "ії"),
    ("en", "Two dogs barked.", "dog", "s"),
    ("ltg", "Jis dzeivuoja Rēzeknē.", "Rēzekn", "ē"),
    ("el", "Ζει στην Αθήνας.", "Αθήνα", "ς"),
    ("mr", "भारताचा इतिहास मोठा आहे.", "भारत", "ाचा"),
    ("bn", "বাংলাদেশের রাজধানী ঢাকা।", "বাংলাদেশ", "ের"),
    ("ru", "Он жил в Москве.", "Москв", "е"),
    ("he", "הוא גר בtelאביב.", "בtel", "אביב"),  # Hebrew's trail includes a-z and א-ת
    ("ka", "ის ცხოვრობს თბილისში.", "თბილის", "ში"),
]


@pytest.mark.parametrize(("language", "sentence", "stem", "ending"), TRAILS)
def test_a_stem_followed_by_a_link_trail_is_a_mention_at_the_stem(
    language, sentence, stem, ending
):
    key = normalize(stem)
    bloom = bloom_of({key}, language)
    a = sentence.find(stem + ending)
    b = a + len(stem)
    trail = link_trail(language)
    # The ending as the wiki's own articles use it after a link (training counts these).
    endings = trail_endings(f"[[{stem}]]{ending} and [[X]]{ending}", trail)
    assert endings == [ending.lower()] * 2
    found = page_mentions([sentence], language, bloom.contains, trail=trail, endings=endings)
    mentions = [m for _, m in found]
    hits = [m for m in mentions if m.key == key]
    assert [(m.start, m.end, m.trail) for m in hits] == [(a, b, len(ending))]
    assert sentence[hits[0].start : hits[0].end] == stem


def test_no_trail_without_a_trail_or_beyond_its_characters():
    bloom = bloom_of({"лондон", "dog", "北京"}, "uk")
    # Upper case is not in the Ukrainian trail; Chinese has none; endings longer than
    # MAX_TRAIL are not tried.
    text = ["Він жив у ЛондонІ.", "Лондон" + "ськ" * 3, "Лондоном"]
    endings = ["і", "ськ" * 3, "ом"]
    trail = link_trail("uk")
    assert not [m for _, m in page_mentions(text, "uk", bloom.contains, trail=trail)]  # no endings
    found = page_mentions(text, "uk", bloom.contains, trail=trail, endings=endings)
    assert [(t, m.key, m.trail) for t, m in found] == [(2, "лондон", 2)]
    assert link_trail("zh") is None
    assert link_trail("xx-unknown") == link_trail("en")
    found = page_mentions(["北京人"], "zh", bloom.contains, trail=link_trail("zh"), endings=["人"])
    assert [(m.key, m.trail) for _, m in found if m.key == "北京"] == [("北京", 0)]
    assert all(m.trail == 0 for _, m in found)
    assert MAX_TRAIL >= 3


def test_trails_are_mediawikis():
    """The shipped table is what scripts/link_trails.py extracts from MediaWiki now."""
    out = subprocess.run(
        [str(REPO / ".venv/bin/python"), str(REPO / "scripts/link_trails.py"), "--out",
         "/dev/stdout", "--messages", str(MESSAGES)],
        capture_output=True, text=True, check=True,
    ).stdout
    fresh = json.loads(out[: out.rindex("}") + 1])
    shipped = json.loads((REPO / "model" / "linktrails.json").read_text())
    assert fresh == shipped
    # Fallbacks: Latgalian has no trail of its own and inherits Latvian's; an unknown
    # language gets English's, as MediaWiki does.
    assert "$linkTrail" not in (MESSAGES / "MessagesLtg.php").read_text()
    assert shipped["ltg"] == shipped["lv"] and "ē" in shipped["ltg"]["trail"]
    assert shipped["en"]["trail"] == "[a-z]+"
    assert "і" in shipped["uk"]["trail"]


def test_training_sees_a_trail_link_as_a_positive_of_the_stem_mention():
    """page_pairs generates mentions with the recommender's function: [[Лондон]]і counts."""
    anchors = {
        "лондон": Anchor("лондон", (("Лондон", 3), ("Лондон (Онтаріо)", 1)), 4, 0.5, 0.0)
    }
    vectors = np.zeros((1, 4), dtype=np.float32)
    lookup = _Lookup(anchors, {}, vectors, "full", trail=link_trail("uk"), endings=["і"])
    text = "Він жив у Лондоні до війни."
    a = text.find("Лондон")
    record = {"t": "Тест", "l": [["Лондон", "Лондон"]], "x": [[text, [[a, a + 6, "Лондон"]]]]}
    rows = [(row, label) for row, label, _, _ in page_pairs(lookup, record, "uk")]
    assert sorted(label for _, label in rows) == [0, 1]
    trail = FULL.index("trail")
    assert all(row[trail] == 1.0 for row, _ in rows)

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
    first_mentions,
    link_trail,
    ngram_keys,
    ngrams,
    normalize,
    page_mentions,
    prefixes,
    trail_endings,
)
from model.train import _Lookup, page_pairs
from tests.model_fixtures import EN_DUMP, LTG_DUMP

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


def test_stems_probed_by_prefix_hashes_answer_as_the_strings_would():
    """``Bloom.contains_cut`` (no stem strings built) gives what ``contains`` gives for the
    strings: words of a real page in six scripts, astral characters, every cut length."""
    import random

    page = next(p for p in pages(EN_DUMP) if p.namespace == 0 and not p.redirect)
    words = sorted({m.key for m in ngrams(page.text[:20000], "en", 2)})
    words += ["उत्तरेस", "লণ্ডনের", "лондонові", "αθήνας", "თბილისშიც", "😀x😀yz", "a\x03bc"]
    rng = random.Random(7)
    cuts = [rng.randint(0, min(5, len(w))) for w in words]
    stems = [WHOLE + w[:-t] for w, n in zip(words, cuts, strict=True) for t in range(1, n + 1)]
    assert len(stems) > 1000
    # A filter holding a third of those stems as whole keys, and the rest of the page.
    keys = {s[1:] for s in stems[::3]} | set(words[::2])
    for scheme in ("poly64b", "poly64"):
        entries = sorted(filter_keys(keys, "en"))
        size, hashes = Bloom.sized(len(entries))
        bloom = Bloom(np.zeros(size, dtype=np.uint8), hashes, scheme)
        bloom.add(entries)
        got = bloom.contains_cut(words, cuts, WHOLE)
        assert got.tolist() == bloom.contains(stems).tolist()
        assert got.sum() >= len(stems[::3])
    assert bloom.contains_cut([], [], WHOLE).tolist() == []
    # A text longer than the polynomial's 4096 code points falls back to the strings.
    long = "x" * 5000
    assert bloom.contains_cut([long], [2], WHOLE).tolist() == bloom.contains(
        [WHOLE + long[:-1], WHOLE + long[:-2]]).tolist()


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


# (language, sentence, known anchors, (stem as linked, rest)): a rest the wiki's learnt
# trail endings do not list (stacked or rare: Marathi's oblique vowel before a postposition).
GUESSES = [
    ("mr", "मणिपूरच्या उत्तरेस नागालॅंड आहे.", {"उत्तर"}, ("उत्तर", "ेस")),
    ("mr", "ही संघटना राष्ट्रीय स्वयंसेवक संघासोबत संलग्न आहे.",
     {"राष्ट्रीय स्वयंसेवक संघ"}, ("राष्ट्रीय स्वयंसेवक संघ", "ासोबत")),
    ("uk", "Він жив у Лондонові довго.", {"лондон"}, ("Лондон", "ові")),
    ("ltg", "Jis dzeivuoja Rēzeknis apleicīnē.", {"rēzekn"}, ("Rēzekn", "is")),
    ("bn", "তিনি বাংলাদেশেরও নাগরিক।", {"বাংলাদেশ"}, ("বাংলাদেশ", "েরও")),
    ("ka", "ის ცხოვრობს თბილისშიც.", {"თბილის"}, ("თბილის", "შიც")),
]


def _independent_guesses(sentence: str, keys: set[str], trail: str, learnt: set[str]):
    """Independently of page_mentions: (start, end) of each known key that is a word's
    start (or a run of whole words and a word's start) whose rest, at most MAX_TRAIL
    characters, is all trail letters and no learnt ending, in a word no key ends at."""
    import regex

    letters = regex.compile(rf"(?:{trail})")
    words = [m.span() for m in regex.finditer(r"[\p{L}\p{M}]+", sentence)]
    out = set()
    for j, (ws, we) in enumerate(words):
        if any(sentence[a:we].lower() in keys for a, _ in words[: j + 1]):
            continue  # a key ends at this word: nothing is guessed there
        for t in range(1, MAX_TRAIL + 1):
            rest = sentence[we - t : we]
            if we - t - ws < 3 or rest.lower() in learnt or not letters.fullmatch(rest):
                continue
            for a, _ in words[: j + 1]:
                if sentence[a : we - t].lower() in keys:
                    out.add((a, we - t))
    return out


@pytest.mark.parametrize(("language", "sentence", "keys", "linked"), GUESSES,
                         ids=[g[0] + str(i) for i, g in enumerate(GUESSES)])
def test_a_known_stem_before_any_trail_rest_is_a_guessed_mention(
    language, sentence, keys, linked
):
    bloom = bloom_of(keys, language)
    trail = link_trail(language)
    stem, rest = linked
    a = sentence.find(stem + rest)
    found = page_mentions([sentence], language, bloom.contains, trail=trail, endings=[],
                          whole_keys=True, guess_trails=True)
    guessed = [m for _, m in found if m.guessed]
    assert [(m.start, m.end, m.trail, m.key) for m in guessed] == [
        (a, a + len(stem), len(rest), normalize(stem))]
    assert {(m.start, m.end) for m in guessed} == _independent_guesses(
        sentence, keys, trail, set())
    # Off (older models), or with the rest as a learnt ending, nothing is guessed; the
    # learnt ending's cut is the same mention, not marked.
    off = page_mentions([sentence], language, bloom.contains, trail=trail, endings=[],
                        whole_keys=True)
    assert not [m for _, m in off if m.key == normalize(stem)]
    learnt = page_mentions([sentence], language, bloom.contains, trail=trail, endings=[rest],
                           whole_keys=True, guess_trails=True)
    cut = [m for _, m in learnt if m.key == normalize(stem)]
    assert [(m.start, m.end, m.trail, m.guessed) for m in cut] == [
        (a, a + len(stem), len(rest), False)]


def test_a_guess_never_displaces_a_word_other_mentions_end_at():
    """Where the word itself, or a learnt ending's cut, or a longer n-gram ends at the word,
    no shorter stem is guessed there; and a guess never takes the key's one slot from a
    whole word or a learnt cut elsewhere on the page (``first_mentions``)."""
    trail = link_trail("mr")
    keys = {"भारत", "भारतीय", "उत्तर", "उत्तर प्रदेश"}
    bloom = bloom_of(keys, "mr")
    texts = ["भारतीय लोक उत्तरेस गेले.", "उत्तर प्रदेशात आणि भारताचा इतिहास."]
    found = page_mentions(texts, "mr", bloom.contains, trail=trail, endings=["ाचा"],
                          whole_keys=True, guess_trails=True)
    got = {(t, texts[t][m.start : m.end], m.trail, m.guessed) for t, m in found}
    assert (0, "भारतीय", 0, False) in got
    assert not any(t == 0 and s == "भारत" for t, s, _, _ in got)  # भारतीय is a whole key
    assert (0, "उत्तर", 2, True) in got  # उत्तरेस: nothing else ends there
    assert (1, "भारत", 3, False) in got  # the learnt ending ाचा
    # उत्तर प्रदेशात: the longer key's guessed cut; its first word is no separate guess.
    assert (1, "उत्तर प्रदेश", 2, True) in got
    assert sum(1 for t, s, _, g in got if g) == 2
    first = first_mentions(found)
    # उत्तर is guessed in the first text, a whole word in the second: the whole word wins.
    assert first["उत्तर"][0] == 1 and first["उत्तर"][1].trail == 0
    assert first["भारत"][1].trail == 3 and not first["भारत"][1].guessed


def _trailed_share(dump: Path, letters: str) -> float:
    """Independently of training: of the main-namespace links of the dump's articles, the
    share whose closing brackets are followed by 1-5 trail letters (a plain regex count)."""
    import regex

    link = regex.compile(r"\[\[([^\[\]|:]+)(?:\|[^\[\]]*)?\]\]((?:" + letters + r")*)")
    links = trailed = 0
    for page in pages(dump):
        if page.namespace == 0 and not page.redirect:
            for m in link.finditer(page.text):
                links += 1
                trailed += 0 < len(m.group(2)) <= MAX_TRAIL
    return trailed / links


def test_trails_are_guessed_only_where_editors_trail_links(ltg_model, en_model):
    """Training records the share of links that trail; guesses are on at >= 1 in 100."""
    from model import open_model
    from model.recommend import score

    shares = {}
    for directory, dump, language in ((ltg_model, LTG_DUMP, "ltg"), (en_model, EN_DUMP, "en")):
        manifest = json.loads((directory / "manifest.json").read_text())
        share = manifest["link_trail_share"]
        counted = _trailed_share(dump, link_trail(language))
        assert abs(share - counted) <= 0.35 * counted, (language, share, counted)
        assert manifest["link_trail_guesses"] == (share >= 0.01)
        shares[language] = share
    # Latgalian editors hardly trail links (about 1 in 200), English ones 1 in 20 or more.
    assert shares["ltg"] < 0.01 < shares["en"]
    # A word nothing else matches gets its guessed stem where guesses are on, not where off.
    model = open_model(en_model)
    try:
        trace: list = []
        score(model, "Several Englandese towns.", title="Test page", trace=trace)
        assert model.guess_trails
        assert ("england", 8, 15) in {(t.key, t.start, t.end) for t in trace}
    finally:
        model.close()
    model = open_model(ltg_model)
    try:
        assert not model.guess_trails
    finally:
        model.close()


def _guess_case():
    """A random sentence of words built from a few stems and endings, in one of four
    scripts, with the stems (and some two-word n-grams of them) as the known anchors."""
    from hypothesis import strategies as st

    alphabets = {
        "mr": ("उत्तर", "दक्षिण", "संघ", "भारत", "ेस", "ासोबत", "ात", "ाचा", "ची"),
        "uk": ("лондон", "київ", "україн", "ові", "ом", "ою", "ськ", "а"),
        "en": ("england", "paris", "dog", "ish", "ese", "s", "ers", "ian"),
        "ltg": ("rēzekn", "daugpil", "ē", "is", "ys", "ai"),
    }

    @st.composite
    def case(draw):
        language = draw(st.sampled_from(sorted(alphabets)))
        parts = alphabets[language]
        stems = [p for p in parts if len(p) > 3]
        words = draw(st.lists(st.tuples(st.sampled_from(stems), st.sampled_from(("",) + parts)),
                              min_size=1, max_size=8))
        caps = draw(st.lists(st.booleans(), min_size=len(words), max_size=len(words)))
        text = " ".join((s.title() if c else s) + e for (s, e), c in zip(words, caps, strict=True))
        keys = set(draw(st.lists(st.sampled_from(stems), min_size=1, max_size=4)))
        if draw(st.booleans()) and len(words) > 1:
            keys.add(normalize(" ".join(s for s, _ in words[:2])))
        learnt = draw(st.lists(st.sampled_from(parts), max_size=2))
        return language, text + ".", keys, learnt

    return case()


def test_guessed_mentions_are_stems_before_a_trail_at_words_nothing_else_ends_at():
    """Over random sentences: a guessed mention is a whole key at the start of words, cut
    inside its last word before a rest the trail takes that is no learnt ending, and no
    other mention ends at that word."""
    import regex
    from hypothesis import given, settings

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(_guess_case())
    def check(case):
        language, text, keys, learnt = case
        trail = link_trail(language)
        # The filter's entries as an exact set: a Bloom filter's rare false positive (a
        # tiny one of near strings: "лондон лондонло" beside "лондон лондон") is looked up
        # in the dictionary and dropped later; here every mention must be a key.
        entries = filter_keys(keys, language)
        found = [m for _, m in page_mentions([text], language,
                                             lambda ks: [k in entries for k in ks],
                                             trail=trail, endings=learnt, whole_keys=True,
                                             guess_trails=True)]
        words = [m.span() for m in regex.finditer(r"[\p{L}\p{M}]+", text)]
        word_at = {b: (a, b) for a, b in words}
        ends_of = {next(b for a, b in words if a <= m.end - 1 < b)
                   for m in found if not m.guessed}
        letters = regex.compile(rf"(?:{trail})")
        guessed.extend(m for m in found if m.guessed)
        for m in (m for m in found if m.guessed):
            assert normalize(text[m.start : m.end]) == m.key and m.key in keys
            assert any(a == m.start for a, _ in words)  # starts a word
            rest = text[m.end : m.end + m.trail]
            assert 0 < m.trail <= MAX_TRAIL and m.end + m.trail in word_at  # ends its word
            assert letters.fullmatch(rest) and rest.lower() not in learnt
            assert m.end - word_at[m.end + m.trail][0] >= 3  # MIN_STEM letters stay
            assert m.end + m.trail not in ends_of  # no other mention ends at the word

    guessed: list = []
    check()
    assert len(guessed) >= 50 and any(m.length == 2 for m in guessed)  # it did guess

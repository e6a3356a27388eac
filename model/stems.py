"""Stems of inflected words: Snowball where the language has a stemmer, learnt endings elsewhere.

Editors link "[[Київ|Києві]]", "[[ভারত|ভারতের]]", "[[Athens|Athenian]]": the anchor text is
an inflected form nobody linked before, so an exact-text dictionary can never suggest it.
Every anchor key is also filed under its *stem key* (each word replaced by its stem, what
lies between the words kept), and a word of a page whose stem key is known becomes a
candidate of that stem class (``model.text.page_mentions``, ``stem=``).

Two methods, recorded in the manifest (``stemmer``) so the recommender stems as training did:

- ``snowball``: the Snowball stemmer of the language (PyStemmer), where one exists;
- ``learnt``: for every other language, suffix stripping with endings learnt from the wiki's
  own text in training (``learn_endings``): an ending is kept when it follows many distinct
  words that editors link or that are titles, as whole words of the text ("лондон" +
  "а", "ভারত" + "ের"). A word's stem is the word without the longest such ending.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache

import regex

from model.text import MAX_NGRAM, MIN_STEM, STEM, split_sentences, walk_tokens

MAX_ENDING = 5  # longest ending learnt (code points: Indic endings are vowel sign + letters)
# An ending is learnt when it follows at least this share of the distinct linked words and
# titles (and at least MIN_ENDING_STEMS of them): a share, so that the rule means the same
# on a wiki of 5,000 anchor words and on one of 5 million. Inflections follow hundreds of
# them (uk "а" 928 of 35,543, bn "ের" 2,050 of 21,246), name parts and compounds a few
# ("कृष्ण", "नगर").
ENDING_SHARE = 0.002
MIN_ENDING_STEMS = 5
METHODS = ("auto", "snowball", "learnt", "none")
# ISO 639 codes of Wikipedia languages -> PyStemmer's Snowball algorithm names.
SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech",
    "da": "danish", "nl": "dutch", "en": "english", "simple": "english", "eo": "esperanto",
    "et": "estonian", "fi": "finnish", "fr": "french", "de": "german", "el": "greek",
    "hi": "hindi", "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian",
    "lt": "lithuanian", "ne": "nepali", "no": "norwegian", "nb": "norwegian",
    "nn": "norwegian", "fa": "persian", "pl": "polish", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sr": "serbian", "st": "sesotho", "es": "spanish",
    "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}
_LETTERS = regex.compile(r"[\p{L}\p{M}]+")
# Scripts whose words are not separated by spaces: their units are graphemes, never stemmed.
_NO_SPACE = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}ー\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}]"
)
_SPACE = regex.compile(r"\s+")


def snowball_algorithm(language: str) -> str | None:
    """PyStemmer's algorithm for a wiki language, or None where Snowball has none."""
    return SNOWBALL.get(language.replace("_", "-").lower().split("-")[0])


def stemmable(word: str) -> bool:
    """Words of letters and marks outside no-space scripts: only those get a stem."""
    return _LETTERS.fullmatch(word) is not None and _NO_SPACE.search(word) is None


def learn_endings(
    words: Counter, anchor_words: Iterable[str], share: float = ENDING_SHARE
) -> list[str]:
    """Endings that tell apart many distinct anchor words from words of the text.

    ``words``: the lower-cased words of the training text; ``anchor_words``: the words of
    anchor keys and titles. Each text word is paired with the anchor words it shares its
    longest prefix with (at least MIN_STEM characters, the rest at most MAX_ENDING): the
    two rests are a pair of endings of that stem ("лондона" and "лондон": "" and "а";
    "pogosta" and "pogosts": "a" and "s"). A pair is kept when the distinct stems it
    occurs with are a good ``share`` of all anchor words, i.e. when it is a productive
    inflection of the wiki's language rather than chance ("london"/"long": "don" and "g")
    or the tail of one word family; the endings are those of the kept pairs. Only the
    wiki's own text is used: no word list, any language.
    """
    known = {w for w in anchor_words if len(w) >= MIN_STEM and stemmable(w)}
    least = max(MIN_ENDING_STEMS, share * len(known))
    by_prefix: dict[str, list[str]] = defaultdict(list)  # stem -> endings of anchor words
    for a in known:
        for t in range(min(MAX_ENDING, len(a) - MIN_STEM) + 1):
            by_prefix[a[: len(a) - t]].append(a[len(a) - t :])
    stems_of: dict[tuple[str, str], set[str]] = defaultdict(set)  # ending pair -> stems
    for word in words:
        if not stemmable(word):
            continue
        for t in range(min(MAX_ENDING, len(word) - MIN_STEM) + 1):
            stem, ending = word[: len(word) - t], word[len(word) - t :]
            paired = False
            for other in by_prefix.get(stem, ()):
                if other[:1] != ending[:1]:  # the longest prefix the two words share
                    paired = True
                    stems_of[(min(other, ending), max(other, ending))].add(stem)
            if paired:
                break
    return sorted(
        {e for pair, stems in stems_of.items() if len(stems) >= least for e in pair if e}
    )


class Stemmer:
    """word -> stem for one wiki, as the manifest describes it (``spec``)."""

    def __init__(self, spec: dict | None):
        self.spec = spec or {"method": "none"}
        self.method: str = self.spec["method"]
        self._snowball = None
        self._endings: dict[int, frozenset[str]] = {}
        if self.method == "snowball":
            import Stemmer as pystemmer

            self._snowball = pystemmer.Stemmer(self.spec["algorithm"])
            self._snowball.maxCacheSize = 100_000
        elif self.method == "learnt":
            by_length: dict[int, set[str]] = defaultdict(set)
            for e in self.spec["endings"]:
                by_length[len(e)].add(e)
            self._endings = {n: frozenset(v) for n, v in sorted(by_length.items(), reverse=True)}
        self.enabled = self.method in ("snowball", "learnt")
        self._cache: dict[str, str] = {}

    def __reduce__(self):
        # Rebuilt from its spec in the receiving process: the Snowball stemmer is a C object
        # that cannot be pickled, and training sends fold models between processes.
        return (Stemmer, (self.spec,))

    def _strip(self, word: str) -> str:
        for n, endings in self._endings.items():  # longest first
            if len(word) - n >= MIN_STEM and word[-n:] in endings:
                return word[:-n]
        return word

    def words(self, words: Sequence[str]) -> list[str]:
        """Stems of lower-cased words (a word that is not ``stemmable`` is its own stem)."""
        cache = self._cache
        todo = [w for w in dict.fromkeys(words) if w not in cache]
        if todo:
            if len(cache) > 200_000:
                cache.clear()
            ok = [w for w in todo if stemmable(w)]
            if self._snowball is not None:
                cache.update(zip(ok, self._snowball.stemWords(ok), strict=True))
            else:
                cache.update((w, self._strip(w)) for w in ok)
            cache.update((w, w) for w in todo if w not in cache)
        return list(map(cache.__getitem__, words))

    def key(self, key: str, language: str) -> str | None:
        """The stem-class key of an anchor key (``STEM`` + each word stemmed), None if none.

        What lies between the words is kept (white space folded), so "київська русь" and
        "київської русі" share a class and "a, b" and "a b" do not. Keys with no stemmable
        word (digits, no-space scripts) have no class: exact matching already covers them.
        """
        spans = walk_tokens(key, language)
        if not spans:
            return None
        words = [key[a:b] for a, b in spans]
        if not any(stemmable(w) for w in words):
            return None
        stems = self.words(words)
        out, pos = [STEM], 0
        for (a, b), s in zip(spans, stems, strict=True):
            out.append(_SPACE.sub(" ", key[pos:a]))
            out.append(s)
            pos = b
        out.append(key[pos:])
        return "".join(out)


def choose(method: str, language: str) -> str:
    """The stemming method ``auto`` means for a language: Snowball if it has one, else learnt."""
    if method not in METHODS:
        raise ValueError(f"unknown stemmer {method!r} (one of: {', '.join(METHODS)})")
    if method == "auto":
        return "snowball" if snowball_algorithm(language) else "learnt"
    if method == "snowball" and snowball_algorithm(language) is None:
        return "none"
    return method


@lru_cache(maxsize=16)
def _cached(spec_json: str) -> Stemmer:
    import json

    return Stemmer(json.loads(spec_json))


def stemmer_for(spec: dict | None) -> Stemmer:
    """One shared Stemmer per spec in a process (its word cache survives across pages)."""
    import json

    return _cached(json.dumps(spec or {"method": "none"}, sort_keys=True, ensure_ascii=False))


def stem_ngrams(
    text: str,
    language: str,
    stemmer: Stemmer,
    wanted: set[str],
    abbreviations: frozenset[str] = frozenset(),
    max_n: int = MAX_NGRAM,
) -> set[str]:
    """The stem-class keys in ``wanted`` that n-grams of ``text`` have (link probability).

    The n-grams of ``model.text.ngrams`` (1..max_n tokens of one sentence), keyed as
    ``Stemmer.key`` keys an anchor: each word stemmed, white space between words folded.
    """
    out: set[str] = set()
    for _, sentence, _, toks in split_sentences(text, language, abbreviations=abbreviations):
        stems = stemmer.words([sentence[a:b].lower() for a, b in toks])
        count = len(toks)
        for i in range(count):
            key = STEM + stems[i]
            if key in wanted:
                out.add(key)
            for j in range(i + 1, min(i + max_n, count)):
                gap = sentence[toks[j - 1][1] : toks[j][0]].lower()
                key += (gap if gap == " " else _SPACE.sub(" ", gap)) + stems[j]
                if key in wanted:
                    out.add(key)
    return out

"""Language-aware tokens, sentences and n-grams, all as code-point offsets into one string.

Offsets (not token strings) flow everywhere so that a mention found in the plain text maps
back to its exact place in the wikitext. Training and recommending use the same functions,
so an anchor learnt from a link matches the same span when it later appears as plain text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache, partial
from itertools import accumulate, compress
from operator import add, itemgetter, lt, ne, not_, or_, sub
from pathlib import Path
from typing import NamedTuple

import numpy as np
import regex

# Letters, combining marks (Indic vowel signs are marks, which `\w` would split on) and digits,
# optionally joined by an apostrophe, hyphen or period inside a word ("l'Italie", "U.S.").
_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:['’\-.][\p{L}\p{M}\p{N}]+)*")
# Scripts written without spaces between words: such runs are split further.
_NO_SPACE_RUN = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}ー\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}]+"
)
_SCRIPT_PIECE = regex.compile(
    r"\p{Han}+|[\p{Hiragana}]+|[\p{Katakana}ー]+|[^\p{Han}\p{Hiragana}\p{Katakana}ー]+"
)
# A sentence ends after a terminator followed by space (Latin, Greek ";", Armenian, Arabic,
# Devanagari/Bengali danda, Ethiopic), or after a full-width terminator.
TERMINATORS = ".!?;։؟।॥።"
_SENTENCE_END = regex.compile(rf"(?<=[{TERMINATORS}])\s+|(?<=[。！？｡])\s*|\n+")
# The same, and a control character (never prose: a link must not cross one) ends one too.
# The standard library's engine: four times faster than ``regex`` on this pattern, the same
# matches (its \s is str.isspace(); the controls where the two differ end a sentence anyway).
_SENTENCE_END_CONTROL = re.compile(
    rf"(?<=[{TERMINATORS}])\s+|(?<=[。！？｡])\s*|[\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+"
)
# A word, its period and the spaces after it: where a period may be inside a sentence, after
# a known abbreviation, an initial ("W." of "George W. Bush") or before a lower-case word.
_PERIOD_SPACE = regex.compile(r"(?<=[\p{L}\p{M}\p{N}])\.([ \t\xa0]+)")
_WORD_BACK = regex.compile(r"[\p{L}\p{M}\p{N}'’\-.]*[\p{L}\p{M}\p{N}]", regex.REVERSE)
_INITIAL = regex.compile(r"[\p{Lu}\p{Lt}\p{Lo}]\p{M}*")  # one capital (or caseless) letter
_SPACE = regex.compile(r"\s+")
_ODD_SPACE = regex.compile(r"[^\S ]|  ")  # white space other than single spaces
_ODD_SPACE_IN_SENTENCE = regex.compile(r"[^\S \n]|  ")  # the same but line breaks

MAX_NGRAM = 5


@lru_cache(maxsize=8)
def _sentencepiece(language: str):  # pragma: no cover - trivial loader
    from mwtokenizer import Tokenizer

    return Tokenizer(language_code=language)


def _split_no_space(text: str, start: int, language: str) -> Iterator[tuple[int, int]]:
    """Split a run of a no-space script into word-like pieces (sentencepiece, then script)."""
    pos = 0
    for piece in _sentencepiece(language if language in _NO_SPACE_LANGS else "ja").word_tokenize(
        text
    ):
        piece = piece.strip()
        if not piece:
            continue
        found = text.find(piece, pos)
        if found < 0:
            continue
        pos = found + len(piece)
        for m in _SCRIPT_PIECE.finditer(piece):
            yield start + found + m.start(), start + found + m.end()


_NO_SPACE_LANGS = {"ja", "zh", "th", "lo", "km", "my", "bo", "dz", "wuu", "zh_yue"}


def tokens(text: str, language: str = "en") -> list[tuple[int, int]]:
    """Word spans of ``text`` as (start, end) offsets."""
    if _NO_SPACE_RUN.search(text) is None:  # the common case: one regex pass
        return [m.span() for m in _WORD.finditer(text)]
    out: list[tuple[int, int]] = []
    for m in _WORD.finditer(text):
        word = m.group()
        if _NO_SPACE_RUN.search(word) is None:
            out.append(m.span())
            continue
        # Mixed word: keep latin/digit stretches whole, split the no-space runs.
        pos = 0
        for run in _NO_SPACE_RUN.finditer(word):
            if run.start() > pos:
                out.append((m.start() + pos, m.start() + run.start()))
            out.extend(_split_no_space(run.group(), m.start() + run.start(), language))
            pos = run.end()
        if pos < len(word):
            out.append((m.start() + pos, m.end()))
    return out


def _spans(text: str, bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The non-empty stretches of ``text`` between the (start, end) boundary matches."""
    starts = [0] + [b for _, b in bounds]
    ends = [a for a, _ in bounds] + [len(text)]
    return [(s, e) for s, e in zip(starts, ends, strict=True) if e > s]


def probe_sentences(text: str) -> list[tuple[int, int]]:
    """The legacy rule: every terminator followed by space ends a sentence, as do line breaks.

    The backtest picks its probe sentences with it (model/train.py ``pure_sentences``), so
    its figures stay comparable across versions; the recommender uses ``sentences``.
    """
    return _spans(text, [m.span() for m in _SENTENCE_END.finditer(text)])


def sentences(text: str, abbreviations: frozenset[str] = frozenset()) -> list[tuple[int, int]]:
    """Sentence spans of ``text``; line breaks and control characters always end one.

    A period after a known abbreviation does not end a sentence, so "St. Petersburg" or
    "м. Київ" stay in one sentence and can be suggested. ``abbreviations`` are lower-cased
    words without their final period ("st", "u.s"), learnt from the wiki's own text in
    training (``learn_abbreviations``) and stored with the model.
    """
    return list(zip(*sentence_edges(text, abbreviations), strict=True))


def sentence_edges(
    text: str, abbreviations: frozenset[str] = frozenset()
) -> tuple[list[int], list[int]]:
    """``sentences`` as two lists, the starts and the ends (no tuple per sentence)."""
    found = list(_SENTENCE_END_CONTROL.finditer(text))
    heads = list(map(re.Match.start, found))  # where a boundary starts: a sentence's end
    tails = list(map(re.Match.end, found))  # where it ends: the next sentence's start
    if heads and "." in text:
        end_of = dict(zip(heads, tails, strict=True))
        drop = set()
        for m in _PERIOD_SPACE.finditer(text):
            a, b = m.span(1)
            # Only a run of spaces (no line break) may be inside a sentence.
            if end_of.get(a) != b:
                continue
            if text[b : b + 1].islower():
                drop.add(a)
                continue
            word = _WORD_BACK.match(text, max(0, a - 41), a - 1).group()
            if _INITIAL.fullmatch(word) is not None or word.lower() in abbreviations:
                drop.add(a)
        if drop:
            kept = [a not in drop for a in heads]
            heads = list(compress(heads, kept))
            tails = list(compress(tails, kept))
    starts = [0, *tails]
    ends = [*heads, len(text)]
    nonempty = list(map(lt, starts, ends))
    return list(compress(starts, nonempty)), list(compress(ends, nonempty))


def listed_abbreviations(language: str) -> frozenset[str]:
    """mwtokenizer's hand-checked abbreviation list for the language's wiki, if it has one."""
    import json
    from importlib.resources import files

    try:
        table = json.loads(files("mwtokenizer.assets").joinpath("dict_abbr_filtered.json")
                           .read_text(encoding="utf-8"))
    except (OSError, ValueError):  # pragma: no cover - the package ships the file
        return frozenset()
    words = table.get(f"{language.replace('-', '_')}wiki", ())
    return frozenset(w[:-1].lower() for w in words if w.endswith(".") and len(w) > 1)


MAX_ABBREVIATIONS_TEXT = 20_000_000  # characters of training text Punkt learns from at most


def learn_abbreviations(texts: Iterable[str], with_params: bool = False):
    """The abbreviations of a wiki, learnt unsupervised (nltk's Punkt) from its own text.

    Punkt counts how often a word ends with a period and how rarely it occurs without one:
    no list per language is needed, so it works on wikis nobody wrote a list for. Line
    breaks end sentences anyway, so each line is a separate paragraph for the trainer.
    """
    from nltk.tokenize.punkt import PunktTrainer

    trainer = PunktTrainer()
    size = 0
    for text in texts:
        if size > MAX_ABBREVIATIONS_TEXT:
            break
        size += len(text)
        trainer.train(text, finalize=False)
    trainer.finalize_training()
    params = trainer.get_params()
    abbreviations = frozenset(a for a in params.abbrev_types if a and len(a) <= 20)
    return (abbreviations, params) if with_params else abbreviations


def normalize(mention: str) -> str:
    """The anchor-dictionary key of a piece of text: lower-cased, white space folded."""
    return _SPACE.sub(" ", mention).strip().lower()


def normalize_title(title: str) -> str:
    """MediaWiki title form: underscores as spaces, folded spaces, first letter upper-cased."""
    title = _SPACE.sub(" ", title.replace("_", " ")).strip()
    return title[:1].upper() + title[1:]


class Mention(NamedTuple):
    """An n-gram of one sentence: where it is and its dictionary key.

    ``trail`` > 0: the mention is the stem of its last word and that many characters of the
    word follow it as a MediaWiki link trail (``[[Лондон]]і``); ``end`` is the stem's end.
    """

    start: int
    end: int
    key: str
    length: int
    sentence_start: bool
    trail: int = 0
    aligned: bool = True  # starts and ends at ``tokens`` boundaries (word pieces)
    # Non-empty: the mention was found by its stem key (``model.stems``), this one; ``key``
    # stays the exact text key, which the dictionary may not know.
    stem: str = ""
    # The trail is no ending the wiki's editors were seen to let trail (``trail_endings``):
    # cut where no other mention ends at that word (``page_mentions``), the weakest evidence.
    guessed: bool = False


def split_sentences(
    text: str, language: str, *, abbreviations: frozenset[str] = frozenset()
) -> Iterator[tuple[int, str, str | None, list]]:
    """(offset, sentence, its lower-cased form or None, token spans) for each sentence.

    The text is tokenized once and its tokens dealt out to sentences: tokens never cross a
    sentence end. The lower-cased form is None where keys need the slow normalization
    (unusual white space, or lower-casing that changes the length, e.g. "İ").
    """
    toks = tokens(text, language)
    k = 0
    for s_start, s_end in sentences(text, abbreviations):
        while k < len(toks) and toks[k][0] < s_start:
            k += 1
        first = k
        while k < len(toks) and toks[k][1] <= s_end:
            k += 1
        sentence = text[s_start:s_end]
        lower = sentence.lower()
        exact = len(lower) == len(sentence) and _ODD_SPACE.search(sentence) is None
        yield (
            s_start,
            sentence,
            lower if exact else None,
            [(a - s_start, b - s_start) for a, b in toks[first:k]],
        )


def ngrams(
    text: str,
    language: str = "en",
    max_n: int = MAX_NGRAM,
    *,
    abbreviations: frozenset[str] = frozenset(),
) -> Iterator[Mention]:
    """All 1..max_n token n-grams within each sentence of ``text``."""
    for s_start, sentence, lower, toks in split_sentences(
        text, language, abbreviations=abbreviations
    ):
        count = len(toks)
        for i in range(count):
            a = toks[i][0]
            for n in range(1, min(max_n, count - i) + 1):
                b = toks[i + n - 1][1]
                key = lower[a:b] if lower is not None else normalize(sentence[a:b])
                yield Mention(s_start + a, s_start + b, key, n, i == 0)


def prefixes(key: str, language: str = "en") -> list[str]:
    """Every key an n-gram growing towards ``key`` passes through, ``key`` included.

    Token prefixes for space-separated text; every character prefix where a no-space script
    appears, because its word pieces depend on the surrounding text.
    """
    if _NO_SPACE_RUN.search(key):
        return [key[:i] for i in range(1, len(key) + 1)]
    # The key itself too: it may end in punctuation after its last token ("u.s.", "(adhd)").
    return list(dict.fromkeys([key[:end] for _, end in tokens(key, language)] + [key]))


# A filter entry saying "this is a whole key", not only the prefix of one: probed for
# mentions that cannot grow further (a stem before a trail, punctuation glued to the end).
WHOLE = "\x00"


def cut_stems(texts: Sequence[str], cuts: Sequence[int], lead: str = "") -> list[str]:
    """``lead + text[:-t]`` for t = 1 .. ``cuts[x]`` of each text, in that order: the stems a
    guessed trail probes (``Bloom.contains_cut`` hashes the same without building them)."""
    return [lead + t[:-c] for t, n in zip(texts, cuts, strict=True) for c in range(1, n + 1)]


def filter_keys(keys: Iterable[str], language: str) -> set[str]:
    """What a model's Bloom filter holds for its anchor keys: prefixes and whole keys."""
    out: set[str] = set()
    for key in keys:
        out.update(prefixes(key, language))
        out.add(WHOLE + key)
    return out


class PrefixIndex:
    """``filter_keys`` of every subset of a fixed list of keys, as arrays built once.

    A fold task's set of every anchor prefix held ~110 bytes a string in a Python set, for
    tens of millions of prefixes at enwiki's size, and walking its keys' strings in a
    forked worker copied their pages. Here the candidate keys of every fold's dictionary
    are walked once, before the fold tasks fork: each distinct string that ``filter_keys``
    would hold for some key is its ``hash()`` (sorted, int64) and one key and length it is
    cut from (length -1: ``WHOLE`` + key), with the keys it comes from (``sources``, by
    entry); a fold's set is then a mask over the entries (``KeySet``). ``hash`` is the
    process's own (forked workers share it); nothing derived from it leaves the process.
    """

    CHUNK = 1 << 21  # occurrences hashed before they are sorted by hash

    def __init__(self, keys: Sequence[str], language: str) -> None:
        self.keys = keys
        parts: list[tuple[np.ndarray, ...]] = []
        hashes, sources, lengths = array("q"), array("i"), array("i")
        for at, key in enumerate(keys):
            for p in prefixes(key, language):
                hashes.append(hash(p))
                sources.append(at)
                lengths.append(len(p))
            hashes.append(hash(WHOLE + key))
            sources.append(at)
            lengths.append(-1)
            if len(hashes) >= self.CHUNK or at == len(keys) - 1:
                h = np.asarray(hashes, dtype=np.int64)
                order = np.argsort(h, kind="stable")
                parts.append((h[order], np.asarray(sources, dtype=np.int32)[order],
                              np.asarray(lengths, dtype=np.int32)[order]))
                hashes, sources, lengths = array("q"), array("i"), array("i")
        h, src, length = (map(np.concatenate, zip(*parts, strict=True)) if parts else
                          (np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32)))
        order = np.argsort(h, kind="stable")  # the chunks merged
        h, src, length = h[order], src[order], length[order]
        del order, parts
        # owner: the first occurrence of the same string; a hash shared by two strings
        # (rare) gives each its own entry.
        owner = np.arange(len(h))
        texts: dict[str, int] = {}
        previous = -1  # the occurrence before x when x continues a run of equal hashes
        for x in (np.flatnonzero(h[1:] == h[:-1]) + 1).tolist():
            if x - 1 != previous:  # a run starts at x - 1
                texts = {self.cut(int(src[x - 1]), int(length[x - 1])): x - 1}
            owner[x] = texts.setdefault(self.cut(int(src[x]), int(length[x])), x)
            previous = x
        order = np.argsort(owner, kind="stable")
        owner = owner[order]
        self.starts = np.flatnonzero(np.concatenate([[True], owner[1:] != owner[:-1]])) \
            if len(owner) else np.zeros(0, dtype=np.int64)
        first = owner[self.starts]
        self.hashes, self.src, self.length = h[first], src[first], length[first]
        self.sources = src[order]

    def cut(self, source: int, length: int) -> str:
        key = self.keys[source]
        return WHOLE + key if length < 0 else key[:length]

    def text(self, entry: int) -> str:
        return self.cut(int(self.src[entry]), int(self.length[entry]))

    def members(self, kept: np.ndarray) -> np.ndarray:
        """Which entries some kept key (a mask over ``keys``) has."""
        if not len(self.starts):
            return np.zeros(0, dtype=bool)
        return np.logical_or.reduceat(kept[self.sources], self.starts)


class KeySet:
    """What ``filter_keys`` holds for some keys of a ``PrefixIndex``: a mask over its
    entries (a byte each). A probe whose hash is found is compared with the members it
    shares the hash with, so the answers are exactly the set's, collisions included."""

    def __init__(self, index: PrefixIndex, kept: np.ndarray | None = None) -> None:
        self.index = index
        self.member = (np.ones(len(index.hashes), dtype=bool) if kept is None
                       else index.members(kept))

    @staticmethod
    def of(keys: Iterable[str], language: str) -> KeySet:
        """``filter_keys(keys, language)``."""
        return KeySet(PrefixIndex(list(keys), language))

    def __len__(self) -> int:
        return int(self.member.sum())

    def __contains__(self, probe: object) -> bool:
        return isinstance(probe, str) and self.passes([probe])[0]

    def passes(self, probes: Sequence[str]) -> list[bool]:
        """Whether each probe is a member (as ``probe in filter_keys(...)``)."""
        hashes, member = self.index.hashes, self.member
        if not len(hashes) or not probes:
            return [False] * len(probes)
        h = np.fromiter(map(hash, probes), dtype=np.int64, count=len(probes))
        at = np.searchsorted(hashes, h)
        last = len(hashes) - 1
        found = np.flatnonzero(hashes[np.minimum(at, last)] == h)
        at, h = at[found], h[found]
        # A hash no other entry shares (nearly all): one comparison with its member.
        alone = (at == last) | (hashes[np.minimum(at + 1, last)] != h)
        index = self.index
        out = [False] * len(probes)
        src = index.src[at]
        many = getattr(index.keys, "many", None)
        keys = many(src) if many is not None else [index.keys[i] for i in src.tolist()]
        for x, a, hx, one, kept, key, length in zip(
            found.tolist(), at.tolist(), h.tolist(), alone.tolist(), member[at].tolist(),
            keys, index.length[at].tolist(), strict=True,
        ):
            if one:
                out[x] = kept and (WHOLE + key if length < 0 else key[:length]) == probes[x]
                continue
            while a <= last and hashes[a] == hx and not out[x]:
                out[x] = bool(member[a]) and index.text(a) == probes[x]
                a += 1
        return out

    def members(self) -> Iterator[str]:
        """Every member once, in hash order (what the model's Bloom filter is built from)."""
        return map(self.index.text, np.flatnonzero(self.member).tolist())


# Punctuation glued to a word (no white space between): an anchor key may begin or end so.
_EDGE = regex.compile(r"[^\s\p{L}\p{M}\p{N}]+")


def _edge_char(ch: str) -> bool:
    """Punctuation or a symbol: neither white space nor part of a word."""
    return not ch.isspace() and unicodedata.category(ch)[0] not in "LMN"

MAX_TRAIL = 5  # longest ending tried as a link trail (>= 95 % of trailed links in every dump)
MIN_STEM = 3  # shortest stem of a word tried before a trail (shorter: < 1 % of trailed links)
_GRAPHEME = regex.compile(r"\X")
_TRAILS = Path(__file__).with_name("linktrails.json")


@lru_cache(maxsize=1)
def _trail_table() -> dict[str, dict]:
    return json.loads(_TRAILS.read_text(encoding="utf-8"))


def link_trail(language: str) -> str | None:
    """The language's MediaWiki link trail pattern (English's for a language MediaWiki lacks).

    Extracted from MediaWiki's ``Messages*.php`` by ``scripts/link_trails.py``; None where the
    language has none (Chinese). Training records it in the manifest.
    """
    table = _trail_table()
    entry = table.get(language.replace("_", "-").lower()) or table["en"]
    return entry["trail"]


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> regex.Pattern:
    return regex.compile(pattern)


def compiled_trail(pattern: str) -> regex.Pattern:
    """A link trail pattern (``link_trail``), compiled once per process."""
    return _compiled(pattern)


def link_end(text: str, end: int, trail: str | None) -> int:
    """Where a link ending at ``end`` ends as MediaWiki renders it: after the letters of the
    language's link ``trail`` that follow it (``[[Лондон]]ові`` is one linked word)."""
    if not trail:
        return end
    m = _compiled(trail).match(text, end)
    return m.end() if m else end


def trail_endings(wikitext: str, trail: str | None) -> list[str]:
    """The endings editors let trail after links in ``wikitext`` (lower-cased, short ones).

    Training counts them over the wiki's own articles: a stem is tried only before an
    ending the wiki really uses as a trail ("s", "і", "ाचा"), not before any letters the
    trail pattern allows, which keeps the candidates few and meaningful in every language.
    """
    if not trail:
        return []
    found = _compiled(rf"\]\]((?:{trail}))").finditer(wikitext)
    return [m.group(1).lower() for m in found if len(m.group(1)) <= MAX_TRAIL]


_LAST = itemgetter(slice(-1, None))  # a key's last character ("" for "")


def _ending_lengths(endings: Iterable[str], lengths: list[int]) -> dict[str, list[int]]:
    """Last character -> the ``lengths`` (ascending) of the endings that end with it."""
    out: dict[str, list[int]] = {}
    for t in lengths:
        for c in sorted({e[-1] for e in endings if len(e) == t}):
            out.setdefault(c, []).append(t)
    return out


def _cuts(
    keys: Iterable[str], endings: frozenset[str], by_last: dict[str, list[int]]
) -> list[tuple[str, int, str]]:
    """(key, trail length, filter probe of the stem) for each known ending of each key.

    At least MIN_STEM characters of the last word stay in the stem; each occurrence is
    then checked against the trail pattern on its own text, and only when the stem is a
    known anchor. ``by_last`` (``_ending_lengths``): most keys end in no ending's last
    letter and are skipped at C speed; the others try only the lengths of the endings
    that end in their letter.
    """
    keys = list(keys)
    out = []
    for k in compress(keys, map(by_last.__contains__, map(_LAST, keys))):
        size = len(k)
        for t in by_last[k[-1]]:
            if k[-t:] in endings and size - t >= MIN_STEM and " " not in k[-t - MIN_STEM : -t]:
                out.append((k, t, WHOLE + k[:-t]))
    return out


def walk_tokens(text: str, language: str = "en") -> list[tuple[int, int]]:
    """The units mentions are made of: ``tokens``, but every grapheme of a no-space run.

    Word pieces of a no-space script depend on the text around them (sentencepiece cuts
    "東京都" one way in a link and another in running text), so a known anchor is looked for
    at every character boundary there; the Bloom filter holds every character prefix of
    such keys (``prefixes``), which keeps the walk short.
    """
    if _NO_SPACE_RUN.search(text) is None:
        return [m.span() for m in _WORD.finditer(text)]
    out: list[tuple[int, int]] = []
    for m in _WORD.finditer(text):
        pos = m.start()
        for run in _NO_SPACE_RUN.finditer(text, m.start(), m.end()):
            if run.start() > pos:
                out.append((pos, run.start()))
            out.extend(g.span() for g in _GRAPHEME.finditer(text, run.start(), run.end()))
            pos = run.end()
        if pos < m.end():
            out.append((pos, m.end()))
    return out


_MATCH = type(_WORD.match("a"))  # the ``regex`` module's match objects


def _token_edges(text: str, language: str) -> tuple[list[int], list[int]]:
    """``walk_tokens`` as two lists, the starts and the ends (no tuple per token)."""
    if _NO_SPACE_RUN.search(text) is None:
        found = list(_WORD.finditer(text))
        return list(map(_MATCH.start, found)), list(map(_MATCH.end, found))
    toks = walk_tokens(text, language)
    if not toks:
        return [], []
    begin, end = zip(*toks, strict=True)
    return list(begin), list(end)


def page_mentions(
    texts: list[str],
    language: str,
    passes: Callable[[list[str]], Sequence[bool]],
    max_n: int | None = None,
    trail: str | None = None,
    endings: Iterable[str] = (),
    *,
    abbreviations: frozenset[str] = frozenset(),
    stemmer=None,
    whole_keys: bool = False,
    guess_trails: bool = False,
    passes_cut: Callable[[list[str], list[int], str], np.ndarray] | None = None,
) -> list[tuple[int, Mention]]:
    """The n-grams of several texts that can still be anchors, as (text index, mention).

    Grows n-grams one token at a time and drops those whose key fails ``passes`` (a filter
    of anchor prefixes, checked for the whole page at once per length), so the work follows
    the few n-grams that can match rather than all of them; without ``max_n`` an n-gram
    grows as long as its key passes, so no known anchor is too long to be found. An n-gram
    may also start at punctuation glued to its first word and end at punctuation glued to
    its last ("«Космос»", "U.S."). With a ``trail`` pattern (``link_trail``), each n-gram's
    last word is also cut before each of ``endings`` (``trail_endings``: those the wiki uses)
    when the ending full-matches the pattern, and the stem is a mention with ``trail`` set;
    stems and glued endings are probed as whole keys (``WHOLE``). With ``stemmer`` (a
    ``model.stems.Stemmer``), n-grams are also grown over the words' stems, and an n-gram
    whose stem key is a whole key of the filter is a mention with ``stem`` set (its ``key``
    the exact text, which the dictionary may not know). Training and recommending both
    generate mentions here. Sorted by position. ``whole_keys``: the filter marks whole keys
    (``WHOLE``), so an n-gram that is only the prefix of an anchor is grown but not returned.
    ``guess_trails`` (with a ``trail``): a word no mention ends at is also cut before any rest
    the trail pattern takes (``_guessed_trails``), those mentions marked ``guessed``;
    ``passes_cut(texts, cuts, lead)`` (``Bloom.contains_cut``), when given, probes their
    stems ``lead + text[:-t]`` without building them, with the same answers as ``passes``.
    """
    # All texts joined by line breaks (which always end a sentence): one tokenization and
    # one lower-casing for the page; survivors are mapped back to their text at the end.
    # The per-token and per-n-gram steps are written as C-level maps and compresses over
    # parallel lists (no Python bytecode per element where it can be avoided): the walk
    # is most of the recommender's time beyond parsing.
    joined = "\n".join(texts)
    starts = list(accumulate([len(text) + 1 for text in texts[:-1]], initial=0)) if texts else []
    begin, end = _token_edges(joined, language)
    count = len(begin)
    sentence_begin, sentence_end = sentence_edges(joined, abbreviations)
    # Tokens never cross a sentence end: a token belongs to the first sentence ending at or
    # after its end; it is the first of its sentence when the one before it is not in it.
    sentence_of = list(map(partial(bisect_left, sentence_end), end))
    first_token = list(map(ne, sentence_of, [-1, *sentence_of[:-1]]))
    # left[i]: tokens from i to the end of its sentence; an n-gram from i exists iff left[i] >= n.
    left = list(map(sub, map(partial(bisect_right, sentence_of), sentence_of), range(count)))
    lower = joined.lower()
    exact = len(lower) == len(joined)
    # Keys need the slow normalization where lower-casing changes lengths or unusual white
    # space lies inside the n-gram: tokens i..j are clean when no such space lies between.
    # Line breaks end sentences, so no n-gram holds one: they need no slow keys.
    odd = [m.start() for m in _ODD_SPACE_IN_SENTENCE.finditer(joined)]
    if odd:
        before = list(map(partial(bisect_right, odd), begin))
        upto = list(map(partial(bisect_right, odd), end))
    else:  # the common case: every n-gram's key is a slice of the lower-cased page
        before = upto = [0] * count

    def key(a: int, b: int, i: int, j: int) -> str:
        if exact and before[i] == upto[j]:
            return lower[a:b]
        return normalize(joined[a:b])

    def flags(keys: list[str]) -> list[bool]:
        found = passes(keys)
        tolist = getattr(found, "tolist", None)  # a numpy array (the Bloom filter): as bools
        return tolist() if tolist is not None else list(found)

    ending = _compiled(trail).fullmatch if trail else None

    known = frozenset(endings)
    lengths = sorted({len(e) for e in known if len(e) <= MAX_TRAIL})
    by_last = _ending_lengths(known, lengths)
    # Where a mention may start: at each token, and before punctuation glued to its left.
    leads: list[tuple[int, int]] = []  # (first token, start offset) of the latter, few
    for i in [i for i, a in enumerate(begin) if a and not joined[a - 1].isspace()]:
        low = sentence_begin[sentence_of[i]]
        if i and sentence_of[i - 1] == sentence_of[i]:
            low = end[i - 1]
        a = begin[i]
        while a > low and _edge_char(joined[a - 1]):
            a -= 1
        leads.extend((i, x) for x in range(a, begin[i]))
    # Where a mention may end after punctuation glued to the right of its last token j
    # ("U.S.", "(ADHD)", "«Космос»"): token j -> the end of that punctuation, few.
    padded = joined + " "
    tails: dict[int, int] = {}
    for j in compress(range(count), map(not_, map(str.isspace, map(padded.__getitem__, end)))):
        b = end[j]
        if j + 1 >= count or begin[j + 1] > b:
            tail = _EDGE.match(joined, b, begin[j + 1] if j + 1 < count else len(joined))
            if tail:
                tails[j] = tail.end()
    plain: list[int] = list(range(count))
    alive: list[list[int]] = []  # alive[n - 1]: first tokens of the n-grams whose key passed
    # (start, end, token, n, key, trail, stem key)
    found: list[tuple[int, int, int, int, str, int, str]] = []
    n = 0
    while max_n is None or n < max_n:
        n += 1
        m = n - 1
        longer = partial(lt, m)  # left[i] > m: the sentence holds tokens i..i+m
        grown = list(compress(plain, map(longer, map(left.__getitem__, plain))))
        leads = [(i, a) for i, a in leads if left[i] > m]
        if not grown and not leads:
            break
        end_m = end[m:] if m else end  # end_m[i]: end of token i + m
        firsts = grown + [i for i, _ in leads]
        opening = list(map(begin.__getitem__, grown))  # start of entry x
        closing = list(map(end_m.__getitem__, grown))
        if exact:  # slices of the lower-cased page, but where odd white space lies inside
            keys = list(map(lower.__getitem__, map(slice, opening, closing)))
            if odd:
                upto_m = upto[m:]
                slow = map(ne, map(before.__getitem__, grown), map(upto_m.__getitem__, grown))
                for x in compress(range(len(grown)), slow):
                    keys[x] = normalize(joined[opening[x] : closing[x]])
        else:
            keys = list(map(normalize, map(joined.__getitem__, map(slice, opening, closing))))
        keys += [key(a, end_m[i], i, i + m) for i, a in leads]
        opening += [a for _, a in leads]
        lead_at = len(grown)
        entries = range(len(keys))

        unique = list(dict.fromkeys(keys))
        # Stems are probed with the n-grams, in one call: they do not depend on each other.
        cuts = _cuts(unique, known, by_last) if known else []
        cut_probes = [c[2] for c in cuts]
        probes = unique + list(dict.fromkeys(cut_probes))
        ok = dict(zip(probes, flags(probes), strict=True))
        passed = list(map(ok.__getitem__, keys))
        if whole_keys:  # only whole keys are mentions; the mere prefixes just grow
            passing = list(compress(unique, map(ok.__getitem__, unique)))
            whole = set(compress(passing, flags([WHOLE + k for k in passing])))
            hits = compress(entries, map(whole.__contains__, keys))
        else:
            hits = compress(entries, passed)
        for x in hits:
            i = firsts[x]
            found.append((opening[x], end_m[i], i, n, keys[x], 0, ""))
        plain = list(compress(grown, passed))  # the first lead_at entries are the grown ones
        alive.append(plain)
        # Punctuation glued to the right of the last token may end the key.
        ends: list[tuple[int, int, str]] = []  # (entry, end, key) probed as whole keys
        if tails:
            glued_at = {j - m for j in tails}
            for x in compress(entries, map(glued_at.__contains__, firsts)):
                if not passed[x]:
                    continue
                i = firsts[x]
                a = opening[x]
                ends.extend(
                    (x, c, key(a, c, i, i + m)) for c in range(end_m[i] + 1, tails[i + m] + 1)
                )
        glued = list(dict.fromkeys(WHOLE + k for *_, k in ends))
        if glued:
            ok.update(zip(glued, flags(glued), strict=True))
        for x, c, k in ends:
            if ok[WHOLE + k]:
                found.append((opening[x], c, firsts[x], n, k, 0, ""))
        wanted: dict[str, list[int]] = {}  # n-gram key -> trail lengths of its known stems
        for k, t, _ in compress(cuts, map(ok.__getitem__, cut_probes)):
            wanted.setdefault(k, []).append(t)
        if wanted:
            for x in compress(entries, map(wanted.__contains__, keys)):
                k = keys[x]
                i = firsts[x]
                b = end_m[i]
                a = opening[x]
                for t in wanted[k]:
                    stem = key(a, b - t, i, i + m)
                    if ending(joined, b - t, b) and stem == k[:-t]:  # type: ignore[misc]
                        found.append((a, b - t, i, n, stem, t, ""))
        leads = list(compress(leads, passed[lead_at:]))
    if stemmer is not None and stemmer.enabled and count:
        if exact:
            words = list(map(lower.__getitem__, map(slice, begin, end)))
        else:
            words = list(map(normalize, map(joined.__getitem__, map(slice, begin, end))))
        stems = stemmer.words(words)
        _stem_walk(words, stems, begin, end, left, lower, exact, joined, key, flags, found)
    guessed: set[tuple[int, int, str]] = set()
    if ending is not None and guess_trails and count:
        for entry in _guessed_trails(found, alive, begin, end, left, joined, lower, exact,
                                     before, upto, ending, known, key, flags, passes_cut):
            found.append(entry)
            guessed.add((entry[0], entry[1], entry[4]))
    found.sort()  # position order in the joined text is text order, then offset order
    cuts_at: set[int] | None = None
    if _NO_SPACE_RUN.search(joined):
        cuts_at = {x for span in tokens(joined, language) for x in span}  # word-piece bounds
    out = []
    for a, b, i, n, k, t, s in found:
        text_index = bisect_right(starts, a) - 1
        start_ = starts[text_index]
        aligned = cuts_at is None or ((a in cuts_at or a < begin[i]) and b in cuts_at)
        out.append((
            text_index,
            Mention(a - start_, b - start_, k, n, first_token[i], t, aligned, s,
                    bool(guessed) and (a, b, k) in guessed),
        ))
    return out


def _guessed_trails(
    found, alive, begin, end, left, joined, lower, exact, before, upto, ending, known, key,
    passes, passes_cut,
):
    """Stems of words no mention ends at, cut before any rest the link trail takes.

    The wiki's learnt trail endings miss stacked and rare ones (``[[उत्तर]]ेस``,
    ``[[संघ]]ासोबत``): a word that nothing else matched is cut before each rest of up to
    MAX_TRAIL letters that the trail pattern full-matches and that is no learnt ending,
    keeping MIN_STEM characters of the word, and the stem (the word's own or an n-gram of
    the words before it whose key passed the filter) is a mention where it is a whole key.
    A word some mention already ends at is left alone: a cut there displaced the word's own
    inflected anchor or stem class and lowered the ceiling when it was tried (docs/model.md,
    "Links compared as they show"). (start, end, first token, n, stem key, trail, "") each.
    Stems are probed once per distinct text of the page, and the trail pattern is only
    asked about the few that are whole keys.
    """
    covered = {i + n - 1 for _, _, i, n, *_ in found}
    count = len(begin)
    open_ = compress(range(count), map(not_, map(covered.__contains__, range(count))))
    long_ = [j for j in open_ if end[j] - begin[j] > MIN_STEM]
    # (first token, last token) of each span whose last word is cut: the word alone, and
    # after each n-gram that passed the filter and ends right before it in its sentence.
    spans = [(j, j) for j in long_]
    uncut = set(long_)
    for n, firsts in enumerate(alive, 1):
        spans.extend((i, i + n) for i in firsts if left[i] > n and i + n in uncut)
    by_text: dict[str, list[tuple[int, int]]] = {}  # the span as keys write it -> its spans
    slow: list[tuple[int, int]] = []  # spans whose key needs the slow normalization
    if exact:  # a span without odd white space: its key is a slice of the lower-cased page
        quick = [(i, j) for i, j in spans if before[i] == upto[j]]
        if len(quick) < len(spans):
            slow = [(i, j) for i, j in spans if before[i] != upto[j]]
        texts = map(lower.__getitem__, map(slice, [begin[i] for i, _ in quick],
                                           [end[j] for _, j in quick]))
        for text, span in zip(texts, quick, strict=True):
            by_text.setdefault(text, []).append(span)
    else:
        slow = spans
    # The probes (WHOLE + each stem's key), text by text: ``first[x]`` is the index of text
    # x's first probe, its stems cut 1, 2, ... characters; the few hits are mapped back.
    items = list(by_text.items())
    cuts = [min(MAX_TRAIL, end[at[0][1]] - begin[at[0][1]] - MIN_STEM) for _, at in items]
    first = list(accumulate(cuts, initial=0))
    spelled = [text for text, _ in items]
    if passes_cut is not None:
        quick_hits = passes_cut(spelled, cuts, WHOLE).tolist()
    else:
        quick_hits = passes(cut_stems(spelled, cuts, WHOLE))
    slow_cuts = [(i, j, t) for i, j in slow
                 for t in range(1, min(MAX_TRAIL, end[j] - begin[j] - MIN_STEM) + 1)]
    slow_keys = [key(begin[i], end[j] - t, i, j) for i, j, t in slow_cuts]
    hits = quick_hits + (passes([WHOLE + k for k in slow_keys]) if slow_keys else [])
    out = []
    quick_probes = first[-1]
    for x in compress(range(len(hits)), hits):
        if x < quick_probes:
            y = bisect_right(first, x) - 1
            t = x - first[y] + 1
            at, stem = items[y][1], items[y][0][:-t]
        else:
            i, j, t = slow_cuts[x - quick_probes]
            at, stem = [(i, j)], slow_keys[x - quick_probes]
        for i, j in at:
            b = end[j]
            if ending(joined, b - t, b) and joined[b - t : b].lower() not in known:
                out.append((begin[i], b - t, i, j - i + 1, stem, t, ""))
    return out


STEM = "\x01"  # first character of a stem-class key (``model.stems``)


def _stem_walk(words, stems, begin, end, left, lower, exact, joined, key, passes, found) -> None:
    """The n-grams whose stem key is a whole key of the filter, appended to ``found``.

    Grown like the exact walk: an n-gram of stems is extended while its stem key is a
    prefix in the filter (``STEM`` + the stems, white space between words folded). Only
    n-grams with an inflected word (one that is not its own stem) are mentions: a text
    made of bare stems is either an exact anchor or, in practice, another word ("will"
    against "willing"); the rest can still grow into one ("head of" to "heads of state").
    ``left[i]``: tokens from i to the end of its sentence. The n-grams alive are kept as
    parallel lists (first token, stem key, has an inflected word).
    """
    count = len(stems)
    changed = list(map(ne, words, stems))
    unique = list(dict.fromkeys(stems))
    passing = list(compress(unique, passes([STEM + s for s in unique])))
    inflected = set(compress(stems, changed))
    probes = [WHOLE + STEM + s for s in passing if s in inflected]
    hit = {p[2:] for p in compress(probes, passes(probes))}
    ok = set(passing)
    heads = list(compress(range(count), map(ok.__contains__, stems)))
    keys = [STEM + stems[i] for i in heads]
    flagged = list(map(changed.__getitem__, heads))
    for i in compress(heads, flagged):
        if stems[i] in hit:
            found.append((begin[i], end[i], i, 1, words[i], 0, STEM + stems[i]))
    if not heads:
        return
    # What lies between token j - 1 and token j as keys write it, then token j's stem.
    source = lower if exact else joined
    gaps = list(map(source.__getitem__, map(slice, end[:-1], begin[1:])))
    if not exact:
        gaps = list(map(str.lower, gaps))
    for x in compress(range(len(gaps)), map(" ".__ne__, gaps)):
        gaps[x] = _SPACE.sub(" ", gaps[x])
    then = ["", *map(add, gaps, stems[1:])]
    n = 1
    while heads:
        n += 1
        m = n - 1
        keep = list(map(partial(lt, m), map(left.__getitem__, heads)))
        heads = list(compress(heads, keep))
        if not heads:
            break
        then_m = then[m:]
        keys = list(map(add, compress(keys, keep), map(then_m.__getitem__, heads)))
        changed_m = changed[m:]
        flagged = list(map(or_, compress(flagged, keep), map(changed_m.__getitem__, heads)))
        unique = list(dict.fromkeys(keys))
        ok = set(compress(unique, passes(unique)))
        keep = list(map(ok.__contains__, keys))
        heads = list(compress(heads, keep))
        keys = list(compress(keys, keep))
        flagged = list(compress(flagged, keep))
        probes = list(dict.fromkeys(WHOLE + k for k in compress(keys, flagged)))
        hit = set(compress(probes, passes(probes)))
        for x in compress(range(len(heads)), flagged):
            k = keys[x]
            if WHOLE + k in hit:
                i = heads[x]
                a, b = begin[i], end[i + m]
                found.append((a, b, i, n, key(a, b, i, i + m), 0, k))


def ngram_keys(texts: list[str], language: str, keys: Iterable[str]) -> set[str]:
    """The ``keys`` that occur in ``texts`` as mentions would: at token boundaries.

    A substring search per key, then a boundary check at each occurrence, with the
    boundaries ``page_mentions`` uses (tokens, graphemes of no-space runs, punctuation
    glued to a word); cheaper than walking every n-gram of the texts.
    """
    joined = "\n".join(normalize(t) for t in texts)
    starts, ends = set(), set()
    for a, b in walk_tokens(joined, language):
        starts.add(a)
        ends.add(b)

    def word(p: int) -> bool:
        return 0 <= p < len(joined) and unicodedata.category(joined[p])[0] in "LMN"

    out = set()
    for k in keys:
        p = joined.find(k) if k else -1
        while p >= 0:
            q = p + len(k)
            if (p in starts or (_edge_char(joined[p]) and not word(p - 1))) and (
                q in ends or (_edge_char(joined[q - 1]) and not word(q))
            ):
                out.add(k)
                break
            p = joined.find(k, p + 1)
    return out


def first_mentions(found: Iterable[tuple[int, Mention]]) -> dict[str, tuple[int, Mention]]:
    """Key -> its first whole-word occurrence, else its first before a learnt trail ending,
    else its first before a guessed trail.

    Only one occurrence of a mention is suggested (SPEC §2); a stem inside an inflected
    word is the weaker evidence, so it must not hide the same anchor as a whole word later.
    """
    out: dict[str, tuple[int, Mention]] = {}
    for index, m in found:
        seen = out.get(m.key)
        if seen is None or _evidence(m) < _evidence(seen[1]):
            out[m.key] = (index, m)
    return out


def _evidence(m: Mention) -> int:
    """0 for a whole word, 1 for a stem before a learnt trail ending, 2 for a guessed one."""
    return 0 if not m.trail else 2 if m.guessed else 1

"""Language-aware tokens, sentences and n-grams, all as code-point offsets into one string.

Offsets (not token strings) flow everywhere so that a mention found in the plain text maps
back to its exact place in the wikitext. Training and recommending use the same functions,
so an anchor learnt from a link matches the same span when it later appears as plain text.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import NamedTuple

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
_SENTENCE_END_CONTROL = regex.compile(
    rf"(?<=[{TERMINATORS}])\s+|(?<=[。！？｡])\s*|[\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+"
)
# A word, its period and the spaces after it: where a period may be inside a sentence, after
# a known abbreviation, an initial ("W." of "George W. Bush") or before a lower-case word.
_PERIOD_SPACE = regex.compile(r"(?<=[\p{L}\p{M}\p{N}])\.([ \t\xa0]+)")
_WORD_BACK = regex.compile(r"[\p{L}\p{M}\p{N}'’\-.]*[\p{L}\p{M}\p{N}]", regex.REVERSE)
_INITIAL = regex.compile(r"[\p{Lu}\p{Lt}\p{Lo}]\p{M}*")  # one capital (or caseless) letter
_SPACE = regex.compile(r"\s+")
_ODD_SPACE = regex.compile(r"[^\S ]|  ")  # white space other than single spaces

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
    bounds = [m.span() for m in _SENTENCE_END_CONTROL.finditer(text)]
    if bounds and "." in text:
        end_of = dict(bounds)
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
            bounds = [x for x in bounds if x[0] not in drop]
    return _spans(text, bounds)


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
    """An n-gram of one sentence: where it is and its dictionary key."""

    start: int
    end: int
    key: str
    length: int
    sentence_start: bool


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
    return [key[:end] for _, end in tokens(key, language)] or [key]


def page_mentions(
    texts: list[str],
    language: str,
    passes: Callable[[list[str]], Sequence[bool]],
    max_n: int = MAX_NGRAM,
    *,
    abbreviations: frozenset[str] = frozenset(),
) -> list[tuple[int, Mention]]:
    """The n-grams of several texts that can still be anchors, as (text index, mention).

    Grows n-grams one token at a time and drops those whose key fails ``passes`` (a filter
    of anchor prefixes, checked for the whole page at once per length), so the work follows
    the few n-grams that can match rather than all of them. Sorted by position.
    """
    # All texts joined by line breaks (which always end a sentence): one tokenization and
    # one lower-casing for the page; survivors are mapped back to their text at the end.
    joined = "\n".join(texts)
    starts, pos = [], 0
    for text in texts:
        starts.append(pos)
        pos += len(text) + 1
    toks = tokens(joined, language)
    begin = [a for a, _ in toks]
    end = [b for _, b in toks]
    sentence_of, first_token = [], []
    k = 0
    for index, (_, s_end) in enumerate(sentences(joined, abbreviations)):
        head = k
        while k < len(toks) and end[k] <= s_end:
            sentence_of.append(index)
            first_token.append(k == head)
            k += 1
    lower = joined.lower()
    exact = len(lower) == len(joined)
    odd = [m.start() for m in _ODD_SPACE.finditer(joined)]  # where keys need normalizing

    def key(a: int, b: int) -> str:
        if exact and (not odd or bisect_right(odd, a) == bisect_right(odd, b)):
            return lower[a:b]
        return normalize(joined[a:b])

    found: list[tuple[int, int, int, int, str]] = []  # (start, end, first token, n, key)
    frontier = range(len(toks))
    for n in range(1, max_n + 1):
        grown = [
            i for i in frontier if i + n <= len(toks) and sentence_of[i + n - 1] == sentence_of[i]
        ]
        if not grown:
            break
        keys = [key(begin[i], end[i + n - 1]) for i in grown]
        unique = list(dict.fromkeys(keys))
        ok = dict(zip(unique, passes(unique), strict=True))
        frontier = []
        for i, k in zip(grown, keys, strict=True):
            if ok[k]:
                frontier.append(i)
                found.append((begin[i], end[i + n - 1], i, n, k))
    found.sort()  # position order in the joined text is text order, then offset order
    out = []
    for a, b, i, n, k in found:
        t = bisect_right(starts, a) - 1
        out.append((t, Mention(a - starts[t], b - starts[t], k, n, first_token[i])))
    return out

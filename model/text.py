"""Language-aware tokens, sentences and n-grams, all as code-point offsets into one string.

Offsets (not token strings) flow everywhere so that a mention found in the plain text maps
back to its exact place in the wikitext. Training and recommending use the same functions,
so an anchor learnt from a link matches the same span when it later appears as plain text.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
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


def sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of ``text``; line breaks always end a sentence."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


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


def split_sentences(text: str, language: str) -> Iterator[tuple[int, str, str | None, list]]:
    """(offset, sentence, its lower-cased form or None, token spans) for each sentence.

    The text is tokenized once and its tokens dealt out to sentences: tokens never cross a
    sentence end. The lower-cased form is None where keys need the slow normalization
    (unusual white space, or lower-casing that changes the length, e.g. "İ").
    """
    toks = tokens(text, language)
    k = 0
    for s_start, s_end in sentences(text):
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


def ngrams(text: str, language: str = "en", max_n: int = MAX_NGRAM) -> Iterator[Mention]:
    """All 1..max_n token n-grams within each sentence of ``text``."""
    for s_start, sentence, lower, toks in split_sentences(text, language):
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
    for index, (_, s_end) in enumerate(sentences(joined)):
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

"""Language-aware tokens, sentences and n-grams, all as code-point offsets into one string.

Offsets (not token strings) flow everywhere so that a mention found in the plain text maps
back to its exact place in the wikitext. Training and recommending use the same functions,
so an anchor learnt from a link matches the same span when it later appears as plain text.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
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
    # The key itself too: it may end in punctuation after its last token ("u.s.", "(adhd)").
    return list(dict.fromkeys([key[:end] for _, end in tokens(key, language)] + [key]))


# Punctuation glued to a word (no white space between): an anchor key may begin or end so.
_EDGE = regex.compile(r"[^\s\p{L}\p{M}\p{N}]+")
_EDGE_BEFORE = regex.compile(r"[^\s\p{L}\p{M}\p{N}]+$")
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


def page_mentions(
    texts: list[str],
    language: str,
    passes: Callable[[list[str]], Sequence[bool]],
    max_n: int | None = None,
    trail: str | None = None,
) -> list[tuple[int, Mention]]:
    """The n-grams of several texts that can still be anchors, as (text index, mention).

    Grows n-grams one token at a time and drops those whose key fails ``passes`` (a filter
    of anchor prefixes, checked for the whole page at once per length), so the work follows
    the few n-grams that can match rather than all of them; without ``max_n`` an n-gram
    grows as long as its key passes, so no known anchor is too long to be found. With a
    ``trail`` pattern (``link_trail``), each n-gram's last word is also cut before every
    ending of up to MAX_TRAIL characters that full-matches it, and the stem is a mention
    with ``trail`` set. Training and recommending both generate mentions here. Sorted by
    position.
    """
    # All texts joined by line breaks (which always end a sentence): one tokenization and
    # one lower-casing for the page; survivors are mapped back to their text at the end.
    joined = "\n".join(texts)
    starts, pos = [], 0
    for text in texts:
        starts.append(pos)
        pos += len(text) + 1
    toks = walk_tokens(joined, language)
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

    ending = regex.compile(trail).fullmatch if trail else None
    cuts: dict[str, list[int]] = {}  # word -> lengths of its stems whose ending is a trail

    def stems(j: int) -> list[int]:
        word = joined[begin[j] : end[j]]
        if word not in cuts:
            size = len(word)
            cuts[word] = [
                length
                for length in range(max(MIN_STEM, size - MAX_TRAIL), size)
                if ending(word, length)  # type: ignore[misc]
            ]
        return cuts[word]

    def edge(a: int, b: int) -> str:
        """The punctuation from ``a`` up to ``b``: no white space, no word character."""
        run = _EDGE.match(joined, a, b)
        return run.group() if run else ""

    # Where a mention may start: at each token, and before punctuation glued to its left
    # ("«Космос»", "(ADHD)"), since anchor keys keep such characters.
    frontier: list[tuple[int, int]] = []  # (first token, start offset)
    for i in range(len(toks)):
        frontier.append((i, begin[i]))
        if begin[i] == 0 or joined[begin[i] - 1].isspace():
            continue  # the common case
        low = end[i - 1] if i and sentence_of[i - 1] == sentence_of[i] else 0
        lead = _EDGE_BEFORE.search(joined, low, begin[i])
        if lead:
            frontier.extend((i, a) for a in range(lead.start(), begin[i]))
    found: list[tuple[int, int, int, int, str, int]] = []  # (start, end, token, n, key, trail)
    n = 0
    while max_n is None or n < max_n:
        n += 1
        grown = [
            (i, a)
            for i, a in frontier
            if i + n <= len(toks) and sentence_of[i + n - 1] == sentence_of[i]
        ]
        if not grown:
            break
        keys = [key(a, end[i + n - 1]) for i, a in grown]
        probes = list(keys)
        stemmed: list[tuple[int, int, int, str]] = []  # (first token, start, stem end, key)
        if ending is not None:
            for i, a in grown:
                j = i + n - 1
                for length in stems(j):
                    b = begin[j] + length
                    stemmed.append((i, a, b, key(a, b)))
            probes += [k for *_, k in stemmed]
        unique = list(dict.fromkeys(probes))
        ok = dict(zip(unique, passes(unique), strict=True))
        frontier = []
        glued: list[tuple[int, int, int, str]] = []  # (first token, start, end, key)
        for (i, a), k in zip(grown, keys, strict=True):
            if ok[k]:
                frontier.append((i, a))
                b = end[i + n - 1]
                found.append((a, b, i, n, k, 0))
                # Punctuation glued to the right ("U.S.", "(ADHD)", "«Космос»") may end the
                # key: probed only when the key without it passed, which it must.
                upto = begin[i + n] if i + n < len(toks) else len(joined)
                tail = edge(b, upto)
                glued.extend((i, a, b + c, key(a, b + c)) for c in range(1, len(tail) + 1))
        if glued:
            unique = list(dict.fromkeys(k for *_, k in glued))
            ok.update(zip(unique, passes(unique), strict=True))
            found.extend((a, b, i, n, k, 0) for i, a, b, k in glued if ok[k])
        for i, a, b, k in stemmed:
            if ok[k]:
                found.append((a, b, i, n, k, end[i + n - 1] - b))
    found.sort()  # position order in the joined text is text order, then offset order
    out = []
    for a, b, i, n, k, t in found:
        text_index = bisect_right(starts, a) - 1
        start = starts[text_index]
        out.append((text_index, Mention(a - start, b - start, k, n, first_token[i], t)))
    return out

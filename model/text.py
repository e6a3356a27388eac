"""Language-aware tokens, sentences and n-grams, all as code-point offsets into one string.

Offsets (not token strings) flow everywhere so that a mention found in the plain text maps
back to its exact place in the wikitext. Training and recommending use the same functions,
so an anchor learnt from a link matches the same span when it later appears as plain text.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    aligned: bool = True  # starts and ends at ``tokens`` boundaries (word pieces)


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


@lru_cache(maxsize=1 << 16)
def _trail_lengths(trail: str, key: str, size: int) -> tuple[int, ...]:
    """Lengths of the endings of ``key`` (last token ``size`` long) that match ``trail``.

    Matched on the lower-cased key, once per distinct key (cached across pages: words
    repeat); each occurrence is checked on its own text only when the stem passes the
    filter, which few do.
    """
    ending = _compiled(trail).fullmatch
    return tuple(
        t for t in range(1, min(MAX_TRAIL, size - MIN_STEM) + 1) if ending(key, len(key) - t)
    )


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> regex.Pattern:
    return regex.compile(pattern)


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
    sentence_of, first_token, sentence_begin = [], [], []
    k = 0
    for index, (s_start, s_end) in enumerate(sentences(joined)):
        head = k
        sentence_begin.append(s_start)
        while k < len(toks) and end[k] <= s_end:
            sentence_of.append(index)
            first_token.append(k == head)
            k += 1
    lower = joined.lower()
    exact = len(lower) == len(joined)
    # Keys need the slow normalization where lower-casing changes lengths or unusual white
    # space lies inside the n-gram: tokens i..j are clean when no such space lies between.
    odd = [m.start() for m in _ODD_SPACE.finditer(joined)]
    before = [bisect_right(odd, x) for x in begin]
    upto = [bisect_right(odd, x) for x in end]

    def key(a: int, b: int, i: int, j: int) -> str:
        if exact and before[i] == upto[j]:
            return lower[a:b]
        return normalize(joined[a:b])

    ending = _compiled(trail).fullmatch if trail else None

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
        low = sentence_begin[sentence_of[i]]
        if i and sentence_of[i - 1] == sentence_of[i]:
            low = end[i - 1]
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
        m = n - 1
        keys = [
            lower[a : end[i + m]]
            if exact and before[i] == upto[i + m]
            else key(a, end[i + m], i, i + m)
            for i, a in grown
        ]
        probes = list(keys)
        stemmed: dict[str, list[tuple[str, int]]] = {}  # stem key -> (key, trail length)
        if ending is not None:
            last = {}
            for (i, _), k in zip(grown, keys, strict=True):
                if k not in last:
                    last[k] = end[i + n - 1] - begin[i + n - 1]
            for k, size in last.items():
                for t in _trail_lengths(trail, k, size):  # type: ignore[arg-type]
                    stemmed.setdefault(k[:-t], []).append((k, t))
            probes += stemmed
        unique = list(dict.fromkeys(probes))
        ok = dict(zip(unique, passes(unique), strict=True))
        passing = [stem for stem in stemmed if ok[stem]]
        if passing:
            at: dict[str, list[int]] = {}  # key -> its occurrences (indices into grown)
            for x, k in enumerate(keys):
                at.setdefault(k, []).append(x)
            for stem in passing:
                for k, t in stemmed[stem]:
                    for x in at[k]:
                        i, a = grown[x]
                        b = end[i + m]
                        if ending(joined, b - t, b) and key(a, b - t, i, i + m) == stem:  # type: ignore[misc]
                            found.append((a, b - t, i, n, stem, t))
        frontier = []
        glued: list[tuple[int, int, int, str]] = []  # (first token, start, end, key)
        for (i, a), k in zip(grown, keys, strict=True):
            if ok[k]:
                frontier.append((i, a))
                b = end[i + m]
                found.append((a, b, i, n, k, 0))
                # Punctuation glued to the right ("U.S.", "(ADHD)", "«Космос»") may end the
                # key: probed only when the key without it passed, which it must.
                limit = begin[i + n] if i + n < len(toks) else len(joined)
                tail = edge(b, limit)
                glued.extend(
                    (i, a, b + c, key(a, b + c, i, i + m)) for c in range(1, len(tail) + 1)
                )
        if glued:
            unique = list(dict.fromkeys(k for *_, k in glued))
            ok.update(zip(unique, passes(unique), strict=True))
            found.extend((a, b, i, n, k, 0) for i, a, b, k in glued if ok[k])
    found.sort()  # position order in the joined text is text order, then offset order
    cuts: set[int] | None = None
    if _NO_SPACE_RUN.search(joined):
        cuts = {x for span in tokens(joined, language) for x in span}  # word-piece bounds
    out = []
    for a, b, i, n, k, t in found:
        text_index = bisect_right(starts, a) - 1
        start = starts[text_index]
        aligned = cuts is None or (a in cuts and b in cuts) or (a < begin[i] and b in cuts)
        out.append(
            (text_index, Mention(a - start, b - start, k, n, first_token[i], t, aligned))
        )
    return out


def first_mentions(found: Iterable[tuple[int, Mention]]) -> dict[str, tuple[int, Mention]]:
    """Key -> its first whole-word occurrence, or its first trail occurrence if it has none.

    Only one occurrence of a mention is suggested (SPEC §2); a stem inside an inflected
    word is the weaker evidence, so it must not hide the same anchor as a whole word later.
    """
    out: dict[str, tuple[int, Mention]] = {}
    for index, m in found:
        seen = out.get(m.key)
        if seen is None or (seen[1].trail and not m.trail):
            out[m.key] = (index, m)
    return out

"""Link recommendations for one article, in the reference format (SPEC §2, format_version 1).

Two steps: ``score`` finds every eligible mention and scores its candidate targets in one
classifier call (the expensive part, done once), ``select`` picks non-overlapping links for
a threshold (cheap, so a backtest can sweep thresholds over one scoring).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from model.datasets import Anchor, Model
from model.features import TOP_CANDIDATES, ablated_columns, candidate_rows
from model.text import (
    MIN_STEM,
    Mention,
    compiled_trail,
    first_mentions,
    ngram_keys,
    normalize,
    page_mentions,
)
from model.titles import validate_title
from model.version import APPLICATION_VERSION
from model.wikitext import Page, TextSpan, parse

CONTEXT_CHARS = 10


@dataclass(frozen=True)
class Scored:
    """The best target of one mention (its first eligible occurrence) and its score."""

    start: int  # offset of the mention in the wikitext
    end: int
    text: str
    key: str
    length: int
    target: str
    score: float
    targets: tuple[str, ...]  # every candidate considered: none may be suggested twice
    span: TextSpan
    trail: int = 0  # characters of the word after ``text`` left to the link trail
    stem: str = ""  # the stem-class key it was found under ("": its exact text is an anchor)


@dataclass(frozen=True)
class Traced:
    """A generated mention with an anchor, and the SPEC §2 skip rule that dropped it."""

    start: int
    end: int
    key: str
    skip: str | None  # "in_link_anchor", "in_title", "target_linked", or None (scored)
    stem: str = ""  # the stem-class key the anchor was found under ("": the exact key)
    targets: tuple[str, ...] = ()  # the candidates scored (the top ones of its anchor)


def as_trail(m: Mention, anchor: Anchor, text: str, trail: str | None) -> Mention:
    """A stem-matched word written the way editors write it where the wiki's trail allows.

    When a member of the stem class ("лондон") begins the word ("Лондонові") and the rest
    of the word is a link trail of the language, the link is the member at its exact
    offset with the rest left to trail (``[[Лондон]]ові``); otherwise the whole word.
    """
    if not trail or not anchor.members or text[m.start : m.end].lower() != m.key:
        return m
    head, _, last = m.key.rpartition(" ")
    ending = compiled_trail(trail).fullmatch
    for member in sorted(anchor.members, key=len, reverse=True):
        rest = len(m.key) - len(member)
        if (
            0 < rest < len(last)
            and len(last) - rest >= MIN_STEM
            and m.key.startswith(member)
            and ending(text, m.end - rest, m.end)
        ):
            return m._replace(end=m.end - rest, key=member, trail=rest)
    return m


def mention_anchors(
    found: Iterable[tuple[int, Mention]],
    lookup: Callable[[Iterable[str]], dict[str, Anchor]],
    texts: Sequence[str],
    trail: str | None,
) -> dict[str, tuple[int, Mention, Anchor]]:
    """Key -> (text index, mention, anchor) of the mentions the dictionary knows.

    An exact key first; a word only its stem key matches (``Mention.stem``) next, once per
    exact text, and never where the exact text or its trail form is already a mention; a
    stem match written as a trail (``as_trail``) takes the anchor of the member it links.
    Training and recommending both choose here.
    """
    plain, by_stem = [], []
    for x in found:
        (by_stem if x[1].stem else plain).append(x)
    exact = first_mentions(plain)
    anchors = lookup(exact)
    out = {k: (t, m, anchors[k]) for k, (t, m) in exact.items() if k in anchors}
    stemmed = {k: v for k, v in first_mentions(by_stem).items() if k not in out}
    if stemmed:
        classes = lookup({m.stem for _, m in stemmed.values()})
        chosen = []
        for t, m in stemmed.values():
            anchor = classes.get(m.stem)
            if anchor is not None:
                chosen.append((t, as_trail(m, anchor, texts[t], trail), anchor))
        # Written [[member]]ending: the member is an exact anchor, looked up as such.
        members = lookup({m.key for _, m, _ in chosen if m.trail} - out.keys())
        for t, m, anchor in chosen:
            if m.trail:
                anchor = members.get(m.key)
            if anchor is not None and m.key not in out:
                out[m.key] = (t, m, anchor)
    return out


def key_ngrams(texts: Iterable[str], language: str, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` occur as n-grams of the given texts: those are not suggested."""
    return ngram_keys(list(texts), language, keys)


def title_filter(title: str):
    """A mention that is part of the page's own title is not suggested (SPEC §2).

    A substring test, as in the reference: "Peru" inside "Peruvian history", or a stem inside
    an inflected title word in languages that attach case endings.
    """
    return normalize(title).__contains__


def context_vector(
    model: Model, titles: Iterable[str], page: str | None = None
) -> np.ndarray | None:
    """Sum of the unit vectors of the page's linked articles: what the page is about.

    ``page``: the page's title when the model was trained on it, ``titles`` then being its
    links (and itself). Its training fold's vectors had its links left out (``A_p V``:
    ``model.train.project_fold``), so the classifier learnt from contexts without them; in
    the shipped vectors each linked row holds the page's basis row once more, and the page's
    row its targets', which pulls its context towards what it already links and away from
    every candidate. They are taken out here, where the model has the basis (projected
    vectors); measured in docs/model.md, "Current main: a trained page read one page out".
    """
    found = model.entities(titles)
    rows = sorted(row for row, _ in found.values())
    if not rows:
        return None
    vectors = np.asarray(model.vectors[rows], dtype=np.float32)
    if page is None or page not in found or model.basis is None:
        return vectors.sum(axis=0)
    own = found[page][0]
    linked = np.asarray(rows) != own
    lengths = np.asarray(model.lengths[rows], dtype=np.float64)[:, None]
    whole = vectors.astype(np.float64) * lengths
    basis = np.asarray(model.basis[rows], dtype=np.float64)
    whole[linked] -= basis[~linked]  # each link p -> t out of t's row
    whole[~linked] -= basis[linked].sum(axis=0)  # and out of the page's own
    # A row that was the page's link alone is zero without it (in training such an article
    # was no entity of the fold at all); stored to 5 decimals, what is left of it here is
    # rounding (under 4e-5 of its length), not a direction.
    norms = np.linalg.norm(whole, axis=1, keepdims=True)
    units = np.divide(whole, norms, out=np.zeros_like(whole), where=norms > 1e-4 * lengths)
    return units.sum(axis=0).astype(np.float32)


def score(
    model: Model,
    wikitext: str,
    *,
    title: str,
    excluded_sections: Sequence[str] = (),
    extra_links: Iterable[str] = (),
    trace: list[Traced] | None = None,
) -> tuple[Page, list[Scored]]:
    """Score every eligible mention of the page (SPEC §2's skip rules apply here).

    ``trace``, when given, receives every generated mention that has an anchor, with the
    skip rule that dropped it (or None): the backtest's candidate ceiling is counted from it.
    """
    page = parse(wikitext, excluded_sections, model.namespaces)
    language = model.language
    linked_titles = [link.target for link in page.links] + [title, *extra_links]
    resolved = model.resolve(linked_titles)
    linked = set(resolved.values()) | set(resolved)
    spans = [s for s in page.spans if s.scannable]
    first: dict[str, tuple] = {}
    texts = [s.text for s in spans]
    found = page_mentions(
        texts, language, model.bloom.contains, trail=model.trail, endings=model.trail_endings,
        abbreviations=model.abbreviations, stemmer=model.stemmer, whole_keys=model.whole_keys,
        guess_trails=model.guess_trails, passes_cut=model.bloom.contains_cut,
    )
    lookup = model.anchors
    trained = model.trained_on(title)
    if trained:
        # The page is one of the model's training articles: its own unlinked mentions are
        # in its anchors' statistics, and scored so they look like less often linked texts
        # than they were to the classifier in training (``Anchor.without_page``).
        def lookup(keys: Iterable[str]) -> dict[str, Anchor]:
            return {k: a.without_page() for k, a in model.anchors(keys).items()}
    anchors = {}
    for key, (t, m, anchor) in mention_anchors(found, lookup, texts, model.trail).items():
        first[key] = (m, spans[t])
        anchors[key] = anchor
    in_title = title_filter(title)
    blocked = key_ngrams([link.anchor for link in page.links], language, anchors)
    mentions = []
    for key, anchor in anchors.items():
        if key in blocked:
            skip = "in_link_anchor"
        elif in_title(key):
            skip = "in_title"
        elif any(t in linked for t, _ in anchor.targets):
            skip = "target_linked"
        else:
            skip = None
        candidates = anchor.targets[:TOP_CANDIDATES]
        if trace is not None:
            (m, span) = first[key]
            trace.append(Traced(span.offset + m.start, span.offset + m.end, key, skip, m.stem,
                                tuple(t for t, _ in candidates)))
        if skip is not None:
            continue
        mentions.append((first[key], anchor, candidates))
    if not mentions:
        return page, []

    entities = model.entities({t for _, _, cands in mentions for t, _ in cands})
    context = context_vector(model, linked, title if trained else None)
    rows, owners = [], []
    for i, ((m, span), anchor, _) in enumerate(mentions):
        for target, features in candidate_rows(
            model.features,
            mention=span.text[m.start : m.end],
            length=m.length,
            anchor=anchor,
            sentence_start=m.sentence_start,
            context=context,
            entities=entities,
            vectors=model.vectors,
            trail=m.trail,
            aligned=m.aligned,
            stem=bool(m.stem),
            guessed=m.guessed,
        ):
            rows.append(features)
            owners.append((i, target))
    probabilities = model.calibrate(predict(model, rows))

    best: dict[int, tuple[float, str]] = {}
    for (i, target), p in zip(owners, probabilities, strict=True):
        if i not in best or p > best[i][0]:
            best[i] = (float(p), target)
    out = []
    for i, (p, target) in best.items():
        (m, span), anchor, candidates = mentions[i]
        out.append(
            Scored(
                start=span.offset + m.start,
                end=span.offset + m.end,
                text=span.text[m.start : m.end],
                key=m.key,
                length=m.length,
                target=target,
                score=p,
                targets=tuple(t for t, _ in candidates),
                span=span,
                trail=m.trail,
                stem=m.stem,
            )
        )
    out.sort(key=lambda s: s.start)
    return page, out


def predict(model: Model, rows: list[list[float]]) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    if model.ablate:  # a backtest's ablation: the features the model was trained without
        x[:, ablated_columns(model.features, model.ablate)] = np.nan
    return model.booster.inplace_predict(x, missing=np.nan)


def select(scored: Sequence[Scored], threshold: float, limit: int) -> list[Scored]:
    """Longer mentions first (SPEC §2), no overlaps, each target once; the best ``limit``."""
    chosen: list[Scored] = []
    targets: set[str] = set()
    for s in sorted(scored, key=lambda s: (-s.length, -s.score, s.start)):
        if s.score < threshold or s.target in targets:
            continue
        if any(s.start < c.end and c.start < s.end for c in chosen):
            continue
        chosen.append(s)
        targets.add(s.target)
    best = sorted(chosen, key=lambda s: (-s.score, s.start))[:limit]
    return sorted(best, key=lambda s: s.start)


def link_records(page_spans: Sequence[TextSpan], chosen: Sequence[Scored]) -> list[dict]:
    """SPEC §2 link objects; match_index counts earlier occurrences in the scanned text."""
    out = []
    for index, s in enumerate(chosen):
        before = "".join(sp.text for sp in page_spans if sp.offset < s.span.offset)
        local = s.start - s.span.offset
        match_index = before.count(s.text) + s.span.text[:local].count(s.text)
        out.append(
            {
                "context_after": s.span.text[
                    local + len(s.text) : local + len(s.text) + CONTEXT_CHARS
                ],
                "context_before": s.span.text[max(0, local - CONTEXT_CHARS) : local],
                "link_index": index,
                "link_target": s.target,
                "link_text": s.text,
                "match_index": match_index,
                "score": s.score,
                "wikitext_offset": s.start,
            }
        )
    return out


def recommend(
    model: Model,
    wikitext: str,
    *,
    title: str,
    pageid: int = 0,
    revid: int = 0,
    threshold: float = 0.5,
    max_recommendations: int = 15,
    excluded_sections: Sequence[str] = (),
) -> dict:
    """Link suggestions for one page in format_version 1 (InvalidTitle for a bad title)."""
    validate_title(title)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    if max_recommendations < 0:
        raise ValueError(f"max_recommendations must be >= 0, got {max_recommendations}")
    page, scored = score(model, wikitext, title=title, excluded_sections=excluded_sections)
    links = link_records(page.spans, select(scored, threshold, max_recommendations))
    return {
        "links": links,
        "links_count": len(links),
        "meta": {
            "application_version": APPLICATION_VERSION,
            "dataset_checksums": dict(model.checksums),
            "format_version": 1,
        },
        "page_title": title,
        "pageid": pageid,
        "revid": revid,
    }

"""Training: dump -> corpus file -> anchors, entity vectors, classifier, model directory.

The dump is read twice as a stream (titles and redirects first, then articles parsed one at
a time); what later stages need of each article (its links, its scannable text, one probe
sentence for backtests) goes to a corpus file on disk, not into memory. Building a model
from the corpus takes an optional set of titles, so a backtest trains on one half of the
articles and tests on the other without parsing the dump again.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sqlite3
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import regex
from mwparserfromhell.nodes import Heading, Text, Wikilink

from model import dump as dumps
from model.datasets import (
    DATASETS,
    SENTENCES_FILE,
    Anchor,
    Bloom,
    file_checksum,
    rows_checksum,
)
from model.features import FEATURE_SETS, ablated_columns, candidate_rows, kurtosis
from model.progress import progress
from model.publish import install
from model.text import (
    TERMINATORS,
    filter_keys,
    first_mentions,
    learn_abbreviations,
    link_trail,
    listed_abbreviations,
    normalize,
    page_mentions,
    probe_sentences,
    trail_endings,
)
from model.version import APPLICATION_VERSION
from model.wikitext import CANONICAL_NAMESPACES, link_target, parse, tree

log = logging.getLogger("addlink.model.train")

MIN_LINK_PROB = 0.065  # SPEC §2: anchors linked less often than this are dropped
MIN_TRAIL_PAGES = 2  # an ending trailing links on fewer training pages is not tried
MAX_TARGETS = 50  # candidate targets kept per anchor (the top 10 are scored)
DIMENSIONS = 50
COMPLETE_RESOLVE_RATIO = 0.25  # links resolving inside the dump above this: a complete wiki
ENDINGS = set(TERMINATORS + "。！？｡")
_NO_LETTER = regex.compile(r"^[^\p{L}]*$")
_DATE_LIKE = regex.compile(r"^(?:\p{N}+[\s.,/\-–]*)+(?:\p{L}+\.?)?$|^\p{L}+\.?\s+\p{N}{1,4}$")
_DISAMBIG_TEMPLATE = regex.compile(r"disamb|^dab$|^dp$|неоднозначн|αποσαφήνιση|曖昧", regex.I)
_LIST_TITLE = regex.compile(r"^(List|Lists) of |^Список |^Списък |^Λίστα ")


class TrainingError(RuntimeError):
    """Training cannot produce a usable model from this input."""


@dataclass
class Corpus:
    """What the training keeps of a dump: title tables in memory, article data on disk."""

    site: dumps.SiteInfo
    path: Path  # JSON lines, one article each
    articles: dict[str, int] = field(default_factory=dict)  # title -> page id
    redirects: dict[str, str] = field(default_factory=dict)  # title -> resolved target
    disambiguations: set[str] = field(default_factory=set)
    links: int = 0
    resolved_links: int = 0
    dump_date: str = ""

    @property
    def resolve_ratio(self) -> float:
        return self.resolved_links / self.links if self.links else 0.0

    def records(self, include: set[str] | None = None) -> Iterator[dict]:
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                if include is None or record["t"] in include:
                    yield record


def _resolve(redirects: dict[str, str], title: str) -> str:
    """Follow redirects (at most 5 hops, as MediaWiki does for double redirects)."""
    for _ in range(5):
        if title not in redirects:
            break
        title = redirects[title]
    return title


def _is_disambiguation(text: str, code) -> bool:
    if "__DISAMBIG__" in text:
        return True
    return any(_DISAMBIG_TEMPLATE.search(str(t.name).strip()) for t in code.filter_templates())


def pure_sentences(code, namespaces: frozenset[str]) -> list[list]:
    """Sentences made only of text and article links, as [text, [[start, end, target], ...]].

    The text is what a reader sees (links replaced by their anchor text). These sentences are
    both the classifier's training material and the backtest's test items (SPEC §2), so the
    classifier learns on exactly the kind of input it is judged on.
    """
    out: list[list] = []
    pieces: list[tuple[str, str | None]] = []
    at_line_start = True

    def flush() -> None:
        text, spans = "", []
        for piece, target in pieces:
            if target is not None:
                spans.append((len(text), len(text) + len(piece), target))
            text += piece
        for a, b in probe_sentences(text):
            if a == 0 and not at_line_start:
                continue  # the run began mid-sentence, after other markup
            if b == len(text.rstrip()) and text.rstrip()[-1:] not in ENDINGS:
                continue  # the run ends mid-sentence, before other markup
            if any(s[0] < b and a < s[1] and not (a <= s[0] and s[1] <= b) for s in spans):
                continue
            inside = [[s[0] - a, s[1] - a, s[2]] for s in spans if a <= s[0] and s[1] <= b]
            out.append([text[a:b], inside])

    for node in code.nodes:
        if isinstance(node, Text):
            pieces.append((str(node), None))
            continue
        if isinstance(node, Wikilink):
            target = link_target(str(node.title), namespaces)
            if target is not None:
                anchor = node.text.strip_code() if node.text is not None else str(node.title)
                pieces.append((anchor, target))
                continue
        flush()
        pieces = []
        at_line_start = isinstance(node, Heading) or str(node).endswith("\n")
    flush()
    return out


def extract(dump_path: str | Path, workdir: Path) -> Corpus:
    """Two streaming passes over the dump into a Corpus (the expensive part: parsing)."""
    site = dumps.site_info(dump_path)
    namespaces = CANONICAL_NAMESPACES | site.namespaces
    corpus = Corpus(site=site, path=workdir / "corpus.jsonl")
    trail = link_trail(site.language)
    raw_redirects: dict[str, str] = {}
    latest = 0.0
    for page in progress(dumps.pages(dump_path), "titles"):
        if page.namespace != 0:
            continue
        latest = max(latest, page.timestamp)
        if page.redirect:
            raw_redirects[page.title] = page.redirect
        else:
            corpus.articles[page.title] = page.page_id
    corpus.redirects = {t: _resolve(raw_redirects, t) for t in raw_redirects}
    corpus.dump_date = time.strftime("%Y-%m-%d", time.gmtime(latest)) if latest else ""
    if not corpus.articles:
        raise TrainingError(f"{dump_path}: no articles (namespace 0, not redirects) in the dump")

    with open(corpus.path, "w", encoding="utf-8") as out:
        for page in progress(dumps.pages(dump_path), "parse", total=len(corpus.articles)):
            if page.namespace != 0 or page.redirect:
                continue
            code = tree(page.text)
            if _is_disambiguation(page.text, code):
                corpus.disambiguations.add(page.title)
            parsed = parse(page.text, (), namespaces, code=code)
            links = []
            for link in parsed.links:
                target = corpus.redirects.get(link.target, link.target)
                corpus.links += 1
                corpus.resolved_links += target in corpus.articles
                links.append([target, link.anchor])
            pure = [
                [text, [[a, b, corpus.redirects.get(t, t)] for a, b, t in spans]]
                for text, spans in pure_sentences(code, namespaces)
            ]
            scanned = [s.text for s in parsed.spans if s.scannable]
            record = {
                "t": page.title,
                "l": links,
                "s": scanned,
                "x": pure,
                "e": trail_endings(page.text, trail),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return corpus


# ---------------------------------------------------------------------------- building


@dataclass
class Settings:
    complete: bool | None = None  # None: decided from the dump
    features: str = "full"
    seed: int = 1
    min_anchor_count: int = 1  # SPEC §2 drops anchors linked once; small wikis need them
    min_link_prob: float = MIN_LINK_PROB
    rounds: int = 150
    max_depth: int = 6
    min_child_weight: float = 2.0
    eta: float = 0.1
    # Weight of a positive pair relative to a negative one. Below 1 the classifier needs more
    # evidence before it scores a link >= 0.5: a wrong suggestion costs a newcomer's trust,
    # a missing one only a little of the pool.
    positive_weight: float = 0.5
    # Features trained (and recommended) without, as missing values: a backtest's ablation.
    ablate: tuple[str, ...] = ()


def _target_ok(corpus: Corpus, target: str, complete: bool) -> bool:
    if target in corpus.disambiguations or _LIST_TITLE.match(target):
        return False
    if _NO_LETTER.match(target) or _DATE_LIKE.match(target):
        return False
    return target in corpus.articles if complete else True


def build_anchors(
    corpus: Corpus,
    include: set[str] | None,
    settings: Settings,
    complete: bool,
    abbreviations: frozenset[str] = frozenset(),
) -> dict[str, Anchor]:
    language = corpus.site.language
    counts: dict[str, Counter] = defaultdict(Counter)
    linked_pages: Counter = Counter()
    for record in progress(corpus.records(include), "anchors"):
        pairs = set()
        for target, anchor in record["l"]:
            key = normalize(anchor)
            if key and not _NO_LETTER.match(key) and _target_ok(corpus, target, complete):
                pairs.add((key, target))
        for key, target in pairs:
            counts[key][target] += 1
        linked_pages.update({key for key, _ in pairs})
    counts = {k: c for k, c in counts.items() if sum(c.values()) >= settings.min_anchor_count}
    # Link probability: pages linking the anchor / pages where it appears at all.
    from model.text import ngrams

    seen: Counter = Counter()
    for record in progress(corpus.records(include), "link probability"):
        keys = {normalize(a) for _, a in record["l"]} & counts.keys()
        for text in record["s"]:
            keys.update(
                m.key
                for m in ngrams(text, language, abbreviations=abbreviations)
                if m.key in counts
            )
        seen.update(keys)
    anchors = {}
    for key, c in counts.items():
        prob = linked_pages[key] / max(seen[key], linked_pages[key])
        if prob < settings.min_link_prob:
            continue
        ranked = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TARGETS]
        anchors[key] = Anchor(
            key=key,
            targets=tuple(ranked),
            total=sum(c.values()),
            link_prob=round(prob, 6),
            kurtosis=round(kurtosis([n for _, n in ranked]), 6),
        )
    return anchors


def build_vectors(
    corpus: Corpus, include: set[str] | None, seed: int
) -> tuple[dict[str, tuple[int, int]], np.ndarray]:
    """Entity vectors: truncated SVD of the symmetric article-link graph.

    Two articles get close vectors when they link to and are linked from the same pages, which
    is what "this target fits this page" needs; a page's context is the mean of its links.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import svds

    index: dict[str, int] = {}
    indegree: Counter = Counter()
    src, dst = [], []
    for record in progress(corpus.records(include), "link graph"):
        targets = {t for t, _ in record["l"]}
        s = index.setdefault(record["t"], len(index))
        for t in sorted(targets):
            src.append(s)
            dst.append(index.setdefault(t, len(index)))
        indegree.update(targets)
    n = len(index)
    if n < 3 or not src:
        raise TrainingError("too few links in the dump to build entity vectors")
    data = np.ones(len(src), dtype=np.float64)
    graph = coo_matrix((data, (src, dst)), shape=(n, n)).tocsr()
    graph = (graph + graph.T).tocsr()
    k = min(DIMENSIONS, n - 2)
    v0 = np.random.default_rng(seed).uniform(-1, 1, n)
    u, s, _ = svds(graph, k=k, v0=v0, random_state=seed)
    vectors = u * np.sqrt(s)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    vectors = np.round(vectors, 5).astype(np.float32)
    entities = {t: (i, indegree[t]) for t, i in index.items()}
    return entities, vectors


class _Lookup:
    """The in-memory view of freshly built datasets that training pairs are computed from.

    ``keys`` is the exact set the Bloom filter is built from, so training walks the
    same n-grams as the recommender (which only adds the filter's rare false positives).
    """

    def __init__(
        self,
        anchors: dict[str, Anchor],
        entities,
        vectors,
        features: str,
        keys: set[str] | None = None,
        trail: str | None = None,
        endings: Iterable[str] = (),
        abbreviations: frozenset[str] = frozenset(),
    ):
        self.anchors, self.entities, self.vectors, self.features = (
            anchors,
            entities,
            vectors,
            features,
        )
        self.keys = keys if keys is not None else filter_keys(anchors, "en")
        self.trail = trail
        self.endings = frozenset(endings)
        self.abbreviations = abbreviations

    def passes(self, keys: list[str]) -> list[bool]:
        return [k in self.keys for k in keys]

    def vector(self, title: str) -> np.ndarray | None:
        e = self.entities.get(title)
        return None if e is None else self.vectors[e[0]]


def page_pairs(lookup: _Lookup, record: dict, language: str) -> Iterator[tuple[list[float], int]]:
    """Labelled feature rows from one article's sentences, as the recommender would meet them.

    Each sentence made of text and links is stripped of its links and scanned like a page:
    a mention spanning exactly a removed link, with that link's target, is a positive; every
    other candidate of every eligible mention is a negative, including pieces of longer links
    and anchor texts the editors left unlinked. The context is the article's other links.
    The reference system trains only on linked anchors and never shows its classifier the
    unlinked mentions it will mostly be asked about.
    """
    from model.recommend import title_filter

    in_title = title_filter(record["t"])
    page_targets = Counter(t for t, _ in record["l"])
    full_context = np.zeros(lookup.vectors.shape[1], dtype=np.float32)
    for t in page_targets:
        v = lookup.vector(t)
        if v is not None:
            full_context = full_context + v
    pure = record["x"]
    mentions: list[list] = [[] for _ in pure]
    texts = [text for text, _ in pure]
    found = page_mentions(
        texts, language, lookup.passes, trail=lookup.trail, endings=lookup.endings,
        abbreviations=lookup.abbreviations,
    )
    for index, m in found:
        mentions[index].append((index, m))
    for (text, links), found in zip(pure, mentions, strict=True):
        gold = {(a, b): t for a, b, t in links}
        here = Counter(t for _, _, t in links)
        linked = {t for t, n in page_targets.items() if n > here.get(t, 0)} | {record["t"]}
        context = full_context
        for t in here:
            v = lookup.vector(t)
            if v is not None and t not in linked:
                context = context - v
        for _, m in first_mentions(found).values():
            anchor = lookup.anchors.get(m.key)
            if anchor is None or in_title(m.key):
                continue
            if any(t in linked for t, _ in anchor.targets):
                continue
            truth = gold.get((m.start, m.end))
            for target, features in candidate_rows(
                lookup.features,
                mention=text[m.start : m.end],
                length=m.length,
                anchor=anchor,
                sentence_start=m.sentence_start,
                context=context,
                entities=lookup.entities,
                vectors=lookup.vectors,
                trail=m.trail,
                aligned=m.aligned,
            ):
                yield features, int(target == truth)


def _trail_endings(corpus: Corpus, include: set[str] | None) -> list[str]:
    """Endings seen trailing a link on at least MIN_TRAIL_PAGES of the training articles."""
    pages: Counter = Counter()
    for record in corpus.records(include):
        pages.update(set(record.get("e", ())))
    return sorted(e for e, n in pages.items() if n >= MIN_TRAIL_PAGES)


def train_classifier(rows: list[list[float]], labels: list[int], settings: Settings):
    import xgboost

    if not rows or sum(labels) == 0 or sum(labels) == len(labels):
        raise TrainingError(
            f"cannot train a classifier from {len(labels)} pairs with {sum(labels)} positives"
        )
    x = np.asarray(rows, dtype=np.float32)
    x[:, ablated_columns(settings.features, settings.ablate)] = np.nan
    y = np.asarray(labels, dtype=np.float32)
    params = {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "max_depth": settings.max_depth,
        "eta": settings.eta,
        "min_child_weight": settings.min_child_weight,
        "subsample": 1.0,
        "nthread": 1,
        "seed": settings.seed,
        "tree_method": "hist",
        "scale_pos_weight": settings.positive_weight,
    }
    # A deterministic holdout (every 10th row) only to report AUC; the model uses all rows.
    holdout = np.arange(len(y)) % 10 == 0
    check = xgboost.train(
        params, xgboost.DMatrix(x[~holdout], y[~holdout], missing=np.nan), settings.rounds
    )
    scores = check.predict(xgboost.DMatrix(x[holdout], missing=np.nan))
    booster = xgboost.train(params, xgboost.DMatrix(x, y, missing=np.nan), settings.rounds)
    return booster, {"holdout_auc": round(_auc(y[holdout], scores), 4)}


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[y == 1], scores[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    order = np.argsort(np.concatenate([pos, neg]), kind="stable")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _write_sqlite(path: Path, dataset: str, rows: Iterable[tuple]) -> str:
    """Write one dataset file in key order and return the checksum of its content."""
    _, table, key, values = DATASETS[dataset]
    rows = sorted(rows, key=lambda r: r[0])
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    columns = ", ".join(f"{v}" for v in values)
    conn.execute(f"CREATE TABLE {table} ({key} TEXT PRIMARY KEY, {columns}) WITHOUT ROWID")
    conn.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * (len(values) + 1))})", rows)
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
    return rows_checksum(rows)


def learn_sentence_rules(corpus: Corpus, include: set[str] | None) -> frozenset[str]:
    """Abbreviations for the sentence splitter, from the train articles' text only.

    Punkt's unsupervised learning on the wiki's own text, plus mwtokenizer's checked list
    for the wiki where it has one (measured in benchmarks/sentence_bench.py).
    """
    texts = (text for record in corpus.records(include) for text in record["s"])
    learnt = learn_abbreviations(progress(texts, "abbreviations"))
    return learnt | listed_abbreviations(corpus.site.language)


def build_model(
    corpus: Corpus,
    out: Path,
    settings: Settings,
    include: set[str] | None = None,
) -> dict:
    """Anchors, vectors and classifier from the corpus (optionally a subset of its articles)."""
    start = time.monotonic()
    if settings.features not in FEATURE_SETS:
        raise TrainingError(f"unknown feature set {settings.features!r}")
    ablated_columns(settings.features, settings.ablate)  # an unknown name fails before work
    complete = settings.complete
    if complete is None:
        complete = corpus.resolve_ratio >= COMPLETE_RESOLVE_RATIO
    abbreviations = learn_sentence_rules(corpus, include)
    anchors = build_anchors(corpus, include, settings, complete, abbreviations)
    if not anchors:
        raise TrainingError("no anchors survived the filters; the dump is too small")
    entities, vectors = build_vectors(corpus, include, settings.seed)
    language = corpus.site.language
    trail = link_trail(language)
    endings = _trail_endings(corpus, include) if trail else []
    keys = sorted(filter_keys(anchors, language))
    lookup = _Lookup(
        anchors, entities, vectors, settings.features, set(keys), trail, endings, abbreviations
    )
    rows, labels = [], []
    for record in progress(corpus.records(include), "training pairs"):
        for feats, label in page_pairs(lookup, record, corpus.site.language):
            rows.append(feats)
            labels.append(label)
    booster, metrics = train_classifier(rows, labels, settings)

    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=out.parent))
    try:
        checksums = {
            "anchors": _write_sqlite(
                tmp / "anchors.sqlite",
                "anchors",
                (
                    (
                        a.key,
                        a.link_prob,
                        a.total,
                        a.kurtosis,
                        json.dumps(a.targets, ensure_ascii=False),
                    )
                    for a in anchors.values()
                ),
            ),
            "redirects": _write_sqlite(
                tmp / "redirects.sqlite", "redirects", corpus.redirects.items()
            ),
            "pageids": _write_sqlite(tmp / "pageids.sqlite", "pageids", corpus.articles.items()),
        }
        np.save(tmp / "vectors.npy", vectors)
        (tmp / SENTENCES_FILE).write_text(
            json.dumps({"abbreviations": sorted(abbreviations)}, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        index = ((t, r, d) for t, (r, d) in entities.items())
        index_checksum = _write_sqlite(tmp / "entities.sqlite", "w2vfiltered", index)
        # Both halves of the dataset: the title -> row index and the vectors themselves.
        checksums["w2vfiltered"] = rows_checksum(
            [[index_checksum, file_checksum(tmp / "vectors.npy")]]
        )
        booster.save_model(str(tmp / "model.json"))
        checksums["model"] = file_checksum(tmp / "model.json")
        size, hashes = Bloom.sized(len(keys))
        bloom = Bloom(np.zeros(size, dtype=np.uint8), hashes)
        bloom.add(keys)
        np.save(tmp / "anchors.bloom.npy", bloom.bits)
        manifest = {
            "wiki": corpus.site.dbname,
            "language": corpus.site.language,
            "link_trail": trail,
            "link_trail_endings": endings,
            "dump_date": corpus.dump_date,
            "complete": complete,
            "features": settings.features,
            "seed": settings.seed,
            **({"ablate": list(settings.ablate)} if settings.ablate else {}),
            "namespaces": sorted(CANONICAL_NAMESPACES | corpus.site.namespaces),
            "counts": {
                "articles": len(corpus.articles) if include is None else len(include),
                "redirects": len(corpus.redirects),
                "links": corpus.links,
                "links_resolved": corpus.resolved_links,
                "anchors": len(anchors),
                "entities": len(entities),
                "training_pairs": len(labels),
                "abbreviations": len(abbreviations),
                "positives": int(sum(labels)),
            },
            "bloom": {
                "bytes": size,
                "hashes": hashes,
                "prefixes": len(keys),
                "scheme": bloom.scheme,
                "whole_keys": True,
            },
            "checksums": checksums,
            "training": metrics,
            "code_version": APPLICATION_VERSION,
            "seconds": round(time.monotonic() - start, 2),
        }
        # sha256 of every file the model is read from: the runner verifies them (preflight).
        manifest["files"] = {f.name: file_checksum(f) for f in sorted(tmp.iterdir())}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        out = install(tmp, out)  # the model appears whole or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("model written", extra={"out": str(out), "anchors": len(anchors)})
    return manifest


def train_model(
    dump_path: str | Path,
    out: str | Path,
    settings: Settings | None = None,
    wiki: str | None = None,
) -> dict:
    """Train one wiki's model from its dump into ``out`` (replaced atomically)."""
    settings = settings or Settings()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    site = dumps.site_info(dump_path)
    if wiki and wiki != site.dbname:
        raise TrainingError(f"--wiki {wiki} but the dump is of {site.dbname}")
    with tempfile.TemporaryDirectory(prefix="addlink-train-") as work:
        return build_model(extract(dump_path, Path(work)), out, settings)

"""Training: dump -> corpus file -> anchors, entity vectors, classifier, model directory.

The dump (one file, or its part files) is read once as a stream, articles parsed one at a
time; what later stages need of each article (its links, its scannable text, one probe
sentence for backtests) goes to a corpus file on disk, not into memory. Building a model
from the corpus takes an optional set of titles, so a backtest trains on one half of the
articles and tests on the other without parsing the dump again.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import math
import shutil
import sqlite3
import tempfile
import time
from array import array
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
import regex
from mwparserfromhell.nodes import Heading, Text, Wikilink

from model import dump as dumps
from model import prior as priors
from model.calibration import FILE as CALIBRATION_FILE
from model.calibration import choose_calibration, ece, log_loss, suggest_minimum_link_score
from model.datasets import (
    DATASETS,
    PAGES_BLOOM,
    SENTENCES_FILE,
    TRAINED_PAGES_ERROR,
    VECTOR_BASIS,
    VECTOR_LENGTHS,
    Anchor,
    Bloom,
    classifier_checksum,
    file_checksum,
    rows_checksum,
)
from model.features import FEATURE_SETS, ablated_columns, candidate_rows, kurtosis
from model.parallel import (
    BATCH,
    Background,
    _private_bytes,
    annotate,
    checkpoint,
    ordered_map,
    recorded,
    recording,
    stage,
)
from model.progress import progress
from model.publish import install
from model.stems import Stemmer, choose, learn_endings, snowball_algorithm, stem_ngrams
from model.tables import TitleTable
from model.text import (
    MAX_ABBREVIATIONS_TEXT,
    MAX_NGRAM,
    STEM,
    TERMINATORS,
    KeySet,
    PrefixIndex,
    learn_abbreviations,
    link_trail,
    listed_abbreviations,
    normalize,
    page_mentions,
    probe_sentences,
    tokens,
    trail_endings,
    walk_tokens,
)
from model.version import APPLICATION_VERSION
from model.wikitext import CANONICAL_NAMESPACES, link_target, parse, tree

log = logging.getLogger("addlink.model.train")
R = TypeVar("R")

MIN_LINK_PROB = 0.065  # SPEC §2: anchors linked less often than this are dropped
MIN_TRAIL_PAGES = 2  # an ending trailing links on fewer training pages is not tried
# Trails beyond the learnt endings are guessed (``model.text.page_mentions``) only where at
# least 1 link in 100 trails an ending: elsewhere editors hardly write [[stem]]rest, and the
# guesses added only negatives to training (ltgwiki, 0.5 %: none was ever kept at 0.6).
MIN_TRAILED_SHARE = 0.01
MAX_TARGETS = 50  # candidate targets kept per anchor (the top 10 are scored)
MAX_MEMBERS = 50  # exact keys stored with a stem class (its trail forms are tried)
DIMENSIONS = 50
PAIR_ARTICLES = 20_000  # articles sampled for training pairs at most (Settings)
# A training mention's kind (TrainingRows.probe): in a sentence without links, in the
# article's probe sentence and kept by select at threshold 0, in another sentence with
# links, in the probe sentence but overlapped by a longer mention.
UNLINKED, PROBE, LINKED, PROBE_OVERLAPPED = 0, 1, 2, 3
# Cross-fitting: each article's training rows come from the other folds' model. 10 folds
# were tried (fold models closer to the shipped one): ECE lower on en, ja, ltg but higher
# on el (0.052 -> 0.095) and F1@0.5 lower on bn and el, for ~1.6x the training time.
FOLDS = 5
# Tree counts the out-of-fold log loss is compared at (those <= Settings.rounds, and it).
ROUND_GRID = (25, 50, 75, 100, 150, 200, 300)
COMPLETE_RESOLVE_RATIO = 0.25  # links resolving inside the dump above this: a complete wiki
ENDINGS = set(TERMINATORS + "。！？｡")
_NO_LETTER = regex.compile(r"^[^\p{L}]*$")
_DATE_LIKE = regex.compile(r"^(?:\p{N}+[\s.,/\-–]*)+(?:\p{L}+\.?)?$|^\p{L}+\.?\s+\p{N}{1,4}$")
_DISAMBIG_TEMPLATE = regex.compile(r"disamb|^dab$|^dp$|неоднозначн|αποσαφήνιση|曖昧", regex.I)
# A template's name is the text right after its "{{": where none of these occurs in the page,
# no template can match _DISAMBIG_TEMPLATE, and the walk over every template is skipped.
_DISAMBIG_TEXT = regex.compile(
    r"disamb|неоднозначн|αποσαφήνιση|曖昧|\{\{\s*(?:dab|dp)\s*(?:\||\}\})", regex.I
)
_QUALIFIER = regex.compile(r"\s*\([^()]*\)\s*$")  # "Mercury (planet)": the "(planet)"
_LIST_TITLE = regex.compile(r"^(List|Lists) of |^Список |^Списък |^Λίστα ")


class TrainingError(RuntimeError):
    """Training cannot produce a usable model from this input."""


@dataclass
class Corpus:
    """What the training keeps of a dump: title tables in memory, article data on disk."""

    site: dumps.SiteInfo
    path: Path  # JSON lines, one article each
    # Title -> page id and redirect title -> resolved target: held for the whole training,
    # so flat buffers (model/tables.py), not dicts of strings.
    articles: TitleTable[int] = field(default_factory=TitleTable)
    redirects: TitleTable[str] = field(default_factory=lambda: TitleTable("str"))
    disambiguations: set[str] = field(default_factory=set)
    links: int = 0
    resolved_links: int = 0
    dump_date: str = ""
    # Byte offset of each line of the corpus file, and its end: workers read their share.
    offsets: array = field(default_factory=lambda: array("q"))
    # The sentence rules of every article (learn_sentence_rules(corpus, None)), being learnt
    # in a background process since the parsing ended (extract with workers > 1).
    sentence_rules: Background | None = None

    @property
    def resolve_ratio(self) -> float:
        return self.resolved_links / self.links if self.links else 0.0

    def records(self, include: set[str] | None = None) -> Iterator[dict]:
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                if include is None or record["t"] in include:
                    yield record

    def size(self, include: set[str] | None = None) -> int:
        """How many records ``records(include)`` yields: a stage's progress total."""
        return len(self.articles) if include is None else len(include & self.articles.keys())

    def map(
        self, fn: Callable[[dict], R], include: set[str] | None, workers: int
    ) -> Iterator[R]:
        """``fn`` of each record (of ``include``), in corpus order, in ``workers`` processes.

        The workers read and decode their share of the file themselves (by the byte offsets
        of its lines), so this process only merges what they return.
        """

        def task(line: str) -> tuple[bool, R | None]:
            record = json.loads(line)
            if include is not None and record["t"] not in include:
                return False, None
            return True, fn(record)

        for kept, result in map_lines([(self.path, self.offsets)], task, workers):
            if kept:
                yield result  # type: ignore[misc]


def map_lines(
    files: Sequence[tuple[Path, array]], fn: Callable[[str], R], workers: int
) -> Iterator[R]:
    """``fn`` of each line of some files, in order, in ``workers`` processes that read the
    files themselves: this process sends each a range of lines (each file's ``offsets``: its
    lines' byte offsets, then its end) and merges the results, so it never touches the text."""
    if workers <= 1 or not all(offsets for _, offsets in files):
        for path, _ in files:
            with open(path, encoding="utf-8") as f:
                yield from map(fn, f)
        return

    def lines(span: tuple[Path, int, int]) -> list[R]:
        with open(span[0], "rb") as f:
            f.seek(span[1])
            data = f.read(span[2] - span[1]).decode("utf-8")
        return [fn(line + "\n") for line in data.split("\n")[:-1]]

    def spans() -> Iterator[tuple[Path, int, int]]:
        for path, offsets in files:
            n = len(offsets) - 1
            for i in range(0, n, BATCH):
                yield path, offsets[i], offsets[min(i + BATCH, n)]

    for results in ordered_map(lines, spans(), workers, batch=1):
        yield from results


def _resolve(redirects: Mapping[str, str], title: str) -> str:
    """Follow redirects (at most 5 hops, as MediaWiki does for double redirects)."""
    for _ in range(5):
        if title not in redirects:
            break
        title = redirects[title]
    return title


def _is_disambiguation(text: str, code) -> bool:
    if "__DISAMBIG__" in text:
        return True
    if not _DISAMBIG_TEXT.search(text):
        return False
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


def extract(
    dump_path: str | Path | Sequence[str | Path],
    workdir: Path,
    workers: int = 1,
    sentence_rules: bool = False,
) -> Corpus:
    """One streaming pass over the dump, one over the corpus file: a Corpus.

    A dump in one file is read once by this process (a reader cannot be split, so it is not
    done twice) and ``workers`` processes parse its articles as they come. A dump in part
    files (``dumps.parts``) is read by the workers, one part each, so the reading is
    parallel too; what they find is merged in part order, the same corpus as the one file
    gives. Either way the articles' links are first written to the titles the editors
    wrote: redirects are all known only at the dump's end, and a second pass over the
    corpus file resolves the link targets, in the workers too.

    ``sentence_rules`` (with workers > 1): the serial Punkt learning of all the articles'
    sentence rules starts in a background process as soon as the text it reads is parsed
    (``Corpus.sentence_rules``), beside the later parsing and the stages that need no rules.
    """
    paths = dumps.parts(dump_path)
    site = dumps.site_info(paths[0])
    namespaces = CANONICAL_NAMESPACES | site.namespaces
    corpus = Corpus(site=site, path=workdir / "corpus.jsonl")
    trail = link_trail(site.language)
    raw_redirects: TitleTable[str] = TitleTable("str")
    latest = 0.0

    def parse_article(article: tuple[str, str]) -> tuple[str, bytes, bool, int]:
        """An article's title, corpus line (unresolved), whether it is a disambiguation, the
        characters of its scannable text."""
        title, text = article
        code = tree(text)
        parsed = parse(text, (), namespaces, code=code)
        record = {
            "t": title,
            "l": [[link.target, link.anchor] for link in parsed.links],
            "s": [s.text for s in parsed.spans if s.scannable],
            "x": pure_sentences(code, namespaces),
            "e": trail_endings(text, trail),
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        chars = sum(len(t) for t in record["s"])
        return title, line.encode("utf-8"), _is_disambiguation(text, code), chars

    raw_files: list[tuple[Path, array]] = []
    background = sentence_rules and workers > 1
    text_chars = 0  # of the parsed parts' texts, in order: Punkt's input is their start

    def learn_rules() -> None:
        """Start learning the sentence rules from the raw corpus files parsed so far (the
        texts are those of the resolved corpus: resolving changes link targets only)."""
        handles = [open(path, encoding="utf-8") for path, _ in raw_files]  # noqa: SIM115
        try:  # opened here, inherited: the child reads them even once they are unlinked
            records = (json.loads(line) for f in handles for line in f)
            corpus.sentence_rules = Background(
                lambda: _sentence_rules(records, site.language)
            )
        finally:
            for f in handles:
                f.close()

    with stage("parse"):
        if len(paths) == 1:
            raw_files.append((workdir / "corpus.raw.jsonl", array("q", [0])))

            def articles() -> Iterator[tuple[str, str]]:
                nonlocal latest
                for page in dumps.pages(paths[0]):
                    if page.namespace != 0:
                        continue
                    latest = max(latest, page.timestamp)
                    if page.redirect:
                        raw_redirects[page.title] = page.redirect
                    else:
                        corpus.articles[page.title] = page.page_id
                        yield page.title, page.text

            raw, raw_offsets = raw_files[0]
            with open(raw, "wb") as out:
                for title, line, disambiguation, _ in progress(
                    ordered_map(parse_article, articles(), workers), "parse", unit="articles"
                ):
                    if disambiguation:
                        corpus.disambiguations.add(title)
                    out.write(line)
                    raw_offsets.append(raw_offsets[-1] + len(line))
            if background:
                learn_rules()
        else:

            def read_part(part: tuple[int, Path]) -> _Part:
                """One part read and parsed by one worker into its own raw corpus file."""
                number, path = part
                found = _Part(workdir / f"corpus.raw.{number}.jsonl")
                with open(found.path, "wb") as out:
                    for page in dumps.pages(path):
                        if page.namespace != 0:
                            continue
                        found.latest = max(found.latest, page.timestamp)
                        if page.redirect:
                            found.redirects.append((page.title, page.redirect))
                            continue
                        found.articles.append((page.title, page.page_id))
                        _, line, disambiguation, chars = parse_article((page.title, page.text))
                        if disambiguation:
                            found.disambiguations.append(page.title)
                        out.write(line)
                        found.offsets.append(found.offsets[-1] + len(line))
                        found.text_chars += chars
                return found

            for found in progress(ordered_map(read_part, enumerate(paths), workers, batch=1),
                                  "parse", total=len(paths), unit="parts"):
                # In part order, as the one file's pages: the same dicts in the same order.
                corpus.articles.update(found.articles)
                raw_redirects.update(found.redirects)
                corpus.disambiguations.update(found.disambiguations)
                latest = max(latest, found.latest)
                raw_files.append((found.path, found.offsets))
                text_chars += found.text_chars
                if background and corpus.sentence_rules is None and (
                    text_chars > MAX_ABBREVIATIONS_TEXT or len(raw_files) == len(paths)
                ):
                    learn_rules()  # Punkt stops inside these parts (or reads them all)
    corpus.redirects = TitleTable("str", ((t, _resolve(raw_redirects, t)) for t in raw_redirects))
    raw_redirects.clear()
    corpus.dump_date = time.strftime("%Y-%m-%d", time.gmtime(latest)) if latest else ""
    if not corpus.articles:
        where = paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} parts)"
        raise TrainingError(f"{where}: no articles (namespace 0, not redirects) in the dump")

    def resolve(line: str) -> tuple[bytes, int, int]:
        """The line with its targets through redirects; its links, how many resolve."""
        record = json.loads(line)
        resolved = 0
        for link in record["l"]:
            link[0] = corpus.redirects.get(link[0], link[0])
            resolved += link[0] in corpus.articles
        for _, spans in record["x"]:
            for span in spans:
                span[2] = corpus.redirects.get(span[2], span[2])
        line = json.dumps(record, ensure_ascii=False) + "\n"
        return line.encode("utf-8"), len(record["l"]), resolved

    with stage("resolve"), open(corpus.path, "wb") as out:
        corpus.offsets.append(0)
        for line, links, resolved in map_lines(raw_files, resolve, workers):
            corpus.links += links
            corpus.resolved_links += resolved
            out.write(line)
            corpus.offsets.append(corpus.offsets[-1] + len(line))
    for raw, _ in raw_files:
        raw.unlink()
    return corpus


@dataclass
class _Part:
    """What a worker found in one dump part: its raw corpus file and the part's tables."""

    path: Path
    articles: list[tuple[str, int]] = field(default_factory=list)
    redirects: list[tuple[str, str]] = field(default_factory=list)
    disambiguations: list[str] = field(default_factory=list)
    latest: float = 0.0
    offsets: array = field(default_factory=lambda: array("q", [0]))
    text_chars: int = 0  # of the articles' scannable texts (the sentence rules' input)


# ---------------------------------------------------------------------------- building


@dataclass
class Settings:
    complete: bool | None = None  # None: decided from the dump
    features: str = "full"
    seed: int = 1
    min_anchor_count: int = 1  # SPEC §2 drops anchors linked once; small wikis need them
    min_link_prob: float = MIN_LINK_PROB
    # Boosting rounds at most; with choose_rounds the shipped classifier keeps the first k
    # trees, k on ROUND_GRID chosen by the folds' out-of-fold log loss (train_classifier).
    rounds: int = 300
    choose_rounds: bool = True
    max_depth: int = 6
    min_child_weight: float = 2.0
    eta: float = 0.1
    # Weight of a positive pair relative to a negative one. It was 0.5 (so a raw 0.5 needed
    # more evidence); with calibrated scores the caution belongs in minimumLinkScore, and 1.0
    # gave the higher F1 at 0.5 on 3 of 4 dumps at equal precision (docs/model.md).
    positive_weight: float = 1.0
    folds: int = FOLDS
    # Features trained (and recommended) without, as missing values: a backtest's ablation.
    ablate: tuple[str, ...] = ()
    # Processes for the per-article stages; the model is the same bytes for any number.
    workers: int = 1
    # Articles the classifier's training pairs come from at most: above it, a seeded sample
    # by title hash (so the rows, and their memory and fitting time, stop growing with the
    # wiki; every shared dump is below it). Anchors and vectors still see every article.
    max_pair_articles: int = PAIR_ARTICLES
    # Stem classes of anchor keys (model/stems.py): "auto" is Snowball where the language
    # has a stemmer and endings learnt from the wiki's text elsewhere; "none" turns it off.
    stemmer: str = "auto"
    # Calibration maps chosen among by cross-validated log loss (model/calibration.py
    # choose_calibration; isotonic joins at >= 1000 mentions): "platt" or "platt,beta".
    calibration: str = "platt"
    # On a slice (complete=False): a link target outside the file is an article of the wiki
    # with a title the links prove, so that title is an anchor candidate like an article's
    # ("Titles as anchors", docs/model.md). No effect on a complete dump (a red link there).
    link_titles: bool = True
    # A cross-fitting fold's entity vectors: "projection", the graph less the fold's links
    # projected on the whole graph's basis (project_fold: two passes over the edges per
    # fold, ~13x cheaper than an SVD at 10^6 nodes, and no SVD's blocks in the fold tasks);
    # "svd", a decomposition of that graph per fold (before). Side by side in docs/model.md.
    fold_vectors: str = "projection"
    # The shipped entity vectors: "projection", the whole graph on its basis (A V, what
    # project_fold gives each fold without its links), stored with the basis and the rows'
    # lengths so a page the model was trained on can be scored with its own links left out
    # of its targets' vectors (``model.recommend.context_vector``); "svd", U S (before).
    vectors: str = "projection"
    # Other wikis' models (directories, or their prior.rows.npz): their training rows join
    # this wiki's at a share the folds choose (model/prior.py). "shipped" (the default): the
    # shared dumps' rows kept in the package, the wiki's own left out. Empty: its own rows
    # alone.
    prior: tuple[str, ...] = priors.DEFAULT


def _target_ok(corpus: Corpus, target: str, complete: bool) -> bool:
    if target in corpus.disambiguations or _LIST_TITLE.match(target):
        return False
    if _NO_LETTER.match(target) or _DATE_LIKE.match(target):
        return False
    return target in corpus.articles if complete else True


def fold_of(title: str, seed: int, folds: int = FOLDS) -> int:
    """The cross-fitting fold of an article: a seeded hash of its title, stable across runs."""
    digest = hashlib.sha256(f"fold:{seed}:{title}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % folds


def title_key(title: str) -> str:
    """The anchor key a title stands for: "Mercury (planet)" -> "mercury"."""
    return normalize(_QUALIFIER.sub("", title))


class Interned:
    """Strings numbered once (anchor keys and titles), shared by every fold's counts."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.strings: list[str] = []

    def id(self, text: str) -> int:
        i = self.ids.get(text)
        if i is None:
            i = self.ids[text] = len(self.strings)
            self.strings.append(text)
        return i


class FoldCounts(Mapping):
    """One fold's counter of strings, or of (string, string) pairs, as two sorted arrays.

    The items are int64 ids (a string's ``Interned`` number; a pair's two numbers in one),
    their counts int32: 12 bytes an entry, where a ``Counter`` of tuples held a dict slot, a
    tuple and the worker's own copies of its strings (~200-300 bytes), in the main process
    for the whole training and once per fold. Updates are buffered and merged in batches
    (sort, then sum of equal ids). It reads as the Counter it replaces (a ``Mapping``).
    """

    FLUSH = 1 << 22  # buffered ids before a merge (32 MB)

    def __init__(self, names: Interned, pairs: bool = False) -> None:
        self.names, self.pairs = names, pairs
        self.ids = np.zeros(0, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int32)
        self._pending = array("q")

    def _encode(self, item) -> int:
        if self.pairs:
            return (self.names.id(item[0]) << 32) | self.names.id(item[1])
        return self.names.id(item)

    def _decode(self, i: int):
        strings = self.names.strings
        return (strings[i >> 32], strings[i & 0xFFFFFFFF]) if self.pairs else strings[i]

    def update(self, items: Iterable) -> None:
        """Count each item once more (as ``Counter.update`` of an iterable)."""
        self._pending.extend(self._encode(item) for item in items)
        if len(self._pending) >= self.FLUSH:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        new = np.frombuffer(self._pending, dtype=np.int64)
        self.ids, self.counts = _summed(
            np.concatenate([self.ids, new]),
            np.concatenate([self.counts, np.ones(len(new), dtype=np.int32)]),
        )
        self._pending = array("q")

    def _find(self, item) -> int:
        self.flush()
        try:
            if self.pairs:
                i = (self.names.ids[item[0]] << 32) | self.names.ids[item[1]]
            else:
                i = self.names.ids[item]
        except (KeyError, TypeError, IndexError):
            return -1
        at = int(np.searchsorted(self.ids, i))
        return at if at < len(self.ids) and self.ids[at] == i else -1

    def __getitem__(self, item) -> int:
        at = self._find(item)
        if at < 0:
            raise KeyError(item)
        return int(self.counts[at])

    def __contains__(self, item: object) -> bool:
        return self._find(item) >= 0

    def __iter__(self) -> Iterator:
        self.flush()
        return (self._decode(int(i)) for i in self.ids)

    def __len__(self) -> int:
        self.flush()
        return len(self.ids)


def _summed(ids: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct ids and each one's total count."""
    order = np.argsort(ids, kind="stable")
    ids, counts = ids[order], counts[order]
    if not len(ids):
        return ids, counts
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    return ids[starts], np.add.reduceat(counts, starts).astype(np.int32)


@dataclass
class AnchorCounts:
    """Additive anchor statistics, one counter per fold, so "every fold but f" is a subtraction.

    ``pairs`` counts pages linking (key, target), ``linked`` pages linking the key at all,
    ``seen`` pages where the key appears linked or not. ``titles`` and ``redirects`` map a key
    to the articles it is the (qualifier-free) title or a redirect title of: these candidates
    exist even where no editor ever linked the text.
    """

    pairs: list[FoldCounts]
    linked: list[FoldCounts]
    seen: list[FoldCounts]
    titles: dict[str, set[str]]
    redirects: dict[str, set[str]]
    # The same for stem classes (model/stems.py): class key -> its exact member keys, the
    # stemmer's manifest entry, and the class counters (a page counts once per class).
    stemmer: dict = field(default_factory=lambda: {"method": "none"})
    members: dict[str, set[str]] = field(default_factory=dict)
    stem_pairs: list[FoldCounts] = field(default_factory=list)
    stem_linked: list[FoldCounts] = field(default_factory=list)
    stem_seen: list[FoldCounts] = field(default_factory=list)
    # Slices: per fold, (title key, target) of link targets outside the file, by pages
    # linking them. Link-derived, so a fold model takes only the other folds' (titles_for).
    link_titles: list[FoldCounts] = field(default_factory=list)
    # The strings every fold's counts number (FoldCounts).
    names: Interned = field(default_factory=Interned)
    # What every fold's dictionary reads (summed, title_index), computed once.
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def titles_for(self, fold: int | None) -> dict[str, set[str]]:
        """Title candidates of every fold but ``fold``: the articles' and the link targets'."""
        if not self.link_titles:
            return self.titles
        titles = {k: set(v) for k, v in self.titles.items()}
        for key, target in self.total("link_titles", fold):
            titles.setdefault(key, set()).add(target)
        return titles

    def summed(self, name: str, fold: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Every fold's ids of counter ``name`` and their counts in every fold but ``fold``
        (0 where only ``fold`` has one): the all-fold sum, computed once before the fold
        tasks fork and shared by them, less the fold's own counts."""
        if name not in self._cache:
            parts = getattr(self, name)
            for part in parts:
                part.flush()
            self._cache[name] = _summed(
                np.concatenate([np.zeros(0, dtype=np.int64)] + [p.ids for p in parts]),
                np.concatenate([np.zeros(0, dtype=np.int32)] + [p.counts for p in parts]),
            )
        ids, counts = self._cache[name]
        if fold is None:
            return ids, counts
        own = getattr(self, name)[fold]
        counts = counts.copy()
        counts[np.searchsorted(ids, own.ids)] -= own.counts
        return ids, counts

    def total(self, name: str, fold: int | None) -> Counter:
        """The counts of every fold but ``fold``, summed, as a Counter (a slice's link
        titles: small)."""
        parts = getattr(self, name)
        if not parts:
            return Counter()
        ids, counts = self.summed(name, fold)
        present = counts > 0
        decode = parts[0]._decode
        return Counter(dict(zip(map(decode, ids[present].tolist()), counts[present].tolist(),
                                strict=True)))

    def title_index(self, fold: int | None, classes: bool) -> _TitleIndex:
        """The keys with title or redirect candidates in the dictionary of every fold but
        ``fold`` (stem classes: whose members have some): their interned ids, sorted; the
        others, which no counter numbers, so never linked or seen; the key -> (titles,
        redirects) function; where each key's run of pairs starts, and its key; every
        candidate key's id, where each interned id is among them and its run. Shared by the
        fold tasks where it is the same for every fold (a complete dump: no link titles)."""
        cached = (classes, None if not self.link_titles else fold)
        if cached in self._cache:
            return self._cache[cached]
        titles, redirects = self.titles_for(fold), self.redirects
        if classes:
            members = self.members

            def candidates(c: str) -> tuple[set[str], set[str]]:
                ks = members.get(c, ())
                return (set().union(*(titles[k] for k in ks if k in titles)),
                        set().union(*(redirects[k] for k in ks if k in redirects)))

            keys: Iterable[str] = (c for c, ks in members.items()
                                   if any(k in titles or k in redirects for k in ks))
        else:
            def candidates(k: str) -> tuple[set[str], set[str]]:
                return titles.get(k, set()), redirects.get(k, set())

            keys = titles.keys() | redirects.keys()
        ids, unnamed = array("q"), set()
        for k in keys:
            i = self.names.ids.get(k)
            if i is None:
                unnamed.add(k)
            else:
                ids.append(i)
        titled = np.unique(np.asarray(ids, dtype=np.int64))
        # The pairs' runs of one key (every fold's), and every candidate key: linked or titled.
        keys = self.summed("stem_pairs" if classes else "pairs", None)[0] >> 32
        starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])) \
            if len(keys) else np.zeros(0, dtype=np.int64)
        linked = keys[starts]
        del keys
        every = np.union1d(linked, titled)
        run = np.searchsorted(linked, every)
        has_run = run < len(linked)
        has_run[has_run] = linked[run[has_run]] == every[has_run]
        where = np.full(len(self.names.strings), -1, dtype=np.int32)
        where[every] = np.arange(len(every), dtype=np.int32)
        index = _TitleIndex(titled, tuple(sorted(unnamed)), candidates, starts, linked, every,
                            where, np.where(has_run, run, -1).astype(np.int32))
        self._cache[cached] = index
        return index

    def prefix_index(self, fold: int | None, language: str) -> PrefixIndex:
        """The prefixes of every candidate key of the dictionaries (``title_index``; the
        exact keys', then the stem classes'), built once where every fold has the same
        candidates, before the fold tasks fork: a fold's key filter is a mask over it."""
        cached = ("prefixes", language, None if not self.link_titles else fold)
        if cached not in self._cache:
            parts = [self.title_index(fold, classes) for classes in (False, True)[
                : 1 + bool(self.members)]]
            self._cache[cached] = PrefixIndex(
                _Candidates(self.names.strings, [(p.keys, p.unnamed) for p in parts]), language)
        return self._cache[cached]


class _TitleIndex(NamedTuple):
    """``AnchorCounts.title_index``: what every fold's dictionary of one kind shares."""

    titled: np.ndarray  # interned ids of the keys with title candidates, sorted
    unnamed: tuple[str, ...]  # the keys with title candidates that have no id, sorted
    candidates: Callable[[str], tuple[set[str], set[str]]]  # key -> (titles, redirects)
    starts: np.ndarray  # where each key's run of (key, target) pairs starts
    linked_keys: np.ndarray  # the key of each run
    keys: np.ndarray  # every candidate key's id: linked in some fold or titled, sorted
    where: np.ndarray  # interned id -> its place in keys, or -1
    run_of: np.ndarray  # a candidate key's run, or -1


class _Candidates(Sequence):
    """Candidate keys by number: each table's numbered keys (by id), then its unnumbered
    ones; read one at a time, so a forked worker touches only the strings it asks for."""

    def __init__(self, strings: list[str], parts: list[tuple[np.ndarray, tuple[str, ...]]]):
        self.strings, self.parts = strings, parts
        self.size = sum(len(ids) + len(unnamed) for ids, unnamed in parts)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i):  # type: ignore[override]
        ids, unnamed = self.parts[0]
        if i < len(ids):  # the common case: an exact key with counts
            return self.strings[ids[i]]
        for ids, unnamed in self.parts:
            if i < len(ids):
                return self.strings[ids[i]]
            i -= len(ids)
            if i < len(unnamed):
                return unnamed[i]
            i -= len(unnamed)
        raise IndexError(i)

    def __iter__(self) -> Iterator[str]:
        for ids, unnamed in self.parts:
            yield from map(self.strings.__getitem__, ids.tolist())
            yield from unnamed

    def many(self, at: np.ndarray) -> list[str]:
        """The keys numbered ``at`` (a probe's hits, checked at once)."""
        ids = self.parts[0][0]
        if len(at) and at.max() < len(ids):
            return list(map(self.strings.__getitem__, ids[at].tolist()))
        return [self[i] for i in at.tolist()]


def _title_anchor_key(corpus: Corpus, name: str, target: str, complete: bool) -> str:
    """The key ``name`` is a title candidate under for ``target``; "" when it is none."""
    key = title_key(name)
    if not key or _NO_LETTER.match(key) or _DATE_LIKE.match(key):
        return ""
    if not _target_ok(corpus, target, complete):
        return ""
    return key if len(tokens(key, corpus.site.language)) <= MAX_NGRAM else ""


def _title_candidates(corpus: Corpus, complete: bool) -> tuple[dict, dict]:
    titles: dict[str, set[str]] = defaultdict(set)
    redirects: dict[str, set[str]] = defaultdict(set)
    named = [(t, t, titles) for t in corpus.articles]
    named += [(r, t, redirects) for r, t in corpus.redirects.items()]
    for name, target, table in named:
        if key := _title_anchor_key(corpus, name, target, complete):
            table[key].add(target)
    return dict(titles), dict(redirects)


def _link_titles(corpus: Corpus, record: dict) -> list[tuple[str, str]]:
    """A slice's page's link targets outside the file, as (title key, target) candidates.

    Such a target is an article of the wiki (the link proves it and its exact title), just
    not of this file, so it would otherwise have no title anchor. Same rules as an article's
    title (``_title_anchor_key``); the target is already resolved through redirects.
    """
    outside = {t for t, _ in record["l"] if t not in corpus.articles}
    found = {(key, t) for t in outside if (key := _title_anchor_key(corpus, t, t, False))}
    return sorted(found)


def count_anchors(
    corpus: Corpus,
    include: set[str] | None,
    complete: bool,
    seed: int,
    folds: int = FOLDS,
    abbreviations: frozenset[str] | Callable[[], frozenset[str]] = frozenset(),
    stemming: str = "none",
    workers: int = 1,
    link_titles: bool = False,
) -> AnchorCounts:
    """Two passes over the corpus: links per (key, target), then where each key appears.

    With ``stemming`` (``Settings.stemmer``), every key is also counted under its stem
    class: pages linking any member, pages where any n-gram of that stem key appears.
    Each pass computes an article's share in ``workers`` processes; the counters are summed
    here in corpus order (sorted lists from the workers, so the counters' order too is the
    same for any number of workers). ``link_titles`` (slices only): link targets outside the
    file become title candidates, counted per fold of the linking page.
    """
    from model.text import ngrams

    language = corpus.site.language
    titles, redirects = _title_candidates(corpus, complete)
    names = Interned()
    counts = AnchorCounts(
        [FoldCounts(names, pairs=True) for _ in range(folds)],
        [FoldCounts(names) for _ in range(folds)],
        [FoldCounts(names) for _ in range(folds)],
        titles,
        redirects,
        names=names,
    )
    method = choose(stemming, language)
    outside = link_titles and not complete  # on a complete dump such a target is a red link
    if outside:
        counts.link_titles = [FoldCounts(names, pairs=True) for _ in range(folds)]

    def linked_pairs(record: dict) -> tuple[int, list[tuple[str, str]], Counter, list]:
        words: Counter = Counter()  # the text's words, to learn endings from
        if method == "learnt":
            for text in record["s"]:
                low = text.lower()
                words.update(low[a:b] for a, b in walk_tokens(low, language))
        pairs = sorted(_link_pairs(corpus, record, complete))
        named = _link_titles(corpus, record) if outside else []
        return fold_of(record["t"], seed, folds), pairs, words, named

    words: Counter = Counter()
    with stage("anchors"):
        for f, pairs, seen_words, named in progress(
            corpus.map(linked_pairs, include, workers), "anchors",
            total=corpus.size(include), unit="articles",
        ):
            counts.pairs[f].update(pairs)
            counts.linked[f].update({key for key, _ in pairs})
            words.update(seen_words)
            if outside:
                counts.link_titles[f].update(named)
    keys = set().union(*counts.linked) | titles.keys() | redirects.keys()
    keys |= {key for part in counts.link_titles for key, _ in part}
    stem_of: dict[str, str] = {}
    if method == "snowball":
        counts.stemmer = {"method": "snowball", "algorithm": snowball_algorithm(language)}
    elif method == "learnt":
        anchor_words = {k[a:b] for k in keys for a, b in walk_tokens(k, language)}
        counts.stemmer = {"method": "learnt", "endings": learn_endings(words, anchor_words)}
    del words
    stemmer = Stemmer(counts.stemmer)
    if stemmer.enabled:
        stem_of = {k: c for k in keys if (c := stemmer.key(k, language))}
        for k, c in stem_of.items():
            counts.members.setdefault(c, set()).add(k)
        counts.stem_pairs = [FoldCounts(names, pairs=True) for _ in range(folds)]
        counts.stem_linked = [FoldCounts(names) for _ in range(folds)]
        counts.stem_seen = [FoldCounts(names) for _ in range(folds)]
    classes = set(counts.members)
    if callable(abbreviations):  # learnt meanwhile (or now): only this pass needs them
        abbreviations = abbreviations()

    # Link probability: pages linking the anchor / pages where it appears at all.
    def seen_keys(record: dict) -> tuple[int, list[str], list[tuple[str, str]], list[str]]:
        found = {normalize(a) for _, a in record["l"]} & keys
        for text in record["s"]:
            found.update(m.key for m in ngrams(text, language, abbreviations=abbreviations)
                         if m.key in keys)
        pairs: set[tuple[str, str]] = set()
        seen: set[str] = set()
        if classes:
            pairs = {(stem_of[k], t) for k, t in _link_pairs(corpus, record, complete)
                     if k in stem_of}
            seen = {stem_of[k] for k in found if k in stem_of}
            for text in record["s"]:
                seen |= stem_ngrams(text, language, stemmer, classes, abbreviations)
        return fold_of(record["t"], seed, folds), sorted(found), sorted(pairs), sorted(seen)

    with stage("link probability"):
        for f, found, pairs, seen in progress(corpus.map(seen_keys, include, workers),
                                              "link probability",
                                              total=corpus.size(include), unit="articles"):
            counts.seen[f].update(found)
            if classes:
                counts.stem_pairs[f].update(pairs)
                counts.stem_linked[f].update({c for c, _ in pairs})
                counts.stem_seen[f].update(seen)
    for name in ("pairs", "linked", "seen", "stem_pairs", "stem_linked", "stem_seen",
                 "link_titles"):
        for part in getattr(counts, name):
            part.flush()  # merged before the fold tasks fork: they only read
    return counts


def _link_pairs(corpus: Corpus, record: dict, complete: bool) -> set[tuple[str, str]]:
    """The page's distinct (anchor key, target) links that may become anchors."""
    pairs = set()
    for target, anchor in record["l"]:
        key = normalize(anchor)
        if key and not _NO_LETTER.match(key) and _target_ok(corpus, target, complete):
            pairs.add((key, target))
    return pairs


def anchors_from(counts: AnchorCounts, fold: int | None, settings: Settings) -> _Joined:
    """The anchor dictionary of every fold but ``fold`` (None: of all of them).

    A link-derived anchor needs SPEC §2's link probability. A title or redirect title counts
    as one more page linking it, so an unlinked title survives unless the text appears
    unlinked on so many pages that it is a common word ("The", one letter), whatever the
    wiki's size: (linked + 1) / (seen + 1) >= min_link_prob. On a slice, the titles include
    the link targets outside the file that the pages of every fold but ``fold`` link.
    Stem classes: a title's or redirect's class holds its article as a candidate too, and
    a class lists its members that are exact keys of this dictionary.
    """
    exact = AnchorTable(counts, fold, settings)
    classes = AnchorTable(counts, fold, settings, exact) if counts.members else None
    return _Joined(counts, fold, exact, classes)


def _keep(total, linked, pages, appears, titled, settings: Settings):
    """Which keys are anchors (SPEC §2, and titles as one more linking page), on arrays:
    (kept, kept by a title candidate)."""
    prob = np.divide(pages, appears, out=np.zeros(len(pages)), where=appears > 0)
    link_ok = linked & (total >= settings.min_anchor_count) & (prob >= settings.min_link_prob)
    title_ok = titled & ((pages + 1) / (appears + 1) >= settings.min_link_prob)
    return link_ok | title_ok, title_ok


def _anchor(
    key: str,
    links: list[tuple[str, int]],
    pages: int,
    appears: int,
    title_ok: bool,
    title_of: set[str],
    redirect_of: set[str],
    members: Iterable[str] | None,
) -> Anchor:
    """A kept key's entry: its targets ranked (the titles' after the links'), rounded stats."""
    total = sum(n for _, n in links)
    prob = pages / appears if appears else 0.0
    extra = sorted((title_of | redirect_of) - {t for t, _ in links}) if title_ok else []
    ranked = sorted(links, key=lambda kv: (-kv[1], kv[0]))[: MAX_TARGETS - len(extra)]
    targets = tuple(ranked) + tuple((t, 0) for t in extra)
    kept = {t for t, _ in targets}
    return Anchor(
        key=key,
        targets=targets,
        total=total,
        link_prob=round(prob, 6),
        kurtosis=round(kurtosis([n for _, n in ranked]), 6),
        unlinked=appears - pages,
        titles=tuple(sorted(title_of & kept)),
        redirects=tuple(sorted(redirect_of & kept)),
        members=tuple(sorted(members)[:MAX_MEMBERS]) if members is not None else (),
    )


def _count_at(ids: np.ndarray, counts: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``counts`` of each of ``keys`` in the sorted ``ids`` (0 where absent)."""
    if not len(ids):
        return np.zeros(len(keys), dtype=np.int64)
    at = np.minimum(np.searchsorted(ids, keys), len(ids) - 1)
    return np.where(ids[at] == keys, counts[at], 0).astype(np.int64)


class AnchorTable(Mapping):
    """One anchor dictionary (exact keys, or stem classes) as arrays over the shared counts.

    What a fold task held as a dict of ``Anchor`` objects, built from Counters of strings
    decoded from the counts (~112 GB projected at enwiki's size for a worker), is here its
    counts of every fold but this one, aligned with the all-fold arrays the fold tasks
    share, and which candidate keys pass; an ``Anchor`` is made (``_anchor``) when a key is
    asked for, the last ones asked for kept. The filter is ``_keep``'s: the same keys, the
    same entries as a dict built key by key.
    """

    CACHED = 1 << 14  # Anchors kept made (the keys a fold's pages ask for again)

    def __init__(self, counts: AnchorCounts, fold: int | None, settings: Settings,
                 exact: Mapping | None = None) -> None:
        prefix = "stem_" if exact is not None else ""
        self.names = counts.names
        self.pairs, self.pair_counts = counts.summed(prefix + "pairs", fold)
        self.index = index = counts.title_index(fold, exact is not None)
        self.unnamed, self.candidates = index.unnamed, index.candidates
        self.exact = exact
        self.members = counts.members
        total = (np.add.reduceat(self.pair_counts.astype(np.int64), index.starts)
                 if len(index.starts) else np.zeros(0, dtype=np.int64))
        total = _count_at(index.linked_keys, total, index.keys)
        pages = _count_at(*counts.summed(prefix + "linked", fold), index.keys)
        appears = np.maximum(_count_at(*counts.summed(prefix + "seen", fold), index.keys), pages)
        has_title = np.isin(index.keys, index.titled, assume_unique=True)
        self.kept, self.title_ok = _keep(total, total > 0, pages, appears, has_title, settings)
        del total, has_title
        self.pages, self.appears = pages.astype(np.int32), appears.astype(np.int32)
        zero = np.zeros(1, dtype=np.int64)
        # A key no counter numbers has no counts: its title decides alone.
        self.unnamed_kept = bool(_keep(zero, zero > 0, zero, zero, np.ones(1, bool),
                                       settings)[0][0]) and bool(self.unnamed)
        self._size = int(self.kept.sum()) + (len(self.unnamed) if self.unnamed_kept else 0)
        self._made = lru_cache(maxsize=self.CACHED)(self._make)

    def _at(self, key: object) -> int:
        """Where a kept key is in ``self.keys``; -1 for an unnumbered kept key; -2: none."""
        i = self.names.ids.get(key) if isinstance(key, str) else None
        if i is None:
            at = bisect_left(self.unnamed, key) if self.unnamed_kept else len(self.unnamed)
            return -1 if at < len(self.unnamed) and self.unnamed[at] == key else -2
        at = int(self.index.where[i])
        return at if at >= 0 and self.kept[at] else -2

    def __contains__(self, key: object) -> bool:
        return self._at(key) > -2

    def __getitem__(self, key: str) -> Anchor:
        at = self._at(key)
        if at == -2:
            raise KeyError(key)
        return self._made(key, at)

    def _make(self, key: str, at: int) -> Anchor:
        links: list[tuple[str, int]] = []
        pages = appears = 0
        if at >= 0:
            run, starts = int(self.index.run_of[at]), self.index.starts
            if run >= 0:
                stop = starts[run + 1] if run + 1 < len(starts) else len(self.pairs)
                rows = slice(int(starts[run]), int(stop))
                strings = self.names.strings
                links = [(strings[t & 0xFFFFFFFF], n) for t, n in
                         zip(self.pairs[rows].tolist(), self.pair_counts[rows].tolist(),
                             strict=True) if n]
            pages, appears = int(self.pages[at]), int(self.appears[at])
        title_ok = bool(self.title_ok[at]) if at >= 0 else True
        title_of, redirect_of = self.candidates(key)
        members = None
        if self.exact is not None:
            members = [k for k in self.members.get(key, ()) if k in self.exact]
        return _anchor(key, links, pages, appears, title_ok, title_of, redirect_of, members)

    def kept_candidates(self) -> np.ndarray:
        """Which of its candidate keys (``_Candidates`` order) this dictionary holds."""
        return np.concatenate([self.kept, np.full(len(self.unnamed), self.unnamed_kept)])

    def __iter__(self) -> Iterator[str]:
        strings = self.names.strings
        keys = [strings[i] for i in self.index.keys[self.kept].tolist()]
        if self.unnamed_kept:
            keys += self.unnamed
        return iter(sorted(keys))

    def __len__(self) -> int:
        return self._size


class _Joined(Mapping):
    """The exact keys' dictionary, then the stem classes' (``STEM`` keys): one dictionary."""

    def __init__(self, counts: AnchorCounts, fold: int | None, exact: AnchorTable,
                 classes: AnchorTable | None) -> None:
        self.counts, self.fold = counts, fold
        self.exact, self.classes = exact, classes if classes is not None else {}

    def filter(self, language: str) -> KeySet:
        """``filter_keys(self, language)``: a mask over the shared ``prefix_index``."""
        tables = [self.exact] + ([self.classes] if isinstance(self.classes, AnchorTable) else [])
        kept = np.concatenate([t.kept_candidates() for t in tables])
        return KeySet(self.counts.prefix_index(self.fold, language), kept)

    def _part(self, key: object) -> Mapping:
        return self.classes if isinstance(key, str) and key.startswith(STEM) else self.exact

    def __contains__(self, key: object) -> bool:
        return key in self._part(key)

    def __getitem__(self, key: str) -> Anchor:
        return self._part(key)[key]

    def __iter__(self) -> Iterator[str]:
        yield from self.exact
        yield from self.classes

    def __len__(self) -> int:
        return len(self.exact) + len(self.classes)


def build_anchors(
    corpus: Corpus, include: set[str] | None, settings: Settings, complete: bool
) -> Mapping:
    """The anchor dictionary of the given articles (all of them when ``include`` is None)."""
    counts = count_anchors(corpus, include, complete, settings.seed, settings.folds,
                           link_titles=settings.link_titles)
    return anchors_from(counts, None, settings)


class LinkGraph:
    """Article -> the distinct titles it links, as int32 arrays of interned node ids.

    ``nodes`` numbers every title once, in the order the old per-article dict met them
    (an article, then its targets), so the whole graph's rows are those of the vectors. The
    articles' rows form a CSR of the directed links (``indptr``/``indices``, targets in title
    order); the symmetric matrix SVD reads is never formed (``_Symmetric``): 4 bytes an
    edge end here, where a dict of target lists held a str object and a list slot per link
    (~36 bytes, ~30 GB at enwiki's ~410 M links) and ``A + A.T`` another two copies. It reads
    like the dict it replaces: titles in corpus order, ``graph[title]`` its targets.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, int] = {}
        self.names: list[str] = []
        self._rows: dict[str, int] = {}  # article -> its row
        self._sources = array("i")
        self._indptr = array("q", [0])
        self._indices = array("i")

    def add(self, title: str, targets: Iterable[str]) -> None:
        nodes = self.nodes
        for name in (title, *targets):
            if name not in nodes:
                nodes[name] = len(self.names)
                self.names.append(name)
        self._rows[title] = len(self._sources)  # a title twice: the later row, as a dict
        self._sources.append(nodes[title])
        self._indices.extend(nodes[t] for t in targets)
        self._indptr.append(len(self._indices))

    @property
    def sources(self) -> np.ndarray:
        """Each article's node id, by row."""
        return np.frombuffer(self._sources, dtype=np.int32)

    @property
    def indptr(self) -> np.ndarray:
        return np.frombuffer(self._indptr, dtype=np.int64)

    @property
    def indices(self) -> np.ndarray:
        return np.frombuffer(self._indices, dtype=np.int32)

    @property
    def edges(self) -> int:
        return len(self._indices)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __contains__(self, title: object) -> bool:
        return title in self._rows

    def __getitem__(self, title: str) -> list[str]:
        row = self._rows[title]
        return [self.names[i] for i in self._indices[self._indptr[row]:self._indptr[row + 1]]]

    def items(self) -> Iterator[tuple[str, list[str]]]:
        for title in self._rows:
            yield title, self[title]

    def kept(self, exclude: Collection[str] = ()) -> np.ndarray:
        """Which rows count: each title's last, less those of ``exclude``."""
        keep = np.zeros(len(self._sources), dtype=bool)
        keep[np.fromiter(self._rows.values(), dtype=np.int64, count=len(self._rows))] = True
        if exclude:
            rows = [r for t in exclude if (r := self._rows.get(t)) is not None]
            keep[np.asarray(rows, dtype=np.int64)] = False
        return keep


def link_graph(corpus: Corpus, include: set[str] | None, workers: int = 1) -> LinkGraph:
    """Article -> the distinct articles it links (``LinkGraph``), for the vectors."""

    def targets(record: dict) -> tuple[str, list[str]]:
        return record["t"], sorted({t for t, _ in record["l"]})

    graph = LinkGraph()
    with stage("link graph"):
        for title, found in progress(corpus.map(targets, include, workers), "link graph",
                                     total=corpus.size(include), unit="articles"):
            graph.add(title, found)
    return graph


class _Symmetric:
    """``B + B.T`` of a CSR ``B`` of directed links, as a product only: never formed.

    ``graph + graph.T`` held a second and third copy of every edge (and scipy upcast a
    float32 copy to float64 on every product); here each product accumulates ``B x`` and
    ``B.T x`` into one output block (scipy's own CSR/CSC kernels, which add into it), so
    the range finder holds the edges once and one block besides its input.
    """

    def __init__(self, b) -> None:
        self.b = b
        self.shape = b.shape

    @property
    def T(self) -> _Symmetric:  # noqa: N802 - as scipy's matrices: symmetric
        return self

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        from scipy.sparse import _sparsetools

        x = np.ascontiguousarray(x, dtype=np.float64)
        n, width = self.shape[0], x.shape[1]
        out = np.zeros((n, width), dtype=np.float64)
        b = self.b
        _sparsetools.csr_matvecs(n, n, width, b.indptr, b.indices, b.data, x.ravel(), out.ravel())
        _sparsetools.csc_matvecs(n, n, width, b.indptr, b.indices, b.data, x.ravel(), out.ravel())
        return out


def top_singular(matrix, k: int, seed: int, power: int = 2, oversample: int = 10):
    """The k leading singular triplets (u, s, v) of a sparse matrix, randomized.

    A seeded random range finder with power iterations (Halko, Martinsson and Tropp 2011):
    a few sparse products and small QRs, so one decomposition per cross-fitting fold stays
    cheap (ARPACK's ``svds`` took seconds per fold on elwiki). Signs are fixed (largest
    entry of u positive; v's columns flipped with u's) so equal input gives equal vectors.
    One BLAS thread, like the rest of training: on a shared machine a multi-threaded QR was
    ten times slower, not faster.

    Memory is the blocks, n x (k + oversample) doubles each (4.8 GB at 10^7 nodes): each is
    dropped as soon as the next exists, and the QRs and the last SVD overwrite their input
    (scipy's LAPACK calls with ``overwrite_a``, the same bits as numpy's, which copy it), so
    at most two live at once in the iterations and three in the last step, where chained
    numpy expressions kept four and five.
    """
    from scipy.linalg import qr, svd
    from threadpoolctl import threadpool_limits

    def orthonormal(x: np.ndarray) -> np.ndarray:
        return qr(x, mode="economic", overwrite_a=True, check_finite=False)[0]

    rng = np.random.default_rng(seed)
    with threadpool_limits(limits=1):
        x = np.asfortranarray(matrix @ rng.standard_normal((matrix.shape[1], k + oversample)))
        q = orthonormal(x)
        del x
        for _ in range(power):
            for product in (matrix.T, matrix):
                c = np.ascontiguousarray(q)
                del q
                x = np.asfortranarray(product @ c)
                del c
                q = orthonormal(x)
                del x
        x = matrix.T @ np.ascontiguousarray(q)
        small, values, vt = svd(x.T, full_matrices=False, overwrite_a=True,
                                check_finite=False, lapack_driver="gesdd")
        del x
    u = (q @ small)[:, :k]
    del q
    signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])])
    signs = np.where(signs == 0, 1, signs)
    return u * signs, values[:k], vt[:k].T * signs


def _directed(graph: LinkGraph, keep: np.ndarray, ids: np.ndarray | None, n: int):
    """The CSR (n x n, a row per node) of the links of the rows ``keep`` marks, node ids
    renumbered by ``ids`` (whole-graph id -> id; None: as they are). Built in chunks of
    rows straight into its arrays (no COO, no sum of duplicates: an article's targets are
    distinct), so at most a chunk's worth of edges is held twice."""
    from scipy.sparse import csr_matrix

    sources, indptr, indices = graph.sources, graph.indptr, graph.indices
    degree = np.where(keep, np.diff(indptr), 0)
    rows = sources if ids is None else ids[sources]
    counts = np.zeros(n, dtype=np.int64)
    counts[rows[keep]] = degree[keep]
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=out_ptr[1:])
    out_indices = np.empty(int(out_ptr[-1]), dtype=np.int32)
    step = 1 << 16
    for first in range(0, len(degree), step):
        part = np.arange(first, min(first + step, len(degree)))
        part = part[degree[part] > 0]
        if not len(part):
            continue
        lengths = degree[part]
        # Each edge's place in the input (its row's start + its rank) and in the output.
        rank = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        at = np.repeat(indptr[part], lengths) + rank
        to = np.repeat(out_ptr[rows[part]], lengths) + rank
        out_indices[to] = indices[at] if ids is None else ids[indices[at]]
    matrix = csr_matrix(
        (np.ones(len(out_indices), dtype=np.float64), out_indices, out_ptr), shape=(n, n)
    )
    matrix.sort_indices()
    return matrix


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, to 5 decimals, float32 (``vectors`` is overwritten).

    A row with no weight in the k leading directions stays zero (a missing similarity, not a
    random direction): a node outside them comes out as rounding noise (norms ~1e-14
    against ~1 on ltgwiki: 4 rows of 4,322), whose direction depends on the order of the
    products' sums."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    floor = 1e-9 * float(norms.max()) if len(norms) else 0.0
    weighty = norms > floor
    # In place (the caller's block is a temporary): one n x k block less at the peak.
    np.divide(vectors, norms, out=vectors, where=weighty)
    vectors[~weighty[:, 0]] = 0.0
    return np.round(vectors, 5, out=vectors).astype(np.float32)


@dataclass
class Embedding:
    """The whole graph's decomposition, kept for the folds' vectors (``project_fold``)."""

    graph: LinkGraph
    links: object  # the directed links' CSR, a row per node (``_directed``)
    basis: np.ndarray  # n x k right singular vectors, by node id


def build_vectors(
    graph: LinkGraph, seed: int, exclude: Collection[str] = ()
) -> tuple[dict[str, tuple[int, int]], np.ndarray]:
    """Entity vectors: truncated SVD of the symmetric article-link graph.

    Two articles get close vectors when they link to and are linked from the same pages, which
    is what "this target fits this page" needs; a page's context is the sum of its links.
    The links of ``exclude`` (the fold being labelled) are left out of the graph.
    """
    entities, vectors, _ = embed(graph, seed, exclude)
    return entities, vectors


def embed(
    graph: LinkGraph, seed: int, exclude: Collection[str] = ()
) -> tuple[dict[str, tuple[int, int]], np.ndarray, Embedding]:
    """``build_vectors``, and the decomposition it came from (``project_fold``'s basis)."""
    keep = graph.kept(exclude)
    ids = None
    n = len(graph.nodes)
    names: Sequence[str] = graph.names
    if exclude:
        # Node ids in the order the graph without ``exclude`` meets them: article, targets.
        starts = np.diff(graph.indptr) + 1
        seq = np.empty(int(starts[keep].sum()), dtype=np.int32)
        head = np.cumsum(starts[keep]) - starts[keep]
        is_head = np.zeros(len(seq), dtype=bool)
        is_head[head] = True
        seq[head] = graph.sources[keep]
        seq[~is_head] = graph.indices[np.repeat(keep, np.diff(graph.indptr))]
        found, first = np.unique(seq, return_index=True)
        order = found[np.argsort(first, kind="stable")]
        ids = np.full(len(graph.nodes), -1, dtype=np.int32)
        ids[order] = np.arange(len(order), dtype=np.int32)
        n = len(order)
        names = [graph.names[i] for i in order]
    links = _directed(graph, keep, ids, n)
    if n < 3 or not links.nnz:
        raise TrainingError("too few links in the dump to build entity vectors")
    indegree = np.bincount(links.indices, minlength=n)
    u, s, v = top_singular(_Symmetric(links), min(DIMENSIONS, n - 2), seed)
    # u * s, not u * sqrt(s): dot products then approximate A², i.e. "linked from and to the
    # same pages" (co-links), which separates a page's true targets from the other
    # candidates better on 5 of 7 shared dumps (benchmarks/embedding_check.py).
    vectors = _unit_rows(u * s)
    del u
    entities = {t: (i, int(indegree[i])) for i, t in enumerate(names)}
    return entities, vectors, Embedding(graph, links, np.ascontiguousarray(v))


def project_fold(
    embedding: Embedding, exclude: Collection[str]
) -> tuple[dict[str, tuple[int, int]], np.ndarray]:
    """A fold's entity vectors without a second SVD: the graph less the links of
    ``exclude`` (the fold's articles) projected on the whole graph's basis.

    For the whole graph ``A V = U S`` (V its right singular vectors), so a node's whole-model
    vector is its row of ``A V``: the sum of the basis rows of the nodes it shares a link
    with. The fold's vector is the row of ``A_f V``, ``A_f`` being ``A`` less the fold's own
    links (both directions): no term of it comes from a link of the fold, so a fold article's
    link p -> t adds nothing to t's vector or to p's context; the basis V is the whole
    graph's (one n x k matrix, shared by the five folds). ``A_f V`` is two passes over the
    edges (``B_f V + B_f.T V``, B_f the directed links with the fold's rows left out), where
    an SVD of A_f took about fourteen, and its memory is the output block alone. Entities
    are the nodes of the fold's graph as ``build_vectors(exclude=...)`` has them (an article
    outside the fold, or a target of one), in-degree from the other folds' links.
    """
    entities, out = _projected(embedding, exclude)
    return entities, _unit_rows(out)


def _projected(
    embedding: Embedding, exclude: Collection[str]
) -> tuple[dict[str, tuple[int, int]], np.ndarray]:
    """``project_fold``'s entities and its rows of ``A_f V`` before they are made unit."""
    from scipy.sparse import _sparsetools

    graph, links, basis = embedding.graph, embedding.links, embedding.basis
    n, width = basis.shape
    outside = np.ones(n, dtype=np.float64)  # 0 for the nodes of the fold's articles
    keep = graph.kept(exclude)
    others = graph.kept()
    outside[graph.sources[others & ~keep]] = 0.0
    masked = np.ascontiguousarray(basis * outside[:, None])
    out = np.zeros((n, width), dtype=np.float64)
    _sparsetools.csr_matvecs(n, n, width, links.indptr, links.indices, links.data,
                             basis.ravel(), out.ravel())
    out *= outside[:, None]  # B_f V: the fold's rows left out
    _sparsetools.csc_matvecs(n, n, width, links.indptr, links.indices, links.data,
                             masked.ravel(), out.ravel())  # + B_f.T V
    del masked
    indegree = np.zeros(n, dtype=np.float64)
    _sparsetools.csc_matvecs(n, n, 1, links.indptr, links.indices, links.data,
                             outside, indegree)
    present = indegree > 0
    present[graph.sources[keep]] = True
    entities = {graph.names[i]: (int(i), int(indegree[i])) for i in np.flatnonzero(present)}
    return entities, out


def whole_projection(
    embedding: Embedding,
) -> tuple[dict[str, tuple[int, int]], np.ndarray, np.ndarray]:
    """The shipped vectors as every fold's are made: the whole graph's rows of ``A V``
    (unit, as ``project_fold``), with each row's length before it was made unit.

    The classifier learnt its similarity feature from fold projections; ``U S`` from the
    decomposition is the same only where the randomized SVD is exact (its leading
    directions), so the shipped vectors are the same projection, of nothing left out. The
    lengths and the basis let ``model.recommend.context_vector`` take one page's links out
    again: ``A_p V`` is ``A V`` less ``V[p]`` in each row the page links, less the sum of
    its targets' basis rows in its own.
    """
    entities, out = _projected(embedding, ())
    lengths = np.linalg.norm(out, axis=1).astype(np.float32)
    return entities, _unit_rows(out), lengths


class _Lookup:
    """The in-memory view of freshly built datasets that training pairs are computed from.

    ``keys`` holds exactly what the Bloom filter is built from, so training walks the
    same n-grams as the recommender (which only adds the filter's rare false positives).
    """

    def __init__(
        self,
        anchors: Mapping[str, Anchor],
        entities,
        vectors,
        features: str,
        keys: KeySet | None = None,
        trail: str | None = None,
        endings: Iterable[str] = (),
        abbreviations: frozenset[str] = frozenset(),
        stemmer: Stemmer | None = None,
        guess_trails: bool = False,
    ):
        self.guess_trails = guess_trails
        self.anchors, self.entities, self.vectors, self.features = (
            anchors,
            entities,
            vectors,
            features,
        )
        self.keys = keys if keys is not None else KeySet.of(anchors, "en")
        self.trail = trail
        self.endings = frozenset(endings)
        self.abbreviations = abbreviations
        self.stemmer = stemmer

    def passes(self, keys: list[str]) -> list[bool]:
        return self.keys.passes(keys)

    def lookup(self, keys: Iterable[str]) -> dict[str, Anchor]:
        return {k: a for k in keys if (a := self.anchors.get(k)) is not None}

    def vector(self, title: str) -> np.ndarray | None:
        e = self.entities.get(title)
        return None if e is None else self.vectors[e[0]]


def page_pairs(
    lookup: _Lookup, record: dict, language: str
) -> Iterator[tuple[list[float], int, int, int]]:
    """Labelled feature rows from one article's sentences, as the recommender would meet them.

    Each sentence made of text and links is stripped of its links and scanned like a page:
    a mention spanning exactly a removed link, with that link's target, is a positive; every
    other candidate of every eligible mention is a negative, including pieces of longer links
    and anchor texts the editors left unlinked. The context is the article's other links.
    The reference system trains only on linked anchors and never shows its classifier the
    unlinked mentions it will mostly be asked about. Rows come as (features, label, mention,
    linked): the mention's number within the article groups the candidates the recommender
    ranks; the last value is the mention's kind: ``PROBE`` (in the article's first sentence
    with links, the backtest's probe rule, SPEC §2, and kept by ``select`` at threshold 0:
    the population on which "right" is measured and calibrated), ``PROBE_OVERLAPPED`` (in
    it, but under a longer mention), ``LINKED`` (another sentence with links), ``UNLINKED``.
    """
    from model.recommend import mention_anchors, title_filter

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
        abbreviations=lookup.abbreviations, stemmer=lookup.stemmer, whole_keys=True,
        guess_trails=lookup.guess_trails,
    )
    for index, m in found:
        mentions[index].append((index, m))
    mention = 0
    probe = next((i for i, (_, links) in enumerate(pure) if links), None)
    for number, ((text, links), found) in enumerate(zip(pure, mentions, strict=True)):
        gold = {(a, b): t for a, b, t in links}
        here = Counter(t for _, _, t in links)
        if number == probe:
            # As the backtest scores a probe (SPEC §2): all of its links are stripped and only
            # targets it does not link are context, so a target it shares with the rest of
            # the page stays a candidate. A page links again 16-50 % of its probe's targets
            # (ltg 16 %, en 45 %, ja 50 %): skipped here, those easy positives were missing
            # from the calibration, and ja's test probes were right twice as often as its
            # training probes at equal raw score.
            linked = {t for t in page_targets if t not in here} | {record["t"]}
        else:
            linked = {t for t, n in page_targets.items() if n > here.get(t, 0)} | {record["t"]}
        context = full_context
        for t in here:
            v = lookup.vector(t)
            if v is not None and t not in linked:
                context = context - v
        eligible = []
        for _, m, anchor in mention_anchors(found, lookup.lookup, texts, lookup.trail).values():
            if in_title(m.key):
                continue
            if any(t in linked for t, _ in anchor.targets):
                continue
            eligible.append((m, anchor))
        shown = _kept_at_zero([m for m, _ in eligible]) if number == probe else set()
        for i, (m, anchor) in enumerate(eligible):
            if number == probe:
                kind = PROBE if i in shown else PROBE_OVERLAPPED
            else:
                kind = LINKED if links else UNLINKED
            # By its exact span: [[X]]ात where the editors wrote [[X|Xात]] is a negative here
            # though the backtest counts it right (``model.backtest.rendered``). As a positive
            # or left out it raised recall but cost precision at 0.7 (bnwiki, ltgwiki):
            # docs/model.md, "Links compared as they show".
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
                stem=bool(m.stem),
                guessed=m.guessed,
            ):
                yield features, int(target == truth), mention, kind
            mention += 1


def _kept_at_zero(mentions: list) -> set[int]:
    """Which mentions ``recommend.select`` keeps at threshold 0: longer first, no overlaps.

    The backtest judges calibration on what select returns, and at threshold 0 that hardly
    depends on the scores (only ties between overlapping mentions of equal length do, and
    which of two mentions with the same best target is kept): "Kingdom" inside a suggested
    "United Kingdom" is never shown, and such pieces are right far less often.
    """
    chosen: list = []
    kept = set()
    for i in sorted(range(len(mentions)), key=lambda i: (-mentions[i].length, mentions[i].start)):
        m = mentions[i]
        if not any(m.start < c.end and c.start < m.end for c in chosen):
            chosen.append(m)
            kept.add(i)
    return kept


def _trail_endings(
    corpus: Corpus, include: set[str] | None, workers: int = 1
) -> tuple[list[str], float]:
    """Endings seen trailing a link on at least MIN_TRAIL_PAGES of the training articles,
    and the share of the articles' links that trail an ending (of up to MAX_TRAIL letters)."""
    pages: Counter = Counter()
    trailed = links = 0
    with stage("trail endings"):
        for endings, n, of in corpus.map(
            lambda r: (sorted(set(r.get("e", ()))), len(r.get("e", ())), len(r["l"])),
            include, workers,
        ):
            pages.update(endings)
            trailed += n
            links += of
    share = round(trailed / links, 4) if links else 0.0
    return sorted(e for e, n in pages.items() if n >= MIN_TRAIL_PAGES), share


def pair_sample(titles: Collection[str], cap: int, seed: int) -> set[str] | None:
    """The articles training pairs come from: all (None) up to ``cap``, else the ``cap``
    with the lowest seeded title hash, a sample that does not depend on the dump's order."""
    if len(titles) <= cap:
        return None

    def rank(title: str) -> bytes:
        return hashlib.sha256(f"pairs:{seed}:{title}".encode()).digest()[:8]

    return set(heapq.nsmallest(cap, titles, key=rank))


def _fold_lines(
    corpus: Corpus, include: set[str] | None, settings: Settings, workers: int
) -> list[list[int]]:
    """The corpus lines of each fold's articles (of ``include``), in corpus order.

    The corpus has one line per article in ``corpus.articles``' order (extract writes them
    so); a corpus where that does not hold (a title twice in the dump) is read for its titles.
    """
    titles: Iterable[str] = corpus.articles
    if len(corpus.articles) != len(corpus.offsets) - 1:
        titles = list(corpus.map(lambda record: record["t"], None, workers))
    lines: list[list[int]] = [[] for _ in range(settings.folds)]
    for i, title in enumerate(titles):
        if include is None or title in include:
            lines[fold_of(title, settings.seed, settings.folds)].append(i)
    return lines


@dataclass(frozen=True)
class TrainingRows:
    """Cross-fitted training rows: features, labels, each row's fold and mention number, and
    its sentence's kind (``PROBE``, ``LINKED``, ``UNLINKED``: only probe mentions are the
    population the calibration is fitted for; a bool True means ``PROBE``)."""

    x: np.ndarray
    y: np.ndarray
    fold: np.ndarray
    mention: np.ndarray
    probe: np.ndarray


def best_per_mention(scores: np.ndarray, rows: TrainingRows) -> tuple[np.ndarray, ...]:
    """(score, label, fold) of each mention's best-scored candidate, as the recommender picks."""
    order = np.lexsort((-scores, rows.mention))
    first = np.ones(len(order), dtype=bool)
    first[1:] = rows.mention[order][1:] != rows.mention[order][:-1]
    pick = order[first]
    return scores[pick], rows.y[pick], rows.fold[pick]


def train_classifier(rows: TrainingRows, settings: Settings,
                     prior: priors.Prior | None = None):
    """The classifier on every row, its calibration, and metrics on held-out articles.

    Rows are cross-fitted (each fold's rows come from a model of the other folds), so one
    classifier per fold trained on the other folds' rows scores its fold's articles as
    unseen pages: those out-of-fold scores, over each mention's best candidate, fit the
    calibration map and give the manifest's metrics (the calibration's own error is measured
    the same way, one map per fold fitted on the other folds).

    With a ``prior`` (other wikis' rows, ``model.prior``) every fit also learns from those
    rows, weighted to a share of the wiki's own rows' weight (``prior.RATIOS``); the share is
    chosen with the tree count by the same out-of-fold log loss on the wiki's own held-out
    articles. The prior's rows are never held out, scored nor calibrated on.
    """
    import xgboost

    x, y = rows.x, rows.y
    if not len(y) or y.sum() == 0 or y.sum() == len(y):
        raise TrainingError(
            f"cannot train a classifier from {len(y)} pairs with {int(y.sum())} positives"
        )
    ablated = ablated_columns(settings.features, settings.ablate)
    x[:, ablated] = np.nan
    if prior is not None:
        px = prior.x
        if ablated:  # a copy only where columns are blanked: the prior is not ours to change
            px = px.copy()
            px[:, ablated] = np.nan
    ratios = priors.RATIOS if prior is not None else (0.0,)
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

    # A refit on every row ships, not the fold classifiers averaged: the average (tried, one
    # model of 5 x 150 trees, before the tree count was chosen) was no better calibrated nor
    # more precise on the shared dumps and costs five times the trees per recommendation
    # (docs/model.md).
    def matrix(own: np.ndarray | None, ratio: float):
        """The DMatrix of the wiki's rows (``own`` a mask, None for all) and, at a share
        ``ratio`` > 0, the prior's rows weighted so that they weigh ``ratio`` times them."""
        xs, ys = (x, y) if own is None else (x[own], y[own])
        if not ratio:
            return xgboost.DMatrix(xs, ys, missing=np.nan, nthread=1)
        weight = np.concatenate([np.ones(len(ys)),
                                 np.full(len(prior.y), ratio * len(ys) / len(prior.y))])
        return xgboost.DMatrix(np.concatenate([xs, px]), np.concatenate([ys, prior.y]),
                               weight=weight, missing=np.nan, nthread=1)

    def fit(job: tuple[int, float]) -> np.ndarray | bytearray | None:
        """Fold f's out-of-fold scores (f < folds), or the shipped classifier (f == folds),
        at a prior share. The fits are independent: they run in the workers (one thread
        each, as the classifier is the same bytes for any number of them), the rows
        inherited."""
        # nthread=1 on every DMatrix too: a process that forks after libgomp started its
        # thread team (the DMatrix default is every core) hangs in a forked child's first
        # OpenMP region; a one-thread team never waits for the missing threads.
        f, ratio = job
        if f == settings.folds:
            return xgboost.train(params, matrix(None, ratio), settings.rounds).save_raw("ubj")
        held = rows.fold == f
        rest = ~held
        if not (held.any() and 0 < y[rest].sum() < rest.sum()):
            return None
        fitted = xgboost.train(params, matrix(rest, ratio), settings.rounds)
        held_rows = xgboost.DMatrix(x[held], missing=np.nan, nthread=1)
        return np.stack([fitted.predict(held_rows, iteration_range=(0, k)) for k in grid])

    grid = tuple(k for k in ROUND_GRID if k < settings.rounds) + (settings.rounds,) \
        if settings.choose_rounds else (settings.rounds,)
    by_rounds = {r: np.full((len(grid), len(y)), np.nan) for r in ratios}
    # Without a prior the refit comes first: the longest fit (every row) is not left for
    # last. With one, its share is chosen first and the refit made at it.
    order = ([(settings.folds, 0.0)] if prior is None else []) + [
        (f, r) for r in ratios for f in range(settings.folds)
    ]
    workers = min(max(1, settings.workers), len(order))
    booster = None
    for (f, r), got in zip(order, ordered_map(fit, order, workers, batch=1), strict=True):
        if f == settings.folds:
            booster = xgboost.Booster(model_file=got)
        elif got is not None:
            by_rounds[r][:, rows.fold == f] = got
    # How many trees to ship (and the prior's share): the count whose out-of-fold scores
    # predict the held-out articles' rows best (log loss over every row, the classifier's
    # own objective; ties to fewer trees, and to the smaller share). A small wiki's few
    # thousand rows are fitted to noise long before a large one's, and one fixed count
    # cannot suit both; the first k trees of the refit are exactly a k-round refit, so
    # nothing is trained twice.
    seen = ~np.isnan(by_rounds[0.0][0])
    oof_losses = {(r, i): log_loss(by_rounds[r][i][seen], y[seen])
                  for r in ratios for i in range(len(grid))}
    ratio, pick = min(oof_losses, key=lambda k: (round(oof_losses[k], 6), k[0], grid[k[1]])) \
        if seen.any() else (0.0, len(grid) - 1)
    round_losses = [oof_losses[(ratio, i)] for i in range(len(grid))]
    if booster is None:
        booster = xgboost.Booster(model_file=fit((settings.folds, ratio)))
    if grid[pick] < settings.rounds:
        booster = booster[: grid[pick]]
    oof = by_rounds[ratio][pick]
    # Calibrated on the mentions of each article's probe sentence (its first with links),
    # where SPEC §2's backtest judges "right". Elsewhere editors link less densely: a lead
    # sentence's mentions are right about twice as often as those of all linked sentences
    # (bnwiki 37 % vs 20 %), and a sentence without links was not being linked at all.
    scored = ~np.isnan(oof) & (rows.probe == PROBE)
    kept = TrainingRows(
        x[scored], y[scored], rows.fold[scored], rows.mention[scored], rows.probe[scored]
    )
    score, label, fold = best_per_mention(oof[scored], kept)
    # Platt (or beta, where Settings.calibration names it) or isotonic (>= 1000 mentions),
    # whichever predicts the held-out folds best (log loss, each fold's map fitted on the
    # other folds): model/calibration.py choose_calibration.
    method, calibration, calibrated, losses = choose_calibration(
        score, label, fold, settings.folds, tuple(settings.calibration.split(","))
    )
    metrics = {
        "heldout": f"articles, {settings.folds} folds",
        "rounds": grid[pick],
        "rounds_log_loss": {str(k): round(v, 6) for k, v in zip(grid, round_losses, strict=True)},
        **({"prior": {
            "wikis": list(prior.wikis),
            "sha256": list(prior.checksums),  # of each model's prior.rows.npz
            "rows": len(prior.y),
            "ratio": ratio,
            # each share's best out-of-fold log loss over the tree counts
            "log_loss": {str(r): round(min(oof_losses[(r, i)] for i in range(len(grid))), 6)
                         for r in ratios},
        }} if prior is not None else {}),
        "calibration": method,
        "calibration_log_loss": losses,  # each candidate method's, cross-validated
        "auc": round(_auc(kept.y, oof[scored]), 4),
        "mentions": len(score),
        "best_right": round(float(label.mean()), 4) if len(label) else math.nan,
        "log_loss_raw": round(log_loss(score, label), 4),
        "log_loss": round(log_loss(calibrated, label), 4),
        "ece_raw": round(ece(score, label), 4),
        "ece": round(ece(calibrated, label), 4),
    }
    # The runner's `minimum_link_score: auto` (docs/runner.md): judged on the same held-out
    # mentions with each fold's calibration fitted on the other folds, so the figure behind
    # it is out of sample twice over (classifier and calibration).
    suggestion = suggest_minimum_link_score(calibrated, label)
    metrics["suggested_minimum_link_score"] = suggestion["minimum_link_score"]
    metrics["suggestion"] = suggestion
    return booster, calibration, metrics


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
    return _sentence_rules(corpus.records(include), corpus.site.language)


def _sentence_rules(records: Iterable[dict], language: str) -> frozenset[str]:
    texts = (text for record in records for text in record["s"])
    learnt = learn_abbreviations(progress(texts, "abbreviations", unit="texts"))
    return learnt | listed_abbreviations(language)


def _spill(array: np.ndarray, directory: Path) -> Path:
    """``array`` written to a new .npy file in ``directory`` (the corpus's work directory,
    removed with it if training fails), so training does not hold it until the model is
    written: the basis is 200 bytes a node, as large as the vectors."""
    fd, name = tempfile.mkstemp(prefix="basis-", suffix=".npy", dir=directory)
    with open(fd, "wb") as f:
        np.save(f, array)
    return Path(name)


def load_prior(settings: Settings, wiki: str) -> priors.Prior | None:
    """``settings.prior``'s rows for a model of ``wiki`` (None without one), checked."""
    return priors.load(settings.prior, wiki=wiki, features=settings.features,
                       columns=len(FEATURE_SETS[settings.features]))


def build_model(
    corpus: Corpus,
    out: Path,
    settings: Settings,
    include: set[str] | None = None,
    prior: priors.Prior | None = None,
) -> dict:
    """Anchors, vectors and classifier from the corpus (optionally a subset of its articles).

    ``prior``: ``settings.prior`` already loaded (``train_model`` reads it before the dump);
    otherwise it is loaded here."""
    start = time.monotonic()
    if settings.features not in FEATURE_SETS:
        raise TrainingError(f"unknown feature set {settings.features!r}")
    ablated_columns(settings.features, settings.ablate)  # an unknown name fails before work
    if settings.vectors not in ("projection", "svd"):
        raise TrainingError(f"unknown vectors {settings.vectors!r} (projection or svd)")
    if prior is None:  # read before any work: a prior that cannot be used fails at once
        prior = load_prior(settings, corpus.site.dbname)
    complete = settings.complete
    if complete is None:
        complete = corpus.resolve_ratio >= COMPLETE_RESOLVE_RATIO
    workers = max(1, settings.workers)
    language = corpus.site.language
    trail = link_trail(language)
    # The stages that need no sentence rules come first: with workers, the rules are being
    # learnt beside them (Corpus.sentence_rules); the anchors' second pass waits for them.
    graph = link_graph(corpus, include, workers)
    with stage("vectors"):
        entities, vectors, embedding = embed(graph, settings.seed)
        basis = lengths = None
        if settings.vectors == "projection":
            entities, vectors, lengths = whole_projection(embedding)
            basis = _spill(embedding.basis.astype(np.float32), corpus.path.parent)
        if settings.fold_vectors != "projection":
            embedding = None  # not needed: each fold task runs its own SVD
    endings, trailed = _trail_endings(corpus, include, workers) if trail else ([], 0.0)
    # Trails are guessed beyond the learnt endings only where editors trail links at all.
    guess_trails = trailed >= MIN_TRAILED_SHARE
    rules: list[frozenset[str]] = []

    def sentence_rules() -> frozenset[str]:
        if not rules:
            with stage("abbreviations"):
                learning = corpus.sentence_rules if include is None else None
                if learning is not None:
                    corpus.sentence_rules = None  # taken: its process is reaped once
                rules.append(learning.result() if learning is not None
                             else learn_sentence_rules(corpus, include))
        return rules[0]

    counts = count_anchors(
        corpus, include, complete, settings.seed, settings.folds, sentence_rules,
        settings.stemmer, workers, link_titles=settings.link_titles,
    )
    abbreviations = sentence_rules()
    with stage("anchor dictionary"):
        anchors = anchors_from(counts, None, settings)
        if not anchors:
            raise TrainingError("no anchors survived the filters; the dump is too small")
        keys = anchors.filter(language)  # and the prefixes every fold's filter masks
    # Cross-fitting: a fold's training rows see anchors and vectors of the other folds only,
    # so no row's features contain the link it is labelled with.
    members: list[set[str]] = [set() for _ in range(settings.folds)]
    for title in graph:
        members[fold_of(title, settings.seed, settings.folds)].add(title)
    sample = pair_sample(graph, settings.max_pair_articles, settings.seed)
    pair_include = include if sample is None else sample  # the sample is drawn from include
    if sample is not None:
        log.info("training pairs from a sample", extra={"articles": len(sample)})
    # Each fold's pair articles by their line in the corpus file, in corpus order.
    lines = _fold_lines(corpus, pair_include, settings, workers)

    def fold_rows(f: int) -> tuple[list[tuple[int, np.ndarray, np.ndarray, np.ndarray,
                                              np.ndarray]], float, tuple[float, float]]:
        """Fold f's model (anchors and vectors of the other folds) and the training rows of
        its articles, each with its corpus line; and the CPU seconds the model took and the
        private memory (MB) its vectors, then the whole model, added to its process.

        One task per fold, in one worker: the fold model is built where it is used and never
        crosses a pipe (five of them pickled back and inherited by the pair workers cost
        more CPU than building them), and a worker holds one fold model at a time."""
        started, before = time.process_time(), _private_bytes()
        if embedding is not None:
            fold_entities, fold_vectors = project_fold(embedding, members[f])
        else:
            fold_entities, fold_vectors = build_vectors(graph, settings.seed, exclude=members[f])
        with_vectors = (_private_bytes() - before) / 2**20
        fold_anchors = anchors_from(counts, f, settings)
        lookup = _Lookup(
            fold_anchors, fold_entities, fold_vectors, settings.features,
            fold_anchors.filter(language), trail, endings, abbreviations,
            Stemmer(counts.stemmer), guess_trails,
        )
        built = time.process_time() - started
        grown = (_private_bytes() - before) / 2**20  # the fold model's own memory
        out = []
        with open(corpus.path, "rb") as f_in:
            for i in lines[f]:
                f_in.seek(corpus.offsets[i])
                record = json.loads(f_in.read(corpus.offsets[i + 1] - corpus.offsets[i]))
                got = list(page_pairs(lookup, record, language))
                width = len(got[0][0]) if got else 0
                out.append((
                    i,
                    np.asarray([g[0] for g in got], dtype=np.float32).reshape(len(got), width),
                    np.asarray([g[1] for g in got], dtype=np.float32),
                    np.asarray([g[2] for g in got], dtype=np.int64),
                    np.asarray([g[3] for g in got], dtype=np.int8),  # UNLINKED, PROBE, ...
                ))
        return out, built, (with_vectors, grown)

    # The rows arrive as one small array per article and are joined once, in corpus order
    # (the folds' lists merged by line): no Python list of rows (a float object per
    # feature) ever holds them.
    with stage("fold models and pairs"):
        folds = list(progress(ordered_map(fold_rows, range(settings.folds), workers, batch=1),
                              "fold models and pairs", total=settings.folds, unit="folds"))
        annotate(fold_models_cpu_s=round(sum(built for _, built, _ in folds), 3),
                 fold_vectors_private_mb=round(max(grown[0] for *_, grown in folds), 1),
                 fold_model_private_mb=round(max(grown[1] for *_, grown in folds), 1))
        fold_of_line = {i: f for f, (rows, *_) in enumerate(folds) for i, *_ in rows}
        merged = heapq.merge(*(rows for rows, *_ in folds), key=lambda r: r[0])
        xs, ys, fs, ms, ps = [], [], [], [], []
        base = 0
        for i, x, y, mention, probe in merged:
            if not len(y):
                continue
            xs.append(x)
            ys.append(y)
            fs.append(np.full(len(y), fold_of_line[i], dtype=np.int64))
            ms.append(mention + base)
            ps.append(probe)
            base += int(mention.max()) + 1
        del folds, merged, fold_of_line
    graph, members, embedding = LinkGraph(), [], None  # free the graph
    if not xs:
        raise TrainingError("cannot train a classifier from 0 pairs with 0 positives")
    training = TrainingRows(
        np.concatenate(xs), np.concatenate(ys), np.concatenate(fs), np.concatenate(ms),
        np.concatenate(ps),
    )
    del xs, ys, fs, ms, ps
    labels = training.y
    with stage("classifier"):
        booster, calibration, metrics = train_classifier(training, settings, prior)
    del prior

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
                        a.origin_json(),
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
        if basis is not None:
            shutil.move(basis, tmp / VECTOR_BASIS)
            np.save(tmp / VECTOR_LENGTHS, lengths)
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
        # Its own rows (never its prior's) for other wikis' training: model/prior.py.
        priors.save(tmp / priors.FILE, training.x, training.y, wiki=corpus.site.dbname,
                    features=settings.features, seed=settings.seed)
        calibration.save(tmp / CALIBRATION_FILE)
        # The calibration is part of the classifier: one checksum for both keeps the reference
        # format's dataset_checksums keys.
        checksums["model"] = classifier_checksum(tmp)
        bloom = Bloom.filled(keys.members(), len(keys))
        np.save(tmp / "anchors.bloom.npy", bloom.bits)
        trained = corpus.articles if include is None else include
        pages = Bloom.filled(trained, len(trained), TRAINED_PAGES_ERROR)
        np.save(tmp / PAGES_BLOOM, pages.bits)
        manifest = {
            "wiki": corpus.site.dbname,
            "language": corpus.site.language,
            "link_trail": trail,
            "link_trail_endings": endings,
            # Share of the training articles' links that trail an ending, and whether words
            # nothing else matched are also cut before other rests the trail takes
            # (``model.text.page_mentions``' ``guess_trails``; absent in older models).
            "link_trail_share": trailed,
            "link_trail_guesses": guess_trails,
            "stemmer": counts.stemmer,
            "dump_date": corpus.dump_date,
            "complete": complete,
            "features": settings.features,
            "vectors": settings.vectors,
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
                "title_anchors": sum(1 for a in anchors.values() if a.titles or a.redirects),
                "stem_classes": sum(1 for k in anchors if k.startswith(STEM)),
            },
            "bloom": {
                "bytes": len(bloom.bits),
                "hashes": bloom.hashes,
                "prefixes": len(keys),
                "scheme": bloom.scheme,
                "whole_keys": True,
            },
            # Which articles it was trained on: their anchor statistics are read one page out
            # when they are scored (``Anchor.without_page``).
            "trained_pages": {
                "count": len(trained),
                "bytes": len(pages.bits),
                "hashes": pages.hashes,
                "scheme": pages.scheme,
            },
            "checksums": checksums,
            "training": metrics,
            "code_version": APPLICATION_VERSION,
            "seconds": round(time.monotonic() - start, 2),
            # How this run went (not what the model is): differs between runs and --workers.
            "timing": {"workers": workers, "stages": recorded()},
        }
        # sha256 of every file the model is read from: the runner verifies them (preflight).
        manifest["files"] = {f.name: file_checksum(f) for f in sorted(tmp.iterdir())}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        checkpoint()  # a Ctrl-C whose exception was lost still installs nothing
        out = install(tmp, out)  # the model appears whole or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("model written", extra={"out": str(out), "anchors": len(anchors)})
    return manifest


def train_model(
    dump_path: str | Path | Sequence[str | Path],
    out: str | Path,
    settings: Settings | None = None,
    wiki: str | None = None,
) -> dict:
    """Train one wiki's model from its dump (one file, or its part files: ``dumps.parts``)
    into ``out`` (replaced atomically)."""
    settings = settings or Settings()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = dumps.parts(dump_path)
    site = dumps.site_info(paths[0])
    if wiki and wiki != site.dbname:
        raise TrainingError(f"--wiki {wiki} but the dump is of {site.dbname}")
    prior = load_prior(settings, site.dbname)  # a prior that cannot be used fails before
    with tempfile.TemporaryDirectory(prefix="addlink-train-") as work, recording():
        corpus = extract(paths, Path(work), settings.workers, sentence_rules=True)
        return build_model(corpus, out, settings, prior=prior)

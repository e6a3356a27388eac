"""On-disk lookups over one wiki's datasets, so a recommending process stays small.

A model directory holds ``manifest.json``, the classifier (``model.json``) and its score
calibration (``calibration.json``), the entity vectors (``vectors.npy``, memory-mapped) and a
Bloom filter of anchor keys (``anchors.bloom``, memory-mapped) and one of the articles it was
trained on (``pages.bloom``), plus the keyed datasets
(anchors, redirects, page ids, entity index) either as SQLite files in the same directory or
as MySQL tables (after ``python -m model load``). The Bloom filter answers "surely not an
anchor" for most n-grams without touching the database, which keeps lookups per page cheap
whatever the wiki's size.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import numpy as np

from model.calibration import FILE as CALIBRATION_FILE
from model.calibration import Calibration
from model.features import FEATURE_SETS
from model.stems import Stemmer, stemmer_for
from model.text import WHOLE, cut_stems

# Dataset name -> (file, table, key column, value columns). The names are the reference
# system's, so `meta.dataset_checksums` keeps its keys ("w2vfiltered" holds the entity index).
DATASETS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "anchors": (
        "anchors.sqlite",
        "anchors",
        "anchor",
        ("link_prob", "total", "kurtosis", "targets", "origin"),
    ),
    "redirects": ("redirects.sqlite", "redirects", "title", ("target",)),
    "pageids": ("pageids.sqlite", "pageids", "title", ("page_id",)),
    "w2vfiltered": ("entities.sqlite", "entities", "title", ("vector_row", "indegree")),
}
SENTENCES_FILE = "sentences.json"  # the splitter's parameters learnt in training
PAGES_BLOOM = "pages.bloom.npy"  # the titles of the articles the model was trained on
TRAINED_PAGES_ERROR = 1e-4  # its false-positive rate: a page taken for a trained one
# The shipped vectors' basis (V of ``A V``) and their rows' lengths before they were made
# unit: with them a trained page's own links are left out of its context (projected models).
VECTOR_BASIS = "vectors.basis.npy"
VECTOR_LENGTHS = "vectors.lengths.npy"
CHUNK = 500  # keys per IN (...) query: below SQLite's and MySQL's parameter limits


class DatasetError(RuntimeError):
    """A model directory or dataset store is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class Anchor:
    """One anchor text: its candidate targets (most frequent first) and its statistics."""

    key: str
    targets: tuple[tuple[str, int], ...]  # (target title, distinct linking pages)
    total: int  # distinct (page, target) link occurrences over all targets
    link_prob: float  # pages linking it / pages where it appears at all
    kurtosis: float  # of the target counts: how peaked the choice of target is
    unlinked: int = 0  # pages where the text appears but is not linked
    titles: tuple[str, ...] = ()  # targets the text is the title of (qualifier removed)
    redirects: tuple[str, ...] = ()  # targets the text is a redirect title of
    # A stem class (key starting with ``model.text.STEM``): the exact keys filed under it.
    members: tuple[str, ...] = ()

    def without_page(self) -> Anchor:
        """The statistics as if one page showing the text unlinked had not been counted.

        A refresh scores the wiki's own articles, and the model's statistics include each
        of them: a text that page shows unlinked counts once more in ``unlinked`` and the
        denominator of ``link_prob`` than it would for a page the model never saw. The
        classifier learnt from rows whose statistics left their page out (each fold's
        dictionary is the other folds'), and its calibration was fitted on such rows, so a
        trained page is scored as what it was then: one page out. (Measured on ukwiki's
        test half scored by a whole-dump model: kept links at 0.7 per page 0.58 with the
        page counted, 1.91 without; docs/model.md, "Current main: a trained page read one
        page out".) The linking pages are recovered from the two stored figures
        (``link_prob`` is pages / (pages + unlinked), to 6 decimals). Only an unlinked
        appearance is taken out: a text the page links is never suggested on it (SPEC §2's
        skip rules).
        """
        if self.unlinked < 1:
            return self
        p = self.link_prob
        pages = round(p * self.unlinked / (1.0 - p)) if p < 1.0 else 0
        unlinked = self.unlinked - 1
        seen = pages + unlinked
        return replace(self, unlinked=unlinked, link_prob=round(pages / seen, 6) if seen else 0.0)

    def origin_json(self) -> str:
        """The ``origin`` column: where the candidates came from besides links."""
        origin: dict = {"u": self.unlinked, "t": self.titles, "r": self.redirects}
        if self.members:
            origin["m"] = self.members
        return json.dumps(origin, ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def from_row(key: str, prob: float, total: int, kurt: float, targets: str, origin: str):
        o = json.loads(origin)
        return Anchor(
            key,
            tuple(map(tuple, json.loads(targets))),
            total,
            prob,
            kurt,
            o["u"],
            tuple(o["t"]),
            tuple(o["r"]),
            tuple(o.get("m", ())),
        )


# ---------------------------------------------------------------------------- checksums


def rows_checksum(rows: Iterable[Sequence]) -> str:
    """sha256 over rows in key order: identical content gives identical checksums on any store."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(list(row), ensure_ascii=False, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


def file_checksum(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def classifier_checksum(directory: Path) -> str:
    """The ``model`` dataset checksum: the classifier and its calibration map as one, so
    ``meta.dataset_checksums`` keeps the reference format's keys. Training and the runner's
    preflight both compute it here."""
    return rows_checksum(
        [[file_checksum(directory / "model.json"), file_checksum(directory / CALIBRATION_FILE)]]
    )


# ---------------------------------------------------------------------------- bloom filter


_MASK = (1 << 64) - 1
_MULTIPLIER = 0x9E3779B97F4A7C15  # odd 64-bit constant of the polynomial hash
_MAX_KEY = 4096  # code points hashed per key; longer keys are cut (only here)


def _powers(base: int) -> np.ndarray:
    out, x = [], 1
    for _ in range(_MAX_KEY + 1):
        out.append(x)
        x = (x * base) & _MASK
    return np.asarray(out, dtype=np.uint64)


_POWERS = _powers(_MULTIPLIER)
_INVERSE_POWERS = _powers(pow(_MULTIPLIER, -1, 1 << 64))  # the multiplier is odd: invertible


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place: it spreads the polynomial over all 64 bits."""
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def poly_hashes(keys: Sequence[str], shift: int = 1) -> np.ndarray:
    """A 64-bit hash per key (two 32-bit halves), computed for all keys at once in numpy.

    The recommender probes the filter tens of thousands of times per page (every n-gram
    growing towards an anchor, every stem before a trail); hashing them all in one
    vectorised pass costs a fraction of one ``hashlib`` call per key. Each code point is
    hashed as itself + ``shift``: with 0 (the "poly64" scheme) a leading NUL adds nothing to
    the polynomial, so ``WHOLE`` + key hashed like the bare key and every prefix of an anchor
    passed the whole-key probe too (four in five of the recommender's mentions were such
    prefixes, each looked up in the database for nothing).
    """
    text = "\x03".join(keys) + "\x03"  # a terminator: "ab"+"c" and "a"+"bc" differ
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if shift:
        codes += np.uint64(shift)
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys)) + 1
    stops = np.cumsum(lengths)
    # Exponent of each code point: its distance from its key's end (Horner's rule).
    exponent = np.repeat(stops - 1, lengths) - np.arange(len(codes))
    np.minimum(exponent, _MAX_KEY, out=exponent)
    with np.errstate(over="ignore"):
        x = np.add.reduceat(codes * _POWERS[exponent], stops - lengths)
    return _mix(x)


def prefix_hashes(
    texts: Sequence[str], cuts: Sequence[int], lead: str = "", shift: int = 1
) -> np.ndarray | None:
    """``poly_hashes`` of ``lead + text[:-t]`` for t = 1 .. ``cuts[x]`` of each text, in that
    order, without building those strings: one pass over each text's code points.

    The polynomial of a prefix of length k is B**k times the prefix sum of c_i * B**-i, so
    every prefix of a text comes from one cumulative sum (the recommender probes up to five
    stems of every word no mention ends at: ``model.text``'s guessed trails). None when a
    prefix would exceed the code points ``poly_hashes`` hashes (it cuts longer keys).
    """
    full = [lead + t for t in texts]
    lengths = np.fromiter(map(len, full), dtype=np.int64, count=len(full))
    if len(full) == 0 or int(lengths.max()) >= _MAX_KEY:
        return None
    codes = np.frombuffer("".join(full).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if shift:
        codes += np.uint64(shift)
    starts = np.cumsum(lengths) - lengths
    local = np.arange(len(codes)) - np.repeat(starts, lengths)
    with np.errstate(over="ignore"):
        sums = np.cumsum(codes * _INVERSE_POWERS[local])  # wraps modulo 2**64, as wanted
        counts = np.asarray(cuts, dtype=np.int64)
        t = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        k = np.repeat(lengths, counts) - t  # each prefix's length, lead included
        start = np.repeat(starts, counts)
        last = start + k - 1
        before = start - 1
        s = sums[last] - np.where(before >= 0, sums[np.maximum(before, 0)], np.uint64(0))
        x = _POWERS[k] * s + np.uint64(3 + shift)  # 3: the terminator poly_hashes appends
    return _mix(x)


class Bloom:
    """A Bloom filter over anchor keys; false positives only cost one exact lookup.

    Three hash schemes, each read as it was written: "blake2b" (models trained before the
    vectorised scheme), "poly64" (``poly_hashes`` with shift 0: whole-key marks are lost,
    see there; still correct, since every hit is looked up exactly) and "poly64b" (shift 1,
    what training writes now).
    """

    def __init__(self, bits: np.ndarray, hashes: int, scheme: str = "poly64b"):
        if scheme not in ("blake2b", "poly64", "poly64b"):
            raise ValueError(f"unknown Bloom filter hash scheme {scheme!r}")
        self.bits, self.hashes, self.size = bits, hashes, len(bits) * 8
        self.scheme = scheme

    @staticmethod
    def sized(n: int, error: float = 0.01) -> tuple[int, int]:
        size = max(64, int(-n * math.log(error) / (math.log(2) ** 2)))
        return (size + 7) // 8, max(1, round(size / max(n, 1) * math.log(2)))

    @staticmethod
    def filled(keys: Iterable[str], n: int, error: float = 0.01) -> Bloom:
        """A filter sized for ``n`` keys at false-positive rate ``error``, with ``keys`` added
        in batches (the same bits for any order and batches, so nothing needs sorting)."""
        size, hashes = Bloom.sized(n, error)
        bloom = Bloom(np.zeros(size, dtype=np.uint8), hashes)
        keys = iter(keys)
        while batch := list(islice(keys, 1 << 20)):
            bloom.add(batch)
        return bloom

    def _spread(self, h: np.ndarray) -> np.ndarray:
        """Each 64-bit hash's ``hashes`` bit positions (double hashing over its halves)."""
        steps = np.arange(self.hashes, dtype=np.uint64)
        low, high = h & np.uint64(0xFFFFFFFF), h >> np.uint64(32)
        return (low[:, None] + steps * (high[:, None] | np.uint64(1))) % np.uint64(self.size)

    def _positions(self, keys: Sequence[str]) -> np.ndarray:
        if self.scheme in ("poly64", "poly64b"):
            return self._spread(poly_hashes(keys, 1 if self.scheme == "poly64b" else 0))
        digests = (
            np.frombuffer(
                b"".join(hashlib.blake2b(k.encode(), digest_size=8).digest() for k in keys),
                dtype="<u4",
            )
            .reshape(-1, 2)
            .astype(np.uint64)
        )
        steps = np.arange(self.hashes, dtype=np.uint64)
        return (digests[:, :1] + steps * (digests[:, 1:] | 1)) % np.uint64(self.size)

    def add(self, keys: Sequence[str]) -> None:
        pos = self._positions(keys).ravel()
        np.bitwise_or.at(self.bits, pos >> 3, (1 << (pos & 7)).astype(np.uint8))

    def contains(self, keys: Sequence[str]) -> np.ndarray:
        if not keys:
            return np.zeros(0, dtype=bool)
        return self._hits(self._positions(keys))

    def contains_cut(self, texts: Sequence[str], cuts: Sequence[int], lead: str = "") -> np.ndarray:
        """``contains`` of ``lead + text[:-t]`` for t = 1 .. ``cuts[x]`` of each text, in that
        order; the polynomial schemes hash them without building the strings."""
        h = None
        if self.scheme in ("poly64", "poly64b") and sum(cuts):
            h = prefix_hashes(texts, cuts, lead, 1 if self.scheme == "poly64b" else 0)
        if h is None:
            return self.contains(cut_stems(texts, cuts, lead))
        return self._hits(self._spread(h))

    def _hits(self, pos: np.ndarray) -> np.ndarray:
        hit = (self.bits[pos >> 3] >> (pos & 7).astype(np.uint8)) & 1
        return hit.all(axis=1)


# ---------------------------------------------------------------------------- stores


class DatasetStore(Protocol):
    """Keyed lookups of one wiki's datasets; two implementations: SQLite files and MySQL."""

    def get(self, dataset: str, keys: Sequence[str]) -> dict[str, tuple]: ...

    def rows(self, dataset: str) -> Iterator[tuple]: ...

    def close(self) -> None: ...


def _chunks(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(keys), CHUNK):
        yield keys[i : i + CHUNK]


class SqliteStore:
    """The embedded default: one read-only SQLite file per dataset in the model directory."""

    def __init__(self, directory: Path):
        self.conns: dict[str, sqlite3.Connection] = {}
        for name, (file, *_rest) in DATASETS.items():
            path = directory / file
            if not path.exists():
                raise DatasetError(f"dataset {name!r} missing: {path}")
            conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
            conn.execute("PRAGMA cache_size = -8000")  # 8 MB page cache per dataset at most
            self.conns[name] = conn

    def get(self, dataset: str, keys: Sequence[str]) -> dict[str, tuple]:
        _, table, key, values = DATASETS[dataset]
        out: dict[str, tuple] = {}
        conn = self.conns[dataset]
        for chunk in _chunks(list(keys)):
            sql = (
                f"SELECT {key}, {', '.join(values)} FROM {table} "
                f"WHERE {key} IN ({','.join('?' * len(chunk))})"
            )
            for row in conn.execute(sql, chunk):
                out[row[0]] = row[1:]
        return out

    def rows(self, dataset: str) -> Iterator[tuple]:
        _, table, key, values = DATASETS[dataset]
        yield from self.conns[dataset].execute(
            f"SELECT {key}, {', '.join(values)} FROM {table} ORDER BY {key}"
        )

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()


def mysql_connect(url: str):
    """A pymysql connection from ``mysql://user[:password]@host[:port]/db``."""
    import pymysql

    u = urlparse(url)
    if u.scheme != "mysql" or not u.path.strip("/"):
        raise DatasetError(f"not a mysql://user@host/db URL: {url!r}")
    return pymysql.connect(
        host=u.hostname or "127.0.0.1",
        port=u.port or 3306,
        user=unquote(u.username or "root"),
        password=unquote(u.password or ""),
        database=u.path.strip("/"),
        charset="utf8mb4",
        autocommit=True,
        # Deadlines: a partitioned server fails a lookup instead of hanging a worker.
        connect_timeout=10,
        read_timeout=60,
        write_timeout=60,
    )


def mysql_table(wiki: str, dataset: str) -> str:
    if not wiki.replace("_", "").isalnum():
        raise DatasetError(f"invalid wiki name {wiki!r}")
    return f"addlink_{wiki}_{DATASETS[dataset][1]}"


class MysqlStore:
    """Production: the datasets as MySQL tables ``addlink_<wiki>_<dataset>``."""

    def __init__(self, url: str, wiki: str):
        self.conn, self.wiki = mysql_connect(url), wiki

    def get(self, dataset: str, keys: Sequence[str]) -> dict[str, tuple]:
        _, _, key, values = DATASETS[dataset]
        table = mysql_table(self.wiki, dataset)
        out: dict[str, tuple] = {}
        with self.conn.cursor() as cur:
            for chunk in _chunks(list(keys)):
                cur.execute(
                    f"SELECT {key}, {', '.join(values)} FROM {table} "
                    f"WHERE {key} IN ({','.join(['%s'] * len(chunk))})",
                    [k.encode() for k in chunk],
                )
                for row in cur.fetchall():
                    out[row[0].decode()] = tuple(
                        v.decode() if isinstance(v, bytes) else v for v in row[1:]
                    )
        return out

    def rows(self, dataset: str) -> Iterator[tuple]:
        _, _, key, values = DATASETS[dataset]
        import pymysql.cursors

        # An unbuffered cursor streams the rows: a dataset never sits whole in memory.
        with self.conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(
                f"SELECT {key}, {', '.join(values)} FROM {mysql_table(self.wiki, dataset)} "
                f"ORDER BY {key}"
            )
            for row in cur:
                yield tuple(v.decode() if isinstance(v, bytes) else v for v in row)

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------- the model


class Model:
    """One wiki's model: classifier, vectors and dataset lookups, opened once per process."""

    def __init__(self, directory: Path, store: DatasetStore):
        import xgboost

        self.directory = directory
        self.manifest = json.loads((directory / "manifest.json").read_text())
        self.wiki: str = self.manifest["wiki"]
        self.language: str = self.manifest["language"]
        self.checksums: dict[str, str] = self.manifest["checksums"]
        self.features: str = self.manifest["features"]
        self.ablate: tuple[str, ...] = tuple(self.manifest.get("ablate", ()))  # backtests only
        self.namespaces = frozenset(self.manifest["namespaces"])
        # Abbreviations learnt in training: a period after one does not end a sentence.
        sentences = directory / SENTENCES_FILE
        self.abbreviations: frozenset[str] = (
            frozenset(json.loads(sentences.read_text(encoding="utf-8"))["abbreviations"])
            if sentences.is_file()
            else frozenset()
        )
        # The language's MediaWiki link trail, as training recorded it (None: no trails).
        self.trail: str | None = self.manifest.get("link_trail")
        self.trail_endings = frozenset(self.manifest.get("link_trail_endings", ()))
        self.guess_trails: bool = bool(self.manifest.get("link_trail_guesses"))
        # How training stemmed anchor keys (None/absent: no stem classes in this model).
        self.stemmer: Stemmer = stemmer_for(self.manifest.get("stemmer"))
        self.store = store
        self.vectors = np.load(directory / "vectors.npy", mmap_mode="r")
        # Projected vectors come with their basis (models before them, and "svd": none).
        self.basis, self.lengths = (
            (np.load(directory / VECTOR_BASIS, mmap_mode="r"),
             np.load(directory / VECTOR_LENGTHS, mmap_mode="r"))
            if self.manifest.get("vectors") == "projection" else (None, None)
        )
        bloom = self.manifest["bloom"]
        self.whole_keys: bool = bloom.get("whole_keys", False)
        self.bloom = Bloom(
            np.load(directory / "anchors.bloom.npy", mmap_mode="r"),
            bloom["hashes"],
            bloom.get("scheme", "blake2b"),
        )
        # The articles it was trained on (absent from older models: no page counts as one).
        pages = self.manifest.get("trained_pages")
        self.trained = (
            Bloom(np.load(directory / PAGES_BLOOM, mmap_mode="r"), pages["hashes"],
                  pages["scheme"])
            if pages else None
        )
        self.booster = xgboost.Booster(params={"nthread": 1})
        self.booster.load_model(str(directory / "model.json"))
        # A model trained before a feature was added (or removed) would fail on every page
        # with xgboost's shape mismatch; refused here, at open, with what to do.
        columns = FEATURE_SETS.get(self.features, ())
        if self.booster.num_features() != len(columns):
            raise DatasetError(
                f"{directory}: its classifier takes {self.booster.num_features()} features "
                f"where this version's {self.features!r} set has {len(columns)} (trained by "
                "another version): retrain it"
            )
        path = directory / CALIBRATION_FILE
        if not path.is_file():
            raise DatasetError(f"{path} missing: the model predates calibration; retrain it")
        try:
            self.calibration = Calibration.load(path)
        except (ValueError, KeyError) as e:
            raise DatasetError(f"{path}: unreadable calibration ({e})") from e

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Raw classifier scores -> calibrated probabilities (the stored monotone map)."""
        return self.calibration(raw)

    def anchors(self, keys: Iterable[str]) -> dict[str, Anchor]:
        keys = list(dict.fromkeys(keys))
        # A filter that also marks whole keys (``model.text.WHOLE``) drops the mere prefixes
        # of anchors the n-gram walk passes through before any database lookup.
        probes = [WHOLE + k for k in keys] if self.whole_keys else keys
        maybe = [k for k, hit in zip(keys, self.bloom.contains(probes), strict=True) if hit]
        return {k: Anchor.from_row(k, *v) for k, v in self.store.get("anchors", maybe).items()}

    def trained_on(self, title: str) -> bool:
        """Whether the article was one of those the model was trained on (a Bloom filter:
        one title in 10,000 it never saw is taken for one, ``TRAINED_PAGES_ERROR``)."""
        return self.trained is not None and bool(self.trained.contains([title])[0])

    def stem_keys(self, keys: Iterable[str]) -> dict[str, str]:
        """Key -> its stem-class key, for keys that have one (``model.stems``)."""
        if not self.stemmer.enabled:
            return {}
        out = {k: self.stemmer.key(k, self.language) for k in keys}
        return {k: v for k, v in out.items() if v}

    def resolve(self, titles: Iterable[str]) -> dict[str, str]:
        """Title -> the article it redirects to (titles that are no redirect map to themselves)."""
        titles = list(dict.fromkeys(titles))
        found = self.store.get("redirects", titles)
        return {t: found[t][0] if t in found else t for t in titles}

    def entities(self, titles: Iterable[str]) -> dict[str, tuple[int, int]]:
        """Title -> (vector row, in-degree) for titles the model has seen linked."""
        return {t: (v[0], v[1]) for t, v in self.store.get("w2vfiltered", list(titles)).items()}

    def close(self) -> None:
        self.store.close()


def open_model(path: str | Path, store: str | None = None) -> Model:
    """Open a model directory; ``store`` is a mysql:// URL to read the datasets from MySQL."""
    directory = Path(path)
    if not (directory / "manifest.json").is_file():
        raise DatasetError(f"no model at {directory} (manifest.json missing); train one first")
    if store is None:
        return Model(directory, SqliteStore(directory))
    wiki = json.loads((directory / "manifest.json").read_text())["wiki"]
    return Model(directory, MysqlStore(store, wiki))

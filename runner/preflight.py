"""Checks made before the lock and before any write: model, store, event sink.

A run that cannot succeed should say why in one line and write nothing, instead of failing
after it took the lock, logged a run row and ran the pool upkeep.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from runner.config import Config, ConfigError
from runner.errors import ModelInvalid, ServiceUnavailable
from runner.store import StoreError, open_store

log = logging.getLogger("runner.preflight")


def preflight(cfg: Config, wiki: str, options: object) -> dict[str, str] | None:
    """Raise the first problem that would make the run fail; return the model's verified
    dataset checksums (None for commands that do not use the model)."""
    w = cfg.wiki(wiki)
    checksums = None
    if getattr(options, "command", "refresh") != "drift":
        checksums = verify_model(w.model, Path(w.source.cache_dir),
                                 in_files=w.model_datasets == "files")
    check_store(cfg, wiki, checksums if w.model_datasets == "store" else None)
    check_sink(cfg, wiki)
    return checksums


# ---------------------------------------------------------------------------- the model

VERDICTS = "model-verdicts.json"  # in the source's cache_dir: one verdict per model directory


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def verify_model(directory: str | Path, cache_dir: Path | None = None,
                 in_files: bool = True) -> dict[str, str]:
    """Check a model directory against its manifest; the manifest's dataset checksums.

    Every file the manifest lists (``files``: name -> sha256) is hashed, and the dataset
    checksums that go into each stored row (``checksums``) are recomputed from the files, so
    neither a damaged file nor a forged checksum gets past. With ``in_files`` False (the
    keyed datasets are read from MySQL, ``check_store`` compares their checksums) the
    SQLite files are not needed and not checked. Hashing a large model takes a
    while, so the verdict is cached by each file's (size, mtime) and the manifest's sha256:
    a run re-hashes only a model that changed.
    """
    d = Path(directory)
    manifest = model_manifest(d)
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ModelInvalid(f"model {d}: manifest.json lists no file checksums (trained by an "
                           "older version): train it again")
    if not in_files:
        files = {k: v for k, v in files.items() if not k.endswith(".sqlite")}
    stats: dict[str, list[int]] = {}
    for name in sorted(files):
        try:
            stats[name] = _stat(d / name)
        except OSError as e:
            raise ModelInvalid(f"model {d}: {name}: {e.strerror}") from None
    key = f"{d.resolve()}:{'files' if in_files else 'store'}"
    stamp = {"manifest": _sha256_bytes((d / "manifest.json").read_bytes()), "files": stats}
    cache = _read_verdicts(cache_dir)
    if cache.get(key) == stamp:
        return dict(manifest["checksums"])
    from model.datasets import classifier_checksum, file_checksum

    for name, expected in sorted(files.items()):
        if file_checksum(d / name) != expected:
            raise ModelInvalid(f"model {d}: {name}: sha256 differs from manifest.json "
                               "(damaged or replaced file)")
    recomputed = _dataset_checksums(d, manifest) if in_files else {
        "model": (classifier_checksum(d), manifest["checksums"].get("model"))}
    for dataset, (got, expected) in sorted(recomputed.items()):
        if got != expected:
            raise ModelInvalid(f"model {d}: manifest.json checksums.{dataset} does not match "
                               "the dataset's content")
    cache[key] = stamp
    _write_verdicts(cache_dir, cache)
    return dict(manifest["checksums"])


def model_manifest(d: Path) -> dict:
    """The model directory's manifest.json, or ModelInvalid naming what is wrong."""
    path = d / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelInvalid(f"model {d}: no manifest.json (not a model directory; train one "
                           "with python -m model train)") from None
    except OSError as e:
        raise ModelInvalid(f"model {d}: manifest.json: {e.strerror}") from None
    except ValueError as e:
        raise ModelInvalid(f"model {d}: manifest.json is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("checksums"), dict):
        raise ModelInvalid(f"model {d}: manifest.json has no checksums")
    return manifest


def _dataset_checksums(d: Path, manifest: dict) -> dict[str, tuple[str, str]]:
    """dataset -> (recomputed, manifest's), as model/train.py computes them."""
    from model.datasets import (
        DATASETS,
        SqliteStore,
        classifier_checksum,
        file_checksum,
        rows_checksum,
    )

    expected = manifest["checksums"]
    missing = sorted((set(DATASETS) | {"model"}) - set(expected))
    if missing:
        raise ModelInvalid(f"model {d}: manifest.json checksums lack {', '.join(missing)}")
    out: dict[str, tuple[str, str]] = {}
    try:
        store = SqliteStore(d)
        try:
            for dataset in DATASETS:
                out[dataset] = (rows_checksum(store.rows(dataset)), expected[dataset])
        finally:
            store.close()
    except Exception as e:  # noqa: BLE001 - sqlite3.DatabaseError and friends
        raise ModelInvalid(f"model {d}: cannot read its datasets: {e}") from None
    index = out["w2vfiltered"][0]
    out["w2vfiltered"] = (rows_checksum([[index, file_checksum(d / "vectors.npy")]]),
                          expected["w2vfiltered"])
    out["model"] = (classifier_checksum(d), expected["model"])
    return out


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_verdicts(cache_dir: Path | None) -> dict:
    if cache_dir is None:
        return {}
    try:
        data = json.loads((cache_dir / VERDICTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_verdicts(cache_dir: Path | None, cache: dict) -> None:
    """Atomically (a crash leaves the old file); unwritable: verify again next time."""
    if cache_dir is None:
        return
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".verdicts-", dir=cache_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(cache, f)
        os.replace(tmp, cache_dir / VERDICTS)
    except OSError as e:
        log.warning("cannot cache the model's verdict in %s: %s", cache_dir, e)


# ---------------------------------------------------------------------------- services


def check_store(cfg: Config, wiki: str, checksums: dict[str, str] | None) -> None:
    """The store answers (MySQL: one connection and a query within connect_timeout); with
    datasets in MySQL, the checksums ``model load`` recorded are the manifest's."""
    s = cfg.store
    if s.type == "sqlite":
        parent = Path(s.location(wiki)).parent
        if parent.exists() and not os.access(parent, os.W_OK):
            raise StoreError(f"store.path: {parent} is not writable")
        _check_schema(cfg, wiki)
        return
    import pymysql

    from runner.store.mysql import MysqlStore, parse_mysql_url

    kw = parse_mysql_url(s.location(wiki))
    safe = f"mysql://{kw['user']}@{kw['host']}:{kw['port']}/{kw['database']}"
    try:
        conn = pymysql.connect(**kw, password=s.password.reveal() if s.password else "",
                               connect_timeout=s.connect_timeout, read_timeout=s.read_timeout,
                               write_timeout=s.write_timeout, charset="utf8mb4")
    except pymysql.MySQLError as e:
        code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
        if code in MysqlStore.usage_codes:
            raise StoreError(f"store.url: {safe}: {e.args[-1]}") from None
        raise ServiceUnavailable("MySQL", f"{safe}: {e.args[-1]}") from None
    try:
        if checksums is not None:
            _check_loaded(conn, cfg.wiki(wiki), checksums, safe)
        else:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
    except pymysql.MySQLError as e:
        raise ServiceUnavailable("MySQL", f"{safe}: {e.args[-1]}") from None
    finally:
        conn.close()
    _check_schema(cfg, wiki)


def _check_schema(cfg: Config, wiki: str) -> None:
    """The schema is at this code's version (SchemaError names the migrate command): a run
    on a missing or old schema stops here, before the lock, and creates nothing."""
    open_store(cfg.store, wiki).close()


def _check_loaded(conn: object, w: object, checksums: dict[str, str], safe: str) -> None:
    import pymysql

    from model.datasets import DATASETS
    from model.load import recorded_checksums

    manifest_wiki = model_manifest(Path(w.model)).get("wiki", w.name)
    try:
        loaded = recorded_checksums(conn, manifest_wiki)
    except pymysql.err.ProgrammingError:
        loaded = {}
    for dataset in DATASETS:
        if loaded.get(dataset) != checksums.get(dataset):
            state = "not loaded" if dataset not in loaded else "loaded from another model"
            raise ModelInvalid(f"model {w.model}: dataset {dataset} in {safe} is {state} "
                               f"(run python -m model load --from {w.model})")


def check_sink(cfg: Config, wiki: str) -> None:
    """EventGate accepts connections (a TCP connect within events.timeout); a JSON-lines
    file's directory can be written."""
    e = cfg.events
    if e.type == "jsonlines":
        parent = Path(e.path.replace("{wiki}", wiki)).parent
        probe = parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not os.access(probe, os.W_OK):
            raise ConfigError(f"events.path: {parent} is not writable")
        return
    url = urlsplit(e.url or "")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=e.timeout).close()
    except OSError as err:
        raise ServiceUnavailable("EventGate", f"{url.hostname}:{port}: "
                                 f"{err.strerror or err}") from None

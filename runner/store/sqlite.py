"""SQLite store: the embedded default (one file, WAL mode so readers never block the job)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from runner.store.base import Store, StoreError


class SqliteStore(Store):
    placeholder = "?"
    autoinc_pk = "INTEGER PRIMARY KEY AUTOINCREMENT"
    table_options = ""

    @classmethod
    def open(cls, path: str, wiki: str) -> SqliteStore:
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(p, isolation_level=None, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"store.path: cannot open SQLite database {path}: {e}") from None
        store = cls(conn, wiki, str(p))
        store._apply_schema()
        return store

    def _begin(self, cur: Any) -> None:
        cur.execute("BEGIN IMMEDIATE")

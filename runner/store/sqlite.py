"""SQLite store: the embedded default (one file, WAL mode so readers never block the job)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from runner.store import migrations
from runner.store.base import Store, StoreError
from runner.store.migrations import SchemaError


class SqliteStore(Store):
    placeholder = "?"
    autoinc_pk = "INTEGER PRIMARY KEY AUTOINCREMENT"
    table_options = ""

    @classmethod
    def open(cls, path: str, wiki: str, migrating: bool = False) -> SqliteStore:
        """Open an existing, migrated database; ``migrating`` (the migrate command only) also
        creates the file and its directory, and skips the schema check."""
        p = Path(path)
        if not migrating and not p.exists():
            raise SchemaError(f"store {p}: no such SQLite database: "
                              + migrations.migrate_hint())
        try:
            if migrating:
                p.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(p, isolation_level=None, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"store.path: cannot open SQLite database {path}: {e}") from None
        store = cls(conn, wiki, str(p))
        return store if migrating else store.checked()

    def _is_missing_table(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "no such table" in str(error)

    def index_exists(self, name: str, table: str) -> bool:
        rows = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND "
                                 "name = ? AND tbl_name = ?", (name, table)).fetchall()
        return bool(rows)

    def _begin(self, cur: Any) -> None:
        cur.execute("BEGIN IMMEDIATE")

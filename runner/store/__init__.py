"""Storage adapters: SQLite (embedded default) and MySQL/MariaDB (production)."""

from __future__ import annotations

from runner.config import StoreSection
from runner.store.base import PendingEvent, Store, StoredRow, StoreError

__all__ = ["PendingEvent", "Store", "StoreError", "StoredRow", "open_store"]


def open_store(cfg: StoreSection, wiki: str) -> Store:
    """Open (and create the tables of) the store of one wiki."""
    location = cfg.location(wiki)
    if cfg.type == "sqlite":
        from runner.store.sqlite import SqliteStore

        return SqliteStore.open(location, wiki)
    from runner.store.mysql import MysqlStore

    return MysqlStore.open(location, wiki, cfg.password, cfg.create_database,
                           cfg.connect_timeout)

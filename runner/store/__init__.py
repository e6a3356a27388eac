"""Storage adapters: SQLite (embedded default) and MySQL/MariaDB (production)."""

from __future__ import annotations

from runner.config import StoreSection
from runner.store.base import PendingEvent, Store, StoredRow, StoreError, StoreUnavailable
from runner.store.migrations import SchemaError

__all__ = ["PendingEvent", "SchemaError", "Store", "StoreError", "StoreUnavailable", "StoredRow",
           "open_store"]


def open_store(cfg: StoreSection, wiki: str, migrating: bool = False) -> Store:
    """Open the store of one wiki, checking its schema version and never changing it
    (SchemaError when missing or old); ``migrating``: for the migrate command, no check."""
    location = cfg.location(wiki)
    if cfg.type == "sqlite":
        from runner.store.sqlite import SqliteStore

        return SqliteStore.open(location, wiki, migrating=migrating)
    from runner.store.mysql import MysqlStore

    return MysqlStore.open(location, wiki, cfg.password, cfg.create_database,
                           cfg.connect_timeout, cfg.read_timeout, cfg.write_timeout,
                           migrating=migrating)

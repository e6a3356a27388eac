"""``migrate``: apply the pending schema migrations to each wiki's store, or print them.

Stores never change their schema when they open (production users have no DDL rights,
SPEC §8); this command is the one place that does, run by whoever holds DDL rights, or
``--print`` gives the SQL for a DBA. Wikis that share one database are migrated once.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from runner.config import Config
from runner.store import migrations as mig
from runner.store import open_store

log = logging.getLogger("runner.migrate")


def _script(cfg: Config, wiki: str) -> str:
    """``--print``: the SQL for the store's current state; creates nothing (no SQLite file,
    no database even with ``create_database``), so a missing store gets the whole script."""
    from pathlib import Path

    location = cfg.store.location(wiki)
    if cfg.store.type == "sqlite" and not Path(location).exists():
        from runner.store.sqlite import SqliteStore as S

        return mig.script(mig.Dialect("sqlite", S.autoinc_pk, S.table_options), None, location)
    from runner.store.mysql import MysqlStore, NoDatabase

    try:
        store = open_store(replace(cfg.store, create_database=False), wiki, migrating=True)
    except NoDatabase as e:
        d = mig.Dialect("mysql", MysqlStore.autoinc_pk, MysqlStore.table_options)
        return f"-- {e}\n" + mig.script(d, None, location)
    try:
        return store.migration_script()
    finally:
        store.close()


def run(cfg: Config, wikis: list[str] | None, print_only: bool) -> list[str]:
    """One line (or, with ``print_only``, one SQL script) per distinct store location."""
    out: list[str] = []
    seen: set[str] = set()
    for wiki in wikis or sorted(cfg.wikis):
        cfg.wiki(wiki)  # an unknown wiki is a usage error before any work
        location = cfg.store.location(wiki)
        if location in seen:
            continue
        seen.add(location)
        if print_only:
            out.append(_script(cfg, wiki))
            continue
        store = open_store(cfg.store, wiki, migrating=True)
        try:
            done = store.migrate()
            version = store.schema_version()
        finally:
            store.close()
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in done)
        line = (f"{wiki}: {store.location}: applied {names}; now at version {version}" if done
                else f"{wiki}: {store.location}: already at version {version}, nothing to do")
        log.info("migrate: %s", line, extra={"wiki": wiki, "applied": len(done),
                                             "version": version})
        out.append(line)
    return out

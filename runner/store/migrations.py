"""Versioned schema migrations (``queries/migrations/NNNN_name.sql``) and the schema check.

Why apart from opening a store: in production the application's database user has no DDL
rights (SPEC §8: tables are created by DBAs from schema files), so a store only *checks* the
recorded version when it opens, and ``python -m runner migrate`` applies the pending files,
or prints them (``--print``) for a DBA to run.

The files are written once for both dialects; the few differences are rewritten here and
nowhere else (docs/runner.md "Schema migrations"):

- ``{autoinc_pk}`` and ``{table_options}``: the dialect's auto-increment key and table options;
- ``CREATE INDEX IF NOT EXISTS``: MySQL 8 has no such form, so on MySQL the statement is run
  as a plain ``CREATE INDEX`` only when ``information_schema.statistics`` lacks the index
  (printed with a comment saying so);
- ``DROP INDEX x ON t``: SQLite's index names are per database, so there it is ``DROP INDEX x``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "queries" / "migrations"
TABLE = "addlink_schema_migrations"

_CREATE_INDEX = re.compile(r"CREATE\s+INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+ON\s+(\w+)\s*(\(.*)",
                           re.I | re.S)
_DROP_INDEX = re.compile(r"DROP\s+INDEX\s+(\w+)\s+ON\s+(\w+)\s*$", re.I)


class SchemaError(RuntimeError):
    """The store's schema is missing or older than this code needs (exit USAGE)."""


@dataclass(frozen=True)
class Dialect:
    name: str  # "sqlite" or "mysql"
    autoinc_pk: str
    table_options: str


def table_ddl(d: Dialect) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {TABLE} (\n"
            "  version INT NOT NULL PRIMARY KEY,\n"
            "  name VARCHAR(255) NOT NULL,\n"
            "  applied_at DOUBLE NOT NULL\n"
            f") {d.table_options}").rstrip()


@dataclass(frozen=True)
class Statement:
    """One statement as the dialect runs it; ``index`` = (name, table) when it only runs if
    that index is absent (MySQL's stand-in for CREATE INDEX IF NOT EXISTS)."""
    sql: str
    index: tuple[str, str] | None = None


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self, d: Dialect) -> list[Statement]:
        text = self.path.read_text(encoding="utf-8")
        text = "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("--"))
        text = text.replace("{autoinc_pk}", d.autoinc_pk)
        text = text.replace("{table_options}", d.table_options)
        out = []
        for raw in re.split(r";\s*$", text, flags=re.M):
            sql = raw.strip()
            if not sql:
                continue
            m = _CREATE_INDEX.fullmatch(sql)
            if m and d.name == "mysql":
                out.append(Statement(f"CREATE INDEX {m[1]} ON {m[2]} {m[3]}", (m[1], m[2])))
                continue
            m = _DROP_INDEX.fullmatch(sql)
            if m and d.name == "sqlite":
                sql = f"DROP INDEX {m[1]}"
            out.append(Statement(sql))
        return out


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; numbering must be 1, 2, 3 ... without gaps."""
    found = []
    for p in sorted(directory.glob("*.sql")):
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", p.name)
        if not m:
            raise SchemaError(f"{p}: migration files are named NNNN_name.sql")
        found.append(Migration(int(m[1]), m[2], p))
    for i, mig in enumerate(found, 1):
        if mig.version != i:
            raise SchemaError(f"{mig.path}: expected version {i:04d} (no gaps, no duplicates)")
    return found


LATEST = len(migrations())


def migrate_hint() -> str:
    return ("run `python -m runner --config FILE migrate` (or `migrate --print` for the SQL "
            "a DBA applies)")


def check_version(version: int | None, location: str) -> None:
    """Raise SchemaError unless ``version`` (None = no migrations table) is current."""
    if version is None:
        raise SchemaError(f"store {location}: no schema (table {TABLE} missing): "
                          + migrate_hint())
    if version < LATEST:
        raise SchemaError(f"store {location}: schema at version {version}, this runner needs "
                          f"{LATEST}: " + migrate_hint())


def pending(applied: int | None, upto: int | None = None) -> list[Migration]:
    return [m for m in migrations()
            if m.version > (applied or 0) and (upto is None or m.version <= upto)]


def apply(run: Callable[[str, tuple], list[tuple]], d: Dialect, applied: int | None,
          index_exists: Callable[[str, str], bool], upto: int | None = None) -> list[Migration]:
    """Apply the pending migrations (up to version ``upto``: tests of an older schema)
    through ``run(sql, args)``, each recorded when done.

    On MySQL each DDL statement commits by itself, so a migration that fails halfway is not
    rolled back; its version is recorded only once all its statements ran, and 0001's
    IF NOT EXISTS forms make it safe to run again.
    """
    run(table_ddl(d), ())
    done = []
    for mig in pending(applied, upto):
        for st in mig.statements(d):
            if st.index and index_exists(*st.index):
                continue
            run(st.sql, ())
        run(f"INSERT INTO {TABLE} (version, name, applied_at) VALUES (?, ?, ?)",
            (mig.version, mig.name, time.time()))
        done.append(mig)
    return done


def script(d: Dialect, applied: int | None, location: str,
           index_exists: Callable[[str, str], bool] | None = None) -> str:
    """The SQL a DBA runs to bring ``location`` from ``applied`` to the latest version."""
    lines = [f"-- addlink schema for {location} ({d.name}): from version {applied or 0} "
             f"to {LATEST}"]
    todo = pending(applied)
    if not todo:
        return "\n".join([*lines, "-- nothing to do: the schema is current"]) + "\n"
    lines += [table_ddl(d) + ";", ""]
    for mig in todo:
        lines.append(f"-- {mig.path.name}")
        for st in mig.statements(d):
            if st.index and index_exists is not None and index_exists(*st.index):
                lines.append(f"-- skipped, index {st.index[0]} exists on {st.index[1]}: "
                             f"{st.sql}")
                continue
            if st.index:
                lines.append(f"-- only if {st.index[1]} has no index {st.index[0]}:")
            lines.append(st.sql + ";")
        lines.append(f"INSERT INTO {TABLE} (version, name, applied_at) VALUES "
                     f"({mig.version}, '{mig.name}', {time.time():.0f});")
        lines.append("")
    return "\n".join(lines)

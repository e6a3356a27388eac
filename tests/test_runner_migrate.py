"""Schema migrations on SQLite and the real MariaDB: ``python -m runner migrate [--print]``
from nothing and from the previous schema, the printed SQL applied by hand with the
database's own client, and stores that refuse to open on a missing or old schema."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import subprocess
from pathlib import Path

import pymysql
import pytest
import yaml

from model.exitcodes import ExitCode
from runner.config import load_config
from runner.events import EventFactory
from runner.store import SchemaError, open_store
from runner.store.migrations import LATEST, migrations
from runner.store.mysql import parse_mysql_url
from tests.runner_support import LTG_DUMP, drop_database
from tests.test_runner_cli import cli

EVENTS = EventFactory("ltgwiki", "test.stream", "/development/x/1.0.0", "ltg.wikipedia.org")
NAMES = [f"{m.version:04d}_{m.name}" for m in migrations()]


def write_config(tmp_path: Path, store: dict) -> Path:
    doc = {"store": store,
           "events": {"type": "jsonlines", "path": str(tmp_path / "events.jsonl")},
           "lock": {"type": "file", "dir": str(tmp_path / "locks")},
           "wikis": {"ltgwiki": {"language": "ltg", "model": str(tmp_path / "model"),
                                 "source": {"type": "dump", "path": LTG_DUMP}}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(params=["sqlite", "mysql"])
def setup(request, tmp_path) -> tuple[str, Path, str]:
    """(kind, config path, location) of a store that does not exist yet."""
    if request.param == "sqlite":
        location = str(tmp_path / "db" / "addlink.sqlite")
        return "sqlite", write_config(tmp_path, {"type": "sqlite", "path": location}), location
    location = f"{request.getfixturevalue('mysql_url')}_{secrets.token_hex(3)}"
    request.addfinalizer(lambda: drop_database(location))
    cfg = write_config(tmp_path, {"type": "mysql", "url": location, "create_database": True})
    return "mysql", cfg, location


def _mysql(location: str, database: bool = True):
    kw = parse_mysql_url(location)
    db = kw.pop("database")
    return pymysql.connect(**kw, database=db if database else None, autocommit=True)


def schema(kind: str, location: str) -> dict:
    """Every table and index definition plus the recorded (version, name): what two ways of
    creating a schema must agree on."""
    if kind == "sqlite":
        conn = sqlite3.connect(location)
        try:
            defs = {name: sql for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
            applied = conn.execute("SELECT version, name FROM addlink_schema_migrations "
                                   "ORDER BY version").fetchall()
        finally:
            conn.close()
        return {"defs": defs, "applied": [tuple(x) for x in applied]}
    conn = _mysql(location)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            defs = {}
            for (table,) in cur.fetchall():
                cur.execute(f"SHOW CREATE TABLE `{table}`")
                defs[table] = re.sub(r" AUTO_INCREMENT=\d+", "", cur.fetchone()[1])
            cur.execute("SELECT version, name FROM addlink_schema_migrations ORDER BY version")
            applied = [tuple(x) for x in cur.fetchall()]
    finally:
        conn.close()
    return {"defs": defs, "applied": applied}


def index_columns(kind: str, location: str, table: str, index: str) -> list[str]:
    if kind == "sqlite":
        conn = sqlite3.connect(location)
        try:
            return [r[2] for r in conn.execute(f"PRAGMA index_info({index})")]
        finally:
            conn.close()
    conn = _mysql(location)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT column_name FROM information_schema.statistics WHERE "
                        "table_schema = DATABASE() AND table_name = %s AND index_name = %s "
                        "ORDER BY seq_in_index", (table, index))
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def apply_by_hand(kind: str, location: str, sql: str) -> None:
    """Run a ``migrate --print`` script the way a DBA would: the database's own client."""
    if kind == "sqlite":
        Path(location).parent.mkdir(parents=True, exist_ok=True)
        cmd = ["sqlite3", "-bail", location]
    else:
        kw = parse_mysql_url(location)
        cmd = ["mysql", "-h", kw["host"], "-P", str(kw["port"]), "-u", kw["user"],
               kw["database"]]
    r = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_migrate_from_empty_then_the_store_opens_and_works(setup):
    kind, config, location = setup
    r = cli("--config", str(config), "migrate")
    assert r.returncode == 0, r.stderr
    assert f"applied {', '.join(NAMES)}; now at version {LATEST}" in r.stdout
    assert index_columns(kind, location, "growthexperiments_link_submissions", "gels_page") \
        == ["gels_page", "gels_feedback", "gels_target"]
    before = schema(kind, location)
    assert before["applied"] == [(m.version, m.name) for m in migrations()]
    again = cli("--config", str(config), "migrate")
    assert again.returncode == 0 and "already at version" in again.stdout, again.stderr
    assert schema(kind, location) == before  # idempotent: nothing changed, nothing recorded

    store = open_store(load_config(config).store, "ltgwiki")
    try:
        store.save_recommendation(5, 50, "Five", {"links": []}, EVENTS.set(5, "Five"))
        assert store.pool_size() == 1 and store.row(50) is not None
    finally:
        store.close()
    status = cli("--config", str(config), "status", "--format", "json")
    assert status.returncode == 0, status.stderr
    assert '"pool_size": 1' in status.stdout


@pytest.mark.parametrize("recorded", [True, False], ids=["version-1", "pre-migrations"])
def test_migrate_from_the_previous_schema_keeps_rows(setup, recorded):
    """Version 1 as ``migrate`` records it, or the same tables as the store created them on
    open before migrations existed (no migrations table): rows kept, the index changed."""
    kind, config, location = setup
    cfg = load_config(config)
    old = open_store(cfg.store, "ltgwiki", migrating=True)
    try:
        if recorded:
            assert [m.version for m in old.migrate(upto=LATEST - 1)] == list(range(1, LATEST))
        else:
            with old.transaction() as cur:
                for st in migrations()[0].statements(old.dialect):
                    cur.execute(st.sql)
        with old.transaction() as cur:  # what save_recommendation wrote into these tables
            # (today's also writes addlink_page_topics, which only migration 3 creates)
            cur.execute(old._sql("replace_row"),
                        (70, 7, json.dumps({"links": [{"link_target": "X"}]}).encode()))
            cur.execute(old._sql("pool_put"), (7, 70, "Seven", 0.0))
            old._outbox(cur, 7, EVENTS.set(7, "Seven"), False)
        with old.transaction() as cur:
            cur.execute(old._sql_raw(
                "INSERT INTO growthexperiments_link_submissions (gels_revision, gels_page, "
                "gels_user, gels_target, gels_anchor_offset, gels_anchor_length, "
                "gels_feedback) VALUES (?, ?, ?, ?, ?, ?, ?)"), (70, 7, 1, 99, 0, 1, "r"))
    finally:
        old.close()

    why = f"version {LATEST - 1}, this runner needs {LATEST}" if recorded \
        else "no schema \\(table addlink_schema_migrations missing\\)"
    with pytest.raises(SchemaError, match=why):
        open_store(cfg.store, "ltgwiki")
    refused = cli("--config", str(config), "status")
    assert refused.returncode == ExitCode.USAGE
    (line,) = refused.stderr.strip().splitlines()
    assert re.search(why, line) and "python -m runner --config FILE migrate" in line

    printed = cli("--config", str(config), "migrate", "--print")
    assert printed.returncode == 0, printed.stderr
    assert NAMES[-1] in printed.stdout
    assert (NAMES[0] not in printed.stdout) == recorded  # only what is left to do
    if not recorded and kind == "mysql":  # the existing indexes are not created again
        assert "-- skipped, index gelr_page exists on growthexperiments_link_recommendations" \
            in printed.stdout

    r = cli("--config", str(config), "migrate")
    assert r.returncode == 0, r.stderr
    done = NAMES[-1:] if recorded else NAMES
    assert f"applied {', '.join(done)}; now at version {LATEST}" in r.stdout
    assert index_columns(kind, location, "growthexperiments_link_submissions", "gels_page") \
        == ["gels_page", "gels_feedback", "gels_target"]
    store = open_store(cfg.store, "ltgwiki")
    try:
        assert store.row(70).data == {"links": [{"link_target": "X"}]}
        assert store.pool_size() == 1 and len(store.pending_events(10)) == 1
        with store.transaction() as cur:
            cur.execute("SELECT gels_target, gels_feedback FROM "
                        "growthexperiments_link_submissions")
            assert [tuple(x) for x in cur.fetchall()] == [(99, "r")]
    finally:
        store.close()


def test_printed_sql_applied_by_hand_gives_the_same_schema(setup, tmp_path):
    kind, config, location = setup
    printed = cli("--config", str(config), "migrate", "--print")
    assert printed.returncode == 0, printed.stderr
    if kind == "sqlite":
        assert not Path(location).exists()  # --print creates nothing
    else:
        with pytest.raises(pymysql.err.OperationalError):  # not even the database
            _mysql(location).close()
        assert printed.stdout.startswith("-- store.url: ")  # says the database is missing
        boot = _mysql(location, database=False)
        with boot.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{parse_mysql_url(location)['database']}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        boot.close()
    apply_by_hand(kind, location, printed.stdout)
    by_hand = schema(kind, location)
    store = open_store(load_config(config).store, "ltgwiki")  # opens: at the current version
    store.close()
    again = cli("--config", str(config), "migrate")
    assert "already at version" in again.stdout, again.stderr

    # The same schema through the command, in a second database.
    (tmp_path / "o").mkdir()
    other = str(tmp_path / "other.sqlite") if kind == "sqlite" else f"{location}_b"
    store2 = {"type": "sqlite", "path": other} if kind == "sqlite" else \
        {"type": "mysql", "url": other, "create_database": True}
    cfg2 = write_config(tmp_path / "o", store2)
    try:
        assert cli("--config", str(cfg2), "migrate").returncode == 0
        assert schema(kind, other) == by_hand
    finally:
        if kind == "mysql":
            drop_database(other)


def test_an_unmigrated_store_refuses_to_open_with_the_command_to_run(setup, ltg_model):
    kind, config, location = setup
    doc = yaml.safe_load(config.read_text())
    doc["wikis"]["ltgwiki"]["model"] = str(ltg_model)  # the model passes the preflight
    config.write_text(yaml.safe_dump(doc))
    if kind == "mysql":  # the database exists, empty (as a DBA created it)
        boot = _mysql(location, database=False)
        with boot.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{parse_mysql_url(location)['database']}`")
        boot.close()
    for args in (("status",), ("refresh", "--dry-run"), ("drift", "--wiki", "ltgwiki")):
        r = cli("--config", str(config), "--log-format", "text", *args)
        assert r.returncode == ExitCode.USAGE, (args, r.stdout[-2000:], r.stderr)
        out = r.stderr.strip() or r.stdout.strip()  # a run's error is its log line
        line = out.splitlines()[-1]
        assert location in line and "migrate" in line and "Traceback" not in out, line
    if kind == "sqlite":
        assert not Path(location).exists()  # refused, nothing created
    with pytest.raises(SchemaError, match="no s"):  # no schema / no such SQLite database
        open_store(load_config(config).store, "ltgwiki")


def test_migrate_usage_and_unreachable_errors(tmp_path):
    config = write_config(tmp_path, {"type": "sqlite", "path": str(tmp_path / "a.sqlite")})
    r = cli("--config", str(config), "migrate", "--wiki", "nosuchwiki")
    assert r.returncode == ExitCode.USAGE and "nosuchwiki" in r.stderr
    r = cli("--config", str(config), "migrate", "--bogus")
    assert r.returncode == ExitCode.USAGE
    down = tmp_path / "down"
    down.mkdir()
    config = write_config(down, {"type": "mysql", "url": "mysql://root@127.0.0.1:1/x",
                                 "connect_timeout": 2})
    r = cli("--config", str(config), "migrate")
    assert r.returncode == ExitCode.UNAVAILABLE, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: MySQL unavailable: ") and "127.0.0.1:1" in line

"""MySQL/MariaDB store (pymysql): production, where GrowthExperiments reads the same tables."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql

from runner.config import Secret
from runner.store.base import Store, StoreError


def parse_mysql_url(url: str) -> dict[str, Any]:
    """``mysql://user@host[:port]/database`` -> pymysql.connect keyword arguments."""
    parts = urlsplit(url)
    if parts.scheme != "mysql" or not parts.hostname:
        raise StoreError(f"store.url: expected mysql://user@host[:port]/database, got {url!r}")
    if parts.password:
        raise StoreError("store.url: put the password in password_env/password_file, "
                         "not in the URL")
    db = unquote(parts.path.lstrip("/"))
    if not re.fullmatch(r"[A-Za-z0-9_$]+", db):
        raise StoreError(f"store.url: missing or invalid database name in {url!r}")
    kw: dict[str, Any] = {"host": parts.hostname, "port": parts.port or 3306,
                          "user": unquote(parts.username or "root"), "database": db}
    query = parse_qs(parts.query)
    if "unix_socket" in query:
        kw["unix_socket"] = query["unix_socket"][0]
    return kw


class MysqlStore(Store):
    placeholder = "%s"
    autoinc_pk = "BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY"
    table_options = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

    @classmethod
    def open(cls, url: str, wiki: str, password: Secret | None = None,
             create_database: bool = False, connect_timeout: float = 10.0) -> MysqlStore:
        kw = parse_mysql_url(url)
        db = kw.pop("database")
        # READ COMMITTED: no gap locks, so the shards of a wiki (``--shard i/N``) writing
        # rows of different pages at once do not deadlock on the gelr_page index (under
        # REPEATABLE READ, two "DELETE ... WHERE gelr_page = ?" of absent pages lock the
        # same gap, and each one's insert then waits for the other's). Every transaction
        # here is one short unit of work, so nothing relies on repeatable reads.
        common = dict(kw, password=password.reveal() if password else "", charset="utf8mb4",
                      autocommit=False, connect_timeout=connect_timeout,
                      init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        try:
            if create_database:
                boot = pymysql.connect(**common)
                try:
                    with boot.cursor() as cur:
                        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}` "
                                    "DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                finally:
                    boot.close()
            conn = pymysql.connect(database=db, **common)
        except pymysql.MySQLError as e:
            safe = f"mysql://{kw['user']}@{kw['host']}:{kw['port']}/{db}"
            raise StoreError(f"store.url: cannot connect to {safe}: {e.args[-1]}") from None
        store = cls(conn, wiki, f"mysql://{kw['user']}@{kw['host']}:{kw['port']}/{db}")
        store._apply_schema()
        return store

    def _begin(self, cur: Any) -> None:
        try:
            self.conn.begin()
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError):
            self.conn.connect()  # the server closed an idle connection: open a new one
            self.conn.begin()

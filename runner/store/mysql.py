"""MySQL/MariaDB store (pymysql): production, where GrowthExperiments reads the same tables."""

from __future__ import annotations

import contextlib
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql

from runner.config import Secret
from runner.store import migrations
from runner.store.base import Store, StoreError, StoreUnavailable

# Client errors after which a fresh connection may succeed: can't connect (2003), server gone
# (2006), lost during a query (2013, also a read/write timeout), packet sequence lost (2055),
# lock wait timeout (1205), deadlock (1213).
TRANSIENT = frozenset({2003, 2006, 2013, 2055, 1205, 1213})
# Not a server problem: wrong password (1045), no such database (1049), access denied (1044).
USAGE_CODES = frozenset({1044, 1045, 1049})


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


class NoDatabase(StoreError):
    """The configured database does not exist (``migrate --print`` starts from nothing)."""


class MysqlStore(Store):
    placeholder = "%s"
    autoinc_pk = "BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY"
    table_options = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

    @classmethod
    def open(cls, url: str, wiki: str, password: Secret | None = None,
             create_database: bool = False, connect_timeout: float = 10.0,
             read_timeout: float = 30.0, write_timeout: float = 30.0,
             migrating: bool = False) -> MysqlStore:
        """Open a migrated database; ``migrating`` (the migrate command only) skips the schema
        check and, with ``create_database`` (dev, tests), creates the database first."""
        kw = parse_mysql_url(url)
        db = kw.pop("database")
        # READ COMMITTED: no gap locks, so the shards of a wiki (``--shard i/N``) writing
        # rows of different pages at once do not deadlock on the gelr_page index (under
        # REPEATABLE READ, two "DELETE ... WHERE gelr_page = ?" of absent pages lock the
        # same gap, and each one's insert then waits for the other's). Every transaction
        # here is one short unit of work, so nothing relies on repeatable reads.
        common = dict(kw, password=password.reveal() if password else "", charset="utf8mb4",
                      autocommit=False, connect_timeout=connect_timeout,
                      read_timeout=read_timeout, write_timeout=write_timeout,
                      init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        try:
            if create_database and migrating:
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
            code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
            if code == 1049:
                raise NoDatabase(f"store.url: {safe}: {e.args[-1]} (create it, then "
                                 + migrations.migrate_hint().removeprefix("run ") + ")") \
                    from None
            if code in USAGE_CODES:
                raise StoreError(f"store.url: {safe}: {e.args[-1]}") from None
            raise StoreUnavailable("MySQL", f"store.url: cannot connect to {safe}: "
                                   f"{e.args[-1]}") from None
        store = cls(conn, wiki, f"mysql://{kw['user']}@{kw['host']}:{kw['port']}/{db}")
        return store if migrating else store.checked()

    service = "MySQL"
    dialect_name = "mysql"
    usage_codes = USAGE_CODES

    def _begin(self, cur: Any) -> None:
        try:
            self.conn.begin()
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError):
            self._reconnect()  # the server closed an idle connection: open a new one
            self.conn.begin()

    def _is_missing_table(self, error: BaseException) -> bool:
        return isinstance(error, pymysql.err.ProgrammingError) and bool(error.args) \
            and error.args[0] == 1146  # ER_NO_SUCH_TABLE

    def index_exists(self, name: str, table: str) -> bool:
        with self.transaction() as cur:
            cur.execute("SELECT 1 FROM information_schema.statistics WHERE table_schema = "
                        "DATABASE() AND table_name = %s AND index_name = %s", (table, name))
            return bool(cur.fetchall())

    def _transient(self, error: BaseException) -> bool:
        if isinstance(error, pymysql.err.InterfaceError):
            return True  # e.g. (0, ''): the connection was already closed under us
        if isinstance(error, pymysql.err.OperationalError):
            return bool(error.args) and error.args[0] in TRANSIENT
        return isinstance(error, OSError)

    def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        self.conn.connect()

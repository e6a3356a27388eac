"""The store interface over one wiki's tables; SQLite and MySQL differ only in connecting.

Every write method is one transaction: a cache row and the search event about it are
committed together into the outbox (SPEC §5 "store the row and emit the event, in one
unit"); the publisher sends outbox events afterwards, so a failed delivery never leaves a
row without its event or an event without its row.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from runner.errors import ServiceUnavailable
from runner.store import migrations

log = logging.getLogger("runner.store")
T = TypeVar("T")
S = TypeVar("S", bound="Store")

QUERIES_DIR = Path(__file__).resolve().parents[2] / "queries"

EventFactory = Callable[[int, str], dict]  # (page_id, title) -> event


class StoreError(RuntimeError):
    """The store could not be opened or used; the message says which and why."""


class StoreUnavailable(StoreError, ServiceUnavailable):
    """The store's server did not answer (timeout, reset, refused), also after one retry."""

    def __init__(self, service: str, detail: str) -> None:
        ServiceUnavailable.__init__(self, service, detail)


def _load_named(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    name = None
    lines: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"--\s*name:\s*(\w+)", line)
        if m:
            if name:
                queries[name] = "\n".join(lines).strip()
            name, lines = m.group(1), []
        elif name and not line.startswith("--"):
            lines.append(line)
    if name:
        queries[name] = "\n".join(lines).strip()
    return queries


QUERIES = _load_named(QUERIES_DIR / "store.sql")


@dataclass(frozen=True)
class StoredRow:
    page_id: int
    rev_id: int
    data: dict | None


@dataclass(frozen=True)
class PendingEvent:
    id: int
    event: dict
    attempts: int


def _chunks(items: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


class Store:
    """One wiki's GrowthExperiments tables plus the runner's outbox, run log and resume points."""

    placeholder = "?"
    autoinc_pk = ""
    table_options = ""
    max_in = 500  # list items per IN (...)
    service = "SQLite"
    dialect_name = "sqlite"

    def __init__(self, conn: Any, wiki: str, location: str) -> None:
        self.conn = conn
        self.wiki = wiki
        self.location = location
        self.db_seconds = 0.0  # time spent in transactions, read by the metrics timer
        self.broken: StoreUnavailable | None = None  # set once the server is given up on

    # -- dialect hooks
    def _begin(self, cur: Any) -> None:
        raise NotImplementedError

    def _is_missing_table(self, error: BaseException) -> bool:
        """Whether ``error`` says a table does not exist (dialect hook)."""
        raise NotImplementedError

    def index_exists(self, name: str, table: str) -> bool:
        """Whether ``table`` has an index ``name`` (dialect hook; MySQL needs it to stand in
        for CREATE INDEX IF NOT EXISTS)."""
        raise NotImplementedError

    @property
    def dialect(self) -> migrations.Dialect:
        return migrations.Dialect(self.dialect_name, self.autoinc_pk, self.table_options)

    # -- schema (runner/store/migrations.py): checked on open, changed only by ``migrate``
    def schema_version(self) -> int | None:
        """The last applied migration, None when there is no migrations table."""
        try:
            with self.transaction() as cur:
                cur.execute(f"SELECT MAX(version) FROM {migrations.TABLE}")
                row = cur.fetchone()
        except Exception as e:
            if self._is_missing_table(e):
                return None
            raise
        return int(row[0]) if row and row[0] is not None else 0

    def check_schema(self) -> None:
        """On open: a missing or old schema is a one-line SchemaError naming the fix."""
        version = self.schema_version()
        migrations.check_version(version, self.location)
        if version is not None and version > migrations.LATEST:
            log.warning("store %s: schema at version %s, newer than this runner's %s "
                        "(a rolled-back release?); continuing", self.location, version,
                        migrations.LATEST, extra={"wiki": self.wiki})

    def checked(self: S) -> S:
        """This store after ``check_schema`` (what ``open`` returns); closed if it fails."""
        try:
            self.check_schema()
        except BaseException:
            self.close()
            raise
        return self

    def migrate(self, upto: int | None = None) -> list[migrations.Migration]:
        """Apply the pending migrations (the ``migrate`` command; needs DDL rights)."""
        def run(sql: str, args: tuple) -> list[tuple]:
            with self.transaction() as cur:
                cur.execute(self._sql_raw(sql), args)
                return list(cur.fetchall())

        return migrations.apply(run, self.dialect, self.schema_version(), self.index_exists,
                                upto)

    def migration_script(self) -> str:
        """The SQL ``migrate --print`` shows a DBA for this store's current state."""
        return migrations.script(self.dialect, self.schema_version(), self.location,
                                 self.index_exists)

    def close(self) -> None:
        with suppress(Exception):  # a connection the server already dropped
            self.conn.close()

    def _transient(self, error: BaseException) -> bool:
        """Whether a fresh connection may succeed where this one failed (dialect hook)."""
        return False

    def _reconnect(self) -> None:
        raise NotImplementedError

    # -- plumbing
    def _sql(self, name: str, n: int = 0) -> str:
        sql = QUERIES[name]
        if "{ids}" in sql:
            sql = sql.replace("{ids}", ",".join(["?"] * n))
        return sql.replace("?", self.placeholder) if self.placeholder != "?" else sql

    def _sql_raw(self, sql: str) -> str:
        """Ad-hoc SQL written with "?" placeholders, for this dialect (tests, tools)."""
        return sql.replace("?", self.placeholder) if self.placeholder != "?" else sql

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One atomic unit of work; rolled back on any exception."""
        t0 = time.perf_counter()
        cur = self.conn.cursor()
        try:
            self._begin(cur)
            yield cur
            self.conn.commit()
        except BaseException:
            with suppress(Exception):  # a dead connection: the original error counts
                self.conn.rollback()
            raise
        finally:
            with suppress(Exception):
                cur.close()
            self.db_seconds += time.perf_counter() - t0

    def _unit(self, body: Callable[[Any, bool], T]) -> T:
        """Run ``body(cursor, retried)`` as one transaction; on a transient error (connection
        reset, timeout, also during COMMIT) once more on a fresh connection. ``body`` must be
        idempotent when ``retried`` (the first COMMIT may have landed). The error reported is
        the first one; after it the store fails fast (a partition costs one timeout)."""
        if self.broken is not None:
            raise self.broken
        try:
            with self.transaction() as cur:
                return body(cur, False)
        except Exception as e:
            if not self._transient(e):
                raise
            first = e
        log.warning("%s: %s; retrying the transaction on a new connection", self.service,
                    _describe(first), extra={"wiki": self.wiki})
        try:
            self._reconnect()
            with self.transaction() as cur:
                return body(cur, True)
        except Exception as e:
            if not self._transient(e):
                raise
            self.broken = StoreUnavailable(self.service, f"{self.location}: "
                                           f"{_describe(first)} (retried: {_describe(e)})")
            raise self.broken from None

    def _query(self, name: str, args: Sequence = (), n: int = 0) -> list[tuple]:
        def body(cur: Any, retried: bool) -> list[tuple]:
            cur.execute(self._sql(name, n), tuple(args))
            return list(cur.fetchall())

        return self._unit(body)

    def _in_query(self, name: str, ids: Iterable[int], extra: Sequence = ()) -> list[tuple]:
        ids = list(dict.fromkeys(ids))
        out: list[tuple] = []
        for chunk in _chunks(ids, self.max_in):
            out.extend(self._query(name, (*extra, *chunk), len(chunk)))
        return out

    @staticmethod
    def _json(blob: Any) -> dict | None:
        if blob is None:
            return None
        if isinstance(blob, bytes | bytearray | memoryview):
            blob = bytes(blob).decode("utf-8")
        return json.loads(blob)

    @staticmethod
    def _text(value: Any) -> str:
        return bytes(value).decode("utf-8") if isinstance(value, bytes | bytearray) else value

    # -- lookups used by the criteria and pruning
    def revision_states(self, rev_ids: Iterable[int]) -> dict[int, bool]:
        """revision id -> True (a row with data) / False (a NULL row); absent: no row."""
        return {int(r): bool(d) for r, d in self._in_query("revision_states", rev_ids)}

    def prior_submissions(self, rev_ids: Iterable[int]) -> set[int]:
        return {int(r) for (r,) in self._in_query("prior_submissions", rev_ids)}

    def rejected_targets(self, page_id: int, limit: int = 2) -> set[int]:
        """Target page ids rejected ``limit`` or more times on this page (SPEC §3)."""
        return {int(t) for (t,) in self._query("rejected_targets", (page_id, limit))}

    def pool_size(self) -> int:
        return int(self._query("pool_size")[0][0])

    def topic_counts(self) -> dict[str, int]:
        """topic -> pooled pages counted for it (``addlink_page_topics``; a page in several
        topics counts for each)."""
        return {self._text(t): int(n) for t, n in self._query("topic_counts")}

    def row_counts(self) -> dict[str, int]:
        counts = {"with_data": 0, "null": 0}
        for has_data, n in self._query("row_counts"):
            counts["with_data" if int(has_data) else "null"] = int(n)
        return counts

    def feedback_counts(self) -> dict[tuple[str, str], int]:
        """(model version, feedback letter) -> reviewed suggestions (Growth's quality signal).

        The model version is the start of the row's ``dataset_checksums.model``; a
        submission whose row is gone (GrowthExperiments and upkeep delete a page's rows once
        it is edited) counts as "unknown": the submissions table itself names no model.
        """
        by_rev: dict[int, dict[str, int]] = {}
        for rev, feedback, n in self._query("feedback_by_revision"):
            by_rev.setdefault(int(rev), {})[self._text(feedback)] = int(n)
        versions: dict[int, str] = {}
        for rev, blob in self._in_query("data_of_revisions", by_rev):
            model = ((self._json(blob) or {}).get("meta") or {}).get("dataset_checksums") or {}
            versions[int(rev)] = str(model.get("model") or "")[:12] or "unknown"
        out: dict[tuple[str, str], int] = {}
        for rev, counts in by_rev.items():
            version = versions.get(rev, "unknown")
            for feedback, n in counts.items():
                out[version, feedback] = out.get((version, feedback), 0) + n
        return out

    def last_success(self, command: str = "refresh") -> float | None:
        """Unix time the last run of ``command`` with status ok finished (None: never)."""
        rows = self._query("last_success", (self.wiki, command))
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def row(self, rev_id: int) -> StoredRow | None:
        rows = self._query("row_by_revision", (rev_id,))
        if not rows:
            return None
        page, data = rows[0]
        return StoredRow(int(page), rev_id, self._json(data))

    def iter_data_rows(self, batch: int = 500) -> Iterator[StoredRow]:
        """Rows with data in page order, keyset-paged so memory stays flat."""
        after = 0
        while True:
            rows = self._query("data_rows_after", (after, batch))
            for page, rev, data in rows:
                yield StoredRow(int(page), int(rev), self._json(data))
            if len(rows) < batch:
                return
            after = int(rows[-1][0])

    def iter_null_rows(self, batch: int = 1000) -> Iterator[tuple[int, int]]:
        after = 0
        while True:
            rows = self._query("null_rows_after", (after, batch))
            yield from ((int(p), int(r)) for p, r in rows)
            if len(rows) < batch:
                return
            after = int(rows[-1][0])

    def iter_pooled_pages(self, batch: int = 1000) -> Iterator[list[tuple[int, int]]]:
        """Batches of (page id, revision id) of rows with data, for pool upkeep."""
        after = 0
        while True:
            rows = [(int(p), int(r)) for p, r in self._query("data_pages_after", (after, batch))]
            if rows:
                yield rows
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def iter_pool_entries(self, batch: int = 1000) -> Iterator[tuple[int, int, str]]:
        after = 0
        while True:
            rows = self._query("pool_entries_after", (after, batch))
            yield from ((int(p), int(r), self._text(t)) for p, r, t in rows)
            if len(rows) < batch:
                return
            after = int(rows[-1][0])

    def pool_titles(self, page_ids: Iterable[int]) -> dict[int, str]:
        return {int(p): self._text(t) for p, t in self._in_query("pool_titles", page_ids)}

    # -- writes (each one transaction, retried once on a transient error: idempotent)
    def _clear_page(self, cur: Any, page_id: int, title: str | None,
                    clear_event: EventFactory) -> bool:
        """Delete the page's rows; queue a clear event if search knows it. True if queued.

        Idempotent: a retry after a COMMIT that landed finds nothing left to clear."""
        cur.execute(self._sql("pool_titles", 1), (page_id,))
        found = cur.fetchall()
        cur.execute(self._sql("page_has_data"), (page_id,))
        had_data = int(cur.fetchone()[0]) > 0
        cur.execute(self._sql("delete_page_rows"), (page_id,))
        cur.execute(self._sql("pool_delete"), (page_id,))
        cur.execute(self._sql("topics_delete"), (page_id,))
        title = self._text(found[0][1]) if found else title
        if (found or had_data) and title:
            self._outbox(cur, page_id, clear_event(page_id, title), False)
            return True
        return False

    def _outbox(self, cur: Any, page_id: int, event: dict, retried: bool) -> None:
        """Queue an event; on a retried transaction not a second time (same event, same
        JSON: it is found if the first COMMIT landed)."""
        blob = json.dumps(event, ensure_ascii=False)
        if retried:
            cur.execute(self._sql("outbox_has_event"), (self.wiki, page_id, blob))
            if int(cur.fetchone()[0]):
                return
        cur.execute(self._sql("outbox_add"), (self.wiki, page_id, blob, time.time()))

    def save_recommendation(self, page_id: int, rev_id: int, title: str, data: dict,
                            set_event: dict, topics: Iterable[str] = ()) -> None:
        """Replace the page's rows by this revision's row and queue its set event;
        ``topics``: the pools (per-topic) the page counts for."""
        blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        topics = sorted(set(topics))

        def body(cur: Any, retried: bool) -> None:
            cur.execute(self._sql("delete_page_rows"), (page_id,))
            cur.execute(self._sql("replace_row"), (rev_id, page_id, blob))
            cur.execute(self._sql("pool_put"), (page_id, rev_id, title, time.time()))
            cur.execute(self._sql("topics_delete"), (page_id,))
            for topic in topics:
                cur.execute(self._sql("topic_put"), (page_id, topic))
            self._outbox(cur, page_id, set_event, retried)

        self._unit(body)

    def save_null(self, page_id: int, rev_id: int, title: str,
                  clear_event: EventFactory) -> None:
        """Record "evaluated, nothing usable" for this revision (a NULL row)."""
        def body(cur: Any, retried: bool) -> None:
            self._clear_page(cur, page_id, title, clear_event)
            cur.execute(self._sql("replace_row"), (rev_id, page_id, None))

        self._unit(body)

    def remove_pages(self, pages: Iterable[tuple[int, str | None]],
                     clear_event: EventFactory) -> int:
        """Delete rows of these pages and queue clear events; returns events queued."""
        pages = list(pages)
        return self._unit(lambda cur, retried: sum(
            self._clear_page(cur, p, t, clear_event) for p, t in pages))

    def delete_null_row(self, page_id: int, rev_id: int) -> None:
        def body(cur: Any, retried: bool) -> None:
            cur.execute(self._sql("row_by_revision"), (rev_id,))
            rows = cur.fetchall()
            if rows and rows[0][1] is None:
                cur.execute(self._sql("delete_page_rows"), (page_id,))

        self._unit(body)

    def queue_events(self, events: Iterable[tuple[int, dict]],
                     pool: Iterable[tuple[int, int, str]] = ()) -> None:
        """Queue events (drift repair) and record pages now tagged; one transaction."""
        events, pool = list(events), list(pool)

        def body(cur: Any, retried: bool) -> None:
            for page_id, rev_id, title in pool:
                cur.execute(self._sql("pool_put"), (page_id, rev_id, title, time.time()))
            for page_id, event in events:
                self._outbox(cur, page_id, event, retried)

        self._unit(body)

    def forget_pool_entries(self, page_ids: Iterable[int]) -> None:
        ids = list(page_ids)
        self._unit(lambda cur, retried: [cur.execute(self._sql("pool_delete"), (p,))
                                         for p in ids])

    # -- outbox
    def pending_events(self, limit: int) -> list[PendingEvent]:
        rows = self._query("outbox_pending", (self.wiki, limit))
        return [PendingEvent(int(i), json.loads(self._text(e)), int(a)) for i, e, a in rows]

    def head_events(self, limit: int) -> list[PendingEvent]:
        """The oldest pending event of each page, oldest first: what may be sent now without
        overtaking an earlier event of the same page."""
        rows = self._query("outbox_heads", (self.wiki, limit))
        return [PendingEvent(int(i), json.loads(self._text(e)), int(a)) for i, e, a in rows]

    def ack_events(self, ids: Sequence[int]) -> None:
        """The sink acknowledged these: they leave the outbox, and each page's acknowledged
        search state (``addlink_acked``) becomes its latest acknowledged event's."""
        ids = list(ids)

        def body(cur: Any, retried: bool) -> None:
            now = time.time()
            for chunk in _chunks(ids, self.max_in):
                cur.execute(self._sql("outbox_events", len(chunk)), tuple(chunk))
                for _, page, blob in sorted(cur.fetchall()):
                    event = json.loads(self._text(blob))
                    tagged = 1 if "set" in (event.get("weighted_tags") or {}) else 0
                    title = (event.get("page") or {}).get("page_title") or ""
                    cur.execute(self._sql("acked_put"), (int(page), tagged, title, now))
                cur.execute(self._sql("outbox_ack", len(chunk)), tuple(chunk))

        self._unit(body)

    def fail_events(self, failures: dict[int, str]) -> None:
        """Dead-letter these events (rejected as invalid), with the sink's reason."""
        self._unit(lambda cur, retried: [cur.execute(self._sql("outbox_fail"),
                                                     (error[:2000], ev_id))
                                         for ev_id, error in failures.items()])

    def retry_events(self, ids: Sequence[int], error: str) -> None:
        ids = list(ids)
        self._unit(lambda cur, retried: [
            cur.execute(self._sql("outbox_retry", len(chunk)), (error[:2000], *chunk))
            for chunk in _chunks(ids, self.max_in)])

    def outbox_counts(self) -> dict[str, int]:
        """pending (to send) and failed (dead letters) events of this wiki."""
        counts = {"pending": 0, "failed": 0}
        for state, n in self._query("outbox_counts", (self.wiki,)):
            counts[self._text(state)] = int(n)
        return counts

    def dead_letter_pages(self) -> set[int]:
        return {int(p) for (p,) in self._query("outbox_dead_pages", (self.wiki,))}

    def pending_pages(self) -> set[int]:
        return {int(p) for (p,) in self._query("outbox_pending_pages", (self.wiki,))}

    def forget_dead_letters(self) -> None:
        """Drift repaired the pages of the dead letters: they are no longer needed."""
        self._unit(lambda cur, retried: cur.execute(self._sql("outbox_forget_dead"),
                                                    (self.wiki,)))

    def iter_acked(self, batch: int = 1000) -> Iterator[tuple[int, bool, str]]:
        """(page id, tagged, title) as the sink last acknowledged, in page order."""
        after = 0
        while True:
            rows = self._query("acked_after", (after, batch))
            yield from ((int(p), bool(int(t)), self._text(x)) for p, t, x in rows)
            if len(rows) < batch:
                return
            after = int(rows[-1][0])

    def acked_since(self, when: float) -> set[int]:
        """Pages whose latest event the sink acknowledged at or after ``when`` (unix time):
        the search index may not have applied it yet."""
        return {int(p) for (p,) in self._query("acked_since", (when,))}

    # -- run log and resume points
    def start_run(self, command: str, shard: str = "") -> int:
        def body(cur: Any, retried: bool) -> int:
            cur.execute(self._sql("run_start"), (self.wiki, command, shard, time.time()))
            return int(cur.lastrowid)

        return self._unit(body)

    def finish_run(self, run_id: int, status: str, stop_reason: str | None,
                   outcomes: dict[str, int], pool_size: int | None) -> None:
        args = (time.time(), status, stop_reason, json.dumps(outcomes, sort_keys=True),
                pool_size, run_id)
        self._unit(lambda cur, retried: cur.execute(self._sql("run_finish"), args))

    def last_run(self, command: str | None = None) -> dict | None:
        """The latest run recorded (of ``command`` only, if given); None: none yet."""
        rows = self._query("last_run_of", (self.wiki, command)) if command \
            else self._query("last_run", (self.wiki,))
        if not rows:
            return None
        keys = ("id", "command", "shard", "started", "finished", "status", "stop_reason",
                "outcomes", "pool_size")
        run = {k: self._text(v) for k, v in zip(keys, rows[0], strict=True)}
        run["outcomes"] = json.loads(run["outcomes"]) if run["outcomes"] else {}
        return run

    def resume_point(self, key: str) -> int | None:
        rows = self._query("resume_get", (self.wiki, key))
        return int(rows[0][0]) if rows else None

    def set_resume_point(self, key: str, page_id: int | None) -> None:
        def body(cur: Any, retried: bool) -> None:
            if page_id is None:
                cur.execute(self._sql("resume_clear"), (self.wiki, key))
            else:
                cur.execute(self._sql("resume_set"), (self.wiki, key, page_id, time.time()))

        self._unit(body)


def _describe(error: BaseException) -> str:
    """One line for a driver error: pymysql's (code, message) args read as 'code message'."""
    args = getattr(error, "args", ())
    if len(args) == 2 and isinstance(args[0], int):
        return f"{type(error).__name__} {args[0]}: {args[1] or 'connection lost'}"
    return f"{type(error).__name__}: {error}"

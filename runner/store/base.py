"""The store interface over one wiki's tables; SQLite and MySQL differ only in connecting.

Every write method is one transaction: a cache row and the search event about it are
committed together into the outbox (SPEC §5 "store the row and emit the event, in one
unit"); the publisher sends outbox events afterwards, so a failed delivery never leaves a
row without its event or an event without its row.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUERIES_DIR = Path(__file__).resolve().parents[2] / "queries"

EventFactory = Callable[[int, str], dict]  # (page_id, title) -> event


class StoreError(RuntimeError):
    """The store could not be opened or used; the message says which and why."""


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


def schema_statements(autoinc_pk: str, table_options: str) -> list[str]:
    text = (QUERIES_DIR / "schema.sql").read_text(encoding="utf-8")
    text = "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("--"))
    text = text.replace("{autoinc_pk}", autoinc_pk).replace("{table_options}", table_options)
    return [s.strip() for s in re.split(r";\s*$", text, flags=re.M) if s.strip()]


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

    def __init__(self, conn: Any, wiki: str, location: str) -> None:
        self.conn = conn
        self.wiki = wiki
        self.location = location
        self.db_seconds = 0.0  # time spent in transactions, read by the metrics timer

    # -- dialect hooks
    def _begin(self, cur: Any) -> None:
        raise NotImplementedError

    def _apply_schema(self) -> None:
        with self.transaction() as cur:
            for stmt in schema_statements(self.autoinc_pk, self.table_options):
                cur.execute(stmt)

    def close(self) -> None:
        self.conn.close()

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
            self.conn.rollback()
            raise
        finally:
            cur.close()
            self.db_seconds += time.perf_counter() - t0

    def _query(self, name: str, args: Sequence = (), n: int = 0) -> list[tuple]:
        with self.transaction() as cur:
            cur.execute(self._sql(name, n), tuple(args))
            return list(cur.fetchall())

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

    def row_counts(self) -> dict[str, int]:
        counts = {"with_data": 0, "null": 0}
        for has_data, n in self._query("row_counts"):
            counts["with_data" if int(has_data) else "null"] = int(n)
        return counts

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

    # -- writes (each one transaction)
    def _clear_page(self, cur: Any, page_id: int, title: str | None,
                    clear_event: EventFactory) -> bool:
        """Delete the page's rows; queue a clear event if search knows it. True if queued."""
        cur.execute(self._sql("pool_titles", 1), (page_id,))
        found = cur.fetchall()
        cur.execute(self._sql("page_has_data"), (page_id,))
        had_data = int(cur.fetchone()[0]) > 0
        cur.execute(self._sql("delete_page_rows"), (page_id,))
        cur.execute(self._sql("pool_delete"), (page_id,))
        title = self._text(found[0][1]) if found else title
        if (found or had_data) and title:
            self._outbox(cur, page_id, clear_event(page_id, title))
            return True
        return False

    def _outbox(self, cur: Any, page_id: int, event: dict) -> None:
        cur.execute(self._sql("outbox_add"),
                    (self.wiki, page_id, json.dumps(event, ensure_ascii=False), time.time()))

    def save_recommendation(self, page_id: int, rev_id: int, title: str, data: dict,
                            set_event: dict) -> None:
        """Replace the page's rows by this revision's row and queue its set event."""
        blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with self.transaction() as cur:
            cur.execute(self._sql("delete_page_rows"), (page_id,))
            cur.execute(self._sql("replace_row"), (rev_id, page_id, blob))
            cur.execute(self._sql("pool_put"), (page_id, rev_id, title, time.time()))
            self._outbox(cur, page_id, set_event)

    def save_null(self, page_id: int, rev_id: int, title: str,
                  clear_event: EventFactory) -> None:
        """Record "evaluated, nothing usable" for this revision (a NULL row)."""
        with self.transaction() as cur:
            self._clear_page(cur, page_id, title, clear_event)
            cur.execute(self._sql("replace_row"), (rev_id, page_id, None))

    def remove_pages(self, pages: Iterable[tuple[int, str | None]],
                     clear_event: EventFactory) -> int:
        """Delete rows of these pages and queue clear events; returns events queued."""
        queued = 0
        with self.transaction() as cur:
            for page_id, title in pages:
                queued += self._clear_page(cur, page_id, title, clear_event)
        return queued

    def delete_null_row(self, page_id: int, rev_id: int) -> None:
        with self.transaction() as cur:
            cur.execute(self._sql("row_by_revision"), (rev_id,))
            rows = cur.fetchall()
            if rows and rows[0][1] is None:
                cur.execute(self._sql("delete_page_rows"), (page_id,))

    def queue_events(self, events: Iterable[tuple[int, dict]],
                     pool: Iterable[tuple[int, int, str]] = ()) -> None:
        """Queue events (drift repair) and record pages now tagged; one transaction."""
        with self.transaction() as cur:
            for page_id, rev_id, title in pool:
                cur.execute(self._sql("pool_put"), (page_id, rev_id, title, time.time()))
            for page_id, event in events:
                self._outbox(cur, page_id, event)

    def forget_pool_entries(self, page_ids: Iterable[int]) -> None:
        with self.transaction() as cur:
            for page_id in page_ids:
                cur.execute(self._sql("pool_delete"), (page_id,))

    # -- outbox
    def pending_events(self, limit: int) -> list[PendingEvent]:
        rows = self._query("outbox_pending", (self.wiki, limit))
        return [PendingEvent(int(i), json.loads(self._text(e)), int(a)) for i, e, a in rows]

    def ack_events(self, ids: Sequence[int]) -> None:
        with self.transaction() as cur:
            for chunk in _chunks(list(ids), self.max_in):
                cur.execute(self._sql("outbox_ack", len(chunk)), tuple(chunk))

    def fail_events(self, failures: dict[int, str]) -> None:
        with self.transaction() as cur:
            for ev_id, error in failures.items():
                cur.execute(self._sql("outbox_fail"), (error[:2000], ev_id))

    def retry_events(self, ids: Sequence[int], error: str) -> None:
        with self.transaction() as cur:
            for chunk in _chunks(list(ids), self.max_in):
                cur.execute(self._sql("outbox_retry", len(chunk)), (error[:2000], *chunk))

    def outbox_counts(self) -> dict[str, int]:
        counts = {"pending": 0, "failed": 0}
        for state, n in self._query("outbox_counts", (self.wiki,)):
            counts[self._text(state)] = int(n)
        return counts

    # -- run log and resume points
    def start_run(self, command: str, shard: str = "") -> int:
        with self.transaction() as cur:
            cur.execute(self._sql("run_start"), (self.wiki, command, shard, time.time()))
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str, stop_reason: str | None,
                   outcomes: dict[str, int], pool_size: int | None) -> None:
        with self.transaction() as cur:
            cur.execute(self._sql("run_finish"), (time.time(), status, stop_reason,
                                                  json.dumps(outcomes, sort_keys=True),
                                                  pool_size, run_id))

    def last_run(self) -> dict | None:
        rows = self._query("last_run", (self.wiki,))
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
        with self.transaction() as cur:
            if page_id is None:
                cur.execute(self._sql("resume_clear"), (self.wiki, key))
            else:
                cur.execute(self._sql("resume_set"), (self.wiki, key, page_id, time.time()))

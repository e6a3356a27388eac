"""Search-update events (SPEC §4) and their delivery from the outbox to a sink.

Events follow ``page_weighted_tags_change-1.0.0``: a page entering the pool gets
``weighted_tags.set = {"recommendation.link": [{"tag": "exists"}]}``, a page leaving it
``weighted_tags.clear = ["recommendation.link"]``. They are built when their row is written
(into the outbox, same transaction) and delivered by ``Publisher.drain``; only events the
sink acknowledged leave the outbox, so delivery is at least once.

Per-page order is a guarantee: a request carries only the oldest pending event of each page
(``Store.head_events``), so whatever the sink answers (207 partial acceptance, a timeout
after accepting), no event of a page is delivered before an earlier one of the same page.
An event rejected as invalid becomes a dead letter (state 'failed', with the reason); the
page's next event may then go, and ``drift`` repairs the page against what the sink
acknowledged (``addlink_acked``).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import requests

from runner import metric_names as M
from runner.config import EventsSection
from runner.metrics import Metrics
from runner.store.base import Store

TAG_PREFIX = "recommendation.link"
TAG = "exists"

log = logging.getLogger("runner.events")


def _now_iso(now: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class EventFactory:
    """Builds one wiki's events; configured once, used by the store writes."""

    wiki: str
    stream: str
    schema_uri: str
    domain: str | None = None

    def _base(self, page_id: int, title: str, now: float | None) -> dict:
        dt = _now_iso(now)
        meta: dict = {"stream": self.stream, "dt": dt, "id": str(uuid.uuid4())}
        if self.domain:
            meta["domain"] = self.domain
        return {
            "$schema": self.schema_uri,
            "dt": dt,
            "meta": meta,
            "wiki_id": self.wiki,
            "page": {"page_id": int(page_id), "page_title": title, "namespace_id": 0,
                     "is_redirect": False},
            "rev_based": False,  # a tag change, not a new revision: no merge needed
        }

    def set(self, page_id: int, title: str, now: float | None = None) -> dict:
        ev = self._base(page_id, title, now)
        ev["weighted_tags"] = {"set": {TAG_PREFIX: [{"tag": TAG}]}}
        return ev

    def clear(self, page_id: int, title: str, now: float | None = None) -> dict:
        ev = self._base(page_id, title, now)
        ev["weighted_tags"] = {"clear": [TAG_PREFIX]}
        return ev


# ---------------------------------------------------------------------------- sinks


@dataclass
class SendResult:
    """Per event of a batch (by position): acknowledged, rejected for good, or to retry."""

    accepted: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    retry: list[int] = field(default_factory=list)
    error: str = ""  # why the retry ones were not delivered


class Sink(Protocol):
    def send(self, events: list[dict], timeout: float | None = None) -> SendResult: ...

    def close(self) -> None: ...


class JsonLinesSink:
    """Appends one JSON event per line and fsyncs: the offline default of ``make run``."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)  # its directory is made at the first send: a dry run makes none

    def send(self, events: list[dict], timeout: float | None = None) -> SendResult:
        data = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n"
                       for e in events).encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as f:
                _drop_partial_line(f)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            return SendResult(retry=list(range(len(events))), error=f"{self.path}: {e}")
        return SendResult(accepted=list(range(len(events))))

    def close(self) -> None:
        pass


def _drop_partial_line(f: object) -> None:
    """A process killed mid-write leaves a line cut short; those events were not
    acknowledged (they are sent again), so the cut line goes before the next append."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    with open(f.name, "rb") as r:
        pos = size
        while pos > 0:
            step = min(4096, pos)
            r.seek(pos - step)
            chunk = r.read(step)
            if pos == size and chunk.endswith(b"\n"):
                return
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                pos = pos - step + nl + 1
                break
            pos -= step
    f.truncate(pos)


class EventGateSink:
    """EventGate's HTTP contract: POST /v1/events with a JSON array (SPEC §4)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0,
                 hasty: bool = False, user_agent: str = "addlink-runner") -> None:
        self.url = url.rstrip("/") + "/v1/events" + ("?hasty=true" if hasty else "")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Content-Type"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def send(self, events: list[dict], timeout: float | None = None) -> SendResult:
        everyone = list(range(len(events)))
        limit = self.timeout if timeout is None else max(0.1, min(self.timeout, timeout))
        try:
            r = self.session.post(self.url, data=json.dumps(events, ensure_ascii=False)
                                  .encode("utf-8"), timeout=limit)
        except requests.RequestException as e:
            return SendResult(retry=everyone, error=f"{type(e).__name__}: {e}")
        if r.status_code in (201, 202):
            return SendResult(accepted=everyone)
        if r.status_code == 207:
            return self._partial(events, r)
        if r.status_code == 400:
            reason = _short(r.text) or "400 invalid"
            by_pos = self._failed_positions(events, r)
            if by_pos:
                return SendResult(rejected={i: by_pos.get(i, reason) for i in everyone})
            return SendResult(rejected=dict.fromkeys(everyone, reason))
        # 5xx, 429, or anything unexpected (auth, URL): not the events' fault, keep them.
        return SendResult(retry=everyone, error=f"HTTP {r.status_code}: {_short(r.text)}")

    @staticmethod
    def _body(r: requests.Response) -> dict:
        try:
            body = r.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _failed_positions(self, events: list[dict], r: requests.Response,
                          kind: str = "invalid") -> dict[int, str]:
        ids = {e.get("meta", {}).get("id"): i for i, e in enumerate(events)}
        out: dict[int, str] = {}
        for item in self._body(r).get(kind) or []:
            if not isinstance(item, dict):
                continue
            ev = item.get("event") or {}
            pos = ids.get(ev.get("meta", {}).get("id")) if isinstance(ev, dict) else None
            if pos is not None:
                out[pos] = _short(json.dumps(item.get("context", item.get("status", kind))))
        return out

    def _partial(self, events: list[dict], r: requests.Response) -> SendResult:
        invalid = self._failed_positions(events, r, "invalid")
        errors = self._failed_positions(events, r, "error")
        res = SendResult(rejected=invalid, error="207: " + _short(r.text))
        for i in range(len(events)):
            if i in errors:
                res.retry.append(i)
            elif i not in invalid:
                res.accepted.append(i)
        return res

    def close(self) -> None:
        self.session.close()


def _short(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "..."


def open_sink(cfg: EventsSection, wiki: str, user_agent: str = "addlink-runner") -> Sink:
    if cfg.type == "jsonlines":
        return JsonLinesSink(cfg.path.replace("{wiki}", wiki))
    return EventGateSink(cfg.url or "", token=cfg.token.reveal() if cfg.token else None,
                         timeout=cfg.timeout, hasty=cfg.hasty, user_agent=user_agent)


# ---------------------------------------------------------------------------- publisher


@dataclass
class PublishStats:
    sent: int = 0
    failed: int = 0  # rejected as invalid in this pass: dead letters (state 'failed')
    pending: int = 0  # still waiting after this pass (delivery error)
    dead: int = 0  # dead letters in the outbox after this pass (this pass's and older)
    error: str = ""


class Publisher:
    """Drains one wiki's outbox to a sink, oldest first, in batches."""

    def __init__(self, store: Store, sink: Sink, metrics: Metrics, *, batch_size: int = 100,
                 max_attempts: int = 5, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store, self.sink, self.metrics = store, sink, metrics
        self.batch_size, self.max_attempts = batch_size, max_attempts
        self.backoff, self.sleep = backoff, sleep

    def drain(self, deadline: float | None = None) -> PublishStats:
        """Send the outbox until it is empty, the retries are used up, or the monotonic
        ``deadline`` passes (after a signal: a few seconds only)."""
        stats = PublishStats()
        tries: dict[int, int] = {}
        wiki = self.store.wiki
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                stats.error = stats.error or "publish deadline reached"
                break
            batch = self.store.head_events(self.batch_size)
            if not batch:
                break
            res = self.sink.send([p.event for p in batch], timeout=left)
            if res.accepted:
                self.store.ack_events([batch[i].id for i in res.accepted])
                stats.sent += len(res.accepted)
                self.metrics.incr(M.EVENTS_SENT, len(res.accepted), wiki=wiki)
            if res.rejected:
                self.store.fail_events({batch[i].id: msg for i, msg in res.rejected.items()})
                stats.failed += len(res.rejected)
                self.metrics.incr(M.EVENTS_FAILED, len(res.rejected), wiki=wiki)
                for i, msg in res.rejected.items():
                    log.error("event rejected by the sink: dead-lettered", extra={
                        "wiki": wiki, "page_id": batch[i].event.get("page", {}).get("page_id"),
                        "error": msg})
            if res.retry:
                ids = [batch[i].id for i in res.retry]
                self.store.retry_events(ids, res.error)
                worst = max(tries.get(i, 0) + 1 for i in ids)
                for i in ids:
                    tries[i] = tries.get(i, 0) + 1
                if worst >= self.max_attempts:
                    stats.error = res.error
                    self.metrics.incr(M.ERRORS, wiki=wiki, kind="publish")
                    log.error("event delivery failed; events stay in the outbox", extra={
                        "wiki": wiki, "events": len(ids), "error": res.error})
                    break
                delay = self.backoff * 2 ** (worst - 1)
                if deadline is not None:
                    delay = min(delay, max(0.0, deadline - time.monotonic()))
                self.sleep(delay)
        counts = self.store.outbox_counts()
        stats.pending, stats.dead = counts["pending"], counts["failed"]
        self.metrics.gauge(M.EVENTS_PENDING, stats.pending, wiki=wiki)
        self.metrics.gauge(M.EVENTS_DEAD, stats.dead, wiki=wiki)
        return stats

"""A small local EventGate for the tests: validates each event against the real schema file.

Answers like EventGate (SPEC §4): 201 all accepted (202 with ``?hasty=true``), 207 when some
events are invalid (body ``{"invalid": [...], "error": [...]}`` with each failed event and
its errors), 400 when all are invalid. Tests can queue forced answers (``fail_next(503, 2)``,
also 429 or 400), mark events by page id to fail with a server-side ``error`` in a 207
(``error_pages``) or to be rejected as invalid (``invalid_pages``), and make it accept a
request's events then answer only after ``stall_next(seconds)`` (the client times out after
EventGate accepted: the duplicates at-least-once delivery allows).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import yaml

from tests.loopback import LoopbackServer

SCHEMA_PATH = (Path(__file__).resolve().parents[2] / "shared" / "schemas"
               / "page_weighted_tags_change-1.0.0.yaml")


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value


def validator() -> jsonschema.Draft7Validator:
    schema = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(_date_time)
    return jsonschema.Draft7Validator(schema, format_checker=checker)


class EventGate(LoopbackServer):
    """``with EventGate() as eg: ... eg.url ...``; ``eg.accepted`` holds valid events."""

    def __init__(self, port: int = 0) -> None:
        self.validator = validator()
        self.accepted: list[dict] = []
        self.requests: list[tuple[int, int]] = []  # (status, number of events)
        self.forced: deque[int] = deque()
        self.error_pages: set[int] = set()
        self.invalid_pages: set[int] = set()
        self.stalls: deque[float] = deque()
        # Called with each request's accepted events (the search index stand-in,
        # tests/searchindex.py, consumes them as CirrusSearch consumes the stream).
        self.subscribers: list = []
        self.lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                status, body = gate.handle(self.path, self.rfile.read(
                    int(self.headers.get("Content-Length", "0"))))
                with gate.lock:
                    stall = gate.stalls.popleft() if gate.stalls and status < 300 else 0.0
                if stall:
                    threading.Event().wait(stall)  # accepted; the answer comes too late
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

        ThreadingHTTPServer.allow_reuse_address = True
        self._listen(Handler, port)

    def fail_next(self, status: int, times: int = 1) -> None:
        with self.lock:
            self.forced.extend([status] * times)

    def stall_next(self, seconds: float, times: int = 1) -> None:
        with self.lock:
            self.stalls.extend([seconds] * times)

    def errors(self, event: dict) -> list[str]:
        return [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in self.validator.iter_errors(event)]

    def handle(self, path: str, raw: bytes) -> tuple[int, object]:
        with self.lock:
            if not path.startswith("/v1/events"):
                return 404, {"error": "not found"}
            try:
                events = json.loads(raw)
            except ValueError:
                return 400, {"error": "body is not JSON"}
            if isinstance(events, dict):
                events = [events]
            if self.forced:
                status = self.forced.popleft()
                self.requests.append((status, len(events)))
                return status, {"error": f"forced {status}"}
            invalid, error, ok = [], [], []
            for ev in events:
                errs = self.errors(ev)
                page = (ev.get("page") or {}).get("page_id") if isinstance(ev, dict) else None
                if page in self.invalid_pages:
                    errs = errs or ["page.page_id: rejected by the test"]
                if errs:
                    invalid.append({"status": "invalid", "event": ev, "context": errs})
                elif page in self.error_pages:
                    error.append({"status": "error", "event": ev, "context": "kafka timeout"})
                else:
                    ok.append(ev)
            self.accepted.extend(ok)
            for subscriber in self.subscribers:
                subscriber(ok)
            if not invalid and not error:
                status = 202 if "hasty=true" in path else 201
                self.requests.append((status, len(events)))
                return status, {}
            status = 400 if not ok and not error else 207
            self.requests.append((status, len(events)))
            return status, {"invalid": invalid, "error": error}

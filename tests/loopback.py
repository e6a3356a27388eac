"""The one way the tests' HTTP stand-ins listen: a server on loopback in a daemon thread.

EventGate, the CirrusSearch stand-in and the scripted Action API each answer their own
protocol; how they bind, start and stop is the same, and lives here.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LoopbackServer:
    """Base of a stand-in: ``_listen`` binds it, ``with`` serves it and shuts it down."""

    server: ThreadingHTTPServer
    url: str
    thread: threading.Thread

    def _listen(self, handler: type[BaseHTTPRequestHandler], port: int = 0,
                path: str = "") -> None:
        """Bind 127.0.0.1:``port`` (0: any free port); ``url`` is its address + ``path``."""
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

"""A loopback TCP proxy that injects network faults between the runner and one service.

``with TcpProxy(3306) as p: ... p.port ...``: the runner is configured to connect to
``127.0.0.1:p.port`` instead of the service. Modes (``p.set(mode)``, any time):

- ``pass``: relay both ways;
- ``stall``: a silent partition: connections stay open, nothing is relayed either way,
  new connections are accepted and never answered (the worst case: no error, ever);
- ``cut``: every connection is closed (FIN) and new ones are closed at once;
- ``reset``: every connection is reset (RST) and new ones are reset at once;
- ``reset_after_commit``: relay, but once the client sends a MySQL ``COMMIT`` it reaches
  the server (the commit happens) and the client's connection is then reset before the
  answer: the transaction landed and the client cannot know. Once only, then ``pass``.

Only ever binds 127.0.0.1; one thread per direction per connection.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.commits_reset = 0
        self._lock = threading.Lock()
        self._conns: list[tuple[socket.socket, socket.socket]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._hold = False  # reset_after_commit: answers held back (never reach the client)
        self._thread = threading.Thread(target=self._accept, daemon=True, name="tcpproxy")

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self._drop_all(reset=False)

    def set(self, mode: str) -> None:
        assert mode in ("pass", "stall", "cut", "reset", "reset_after_commit"), mode
        self.mode = mode
        if mode in ("cut", "reset"):
            self._drop_all(reset=mode == "reset")

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _close(s: socket.socket, reset: bool) -> None:
        """FIN, or RST (linger 0). shutdown() first: a plain close() of a socket another
        thread is blocked reading would only take effect once that read returns."""
        with contextlib.suppress(OSError):
            if reset:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RD if reset else socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()

    def _drop_all(self, reset: bool) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for a, b in conns:
            self._close(a, reset)
            self._close(b, reset)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode in ("cut", "reset"):
                self._close(client, reset=self.mode == "reset")
                continue
            if self.mode == "stall":
                with self._lock:  # held open, never answered
                    self._conns.append((client, client))
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                self._close(client, reset=True)
                continue
            with self._lock:
                self._conns.append((client, upstream))
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(src, dst, up, client, upstream),
                                 daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upward: bool,
              client: socket.socket, upstream: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            while (self.mode == "stall" or (self._hold and not upward)) and not self._closed:
                threading.Event().wait(0.05)  # hold the bytes: a silent partition
            if self.mode in ("cut", "reset") or self._closed:
                break
            commit = upward and self.mode == "reset_after_commit" and b"COMMIT" in data.upper()
            if commit:
                self._hold = True  # the server's OK must not reach the client
            try:
                dst.sendall(data)
            except OSError:
                break
            if commit:
                threading.Event().wait(0.3)  # let the server commit
                self.commits_reset += 1
                self.mode = "pass"
                self._close(client, reset=True)
                self._close(upstream, reset=False)
                self._hold = False
                return
        self._close(dst, reset=False)

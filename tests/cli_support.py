"""Running the real command lines: in a pseudo-terminal (what a person at a terminal sees)
or with pipes (what a CronJob or CI sees)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A log record's time in both formats: UTC, milliseconds.
TIME_MS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
TEXT_RECORD = re.compile(rf"^{TIME_MS} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ", re.M)


def in_terminal(*args: str, cwd: Path = REPO, env: dict | None = None,
                timeout: float = 600) -> tuple[int, str]:
    """``python ARGS`` with stdin, stdout and stderr on a pseudo-terminal (120 columns).
    Returns the exit code and everything the terminal received (CR LF made LF)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{args} still running after {timeout} s")
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal closed it
                break
            if not data:
                break
            chunks.append(data)
    finally:
        if proc.poll() is None and time.monotonic() > deadline:
            proc.kill()
        code = proc.wait(timeout=60)
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def piped(*args: str, cwd: Path = REPO, env: dict | None = None,
          timeout: float = 600) -> subprocess.CompletedProcess:
    """``python ARGS`` with pipes: no terminal anywhere."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def bar_states(output: str, desc: str) -> list[str]:
    """Every state a tqdm bar named ``desc`` was drawn in (its redraws are CR-separated)."""
    return [piece.strip() for piece in re.split(r"[\r\n]", output)
            if piece.strip().startswith(f"{desc}:")]

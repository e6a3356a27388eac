"""A real gunicorn serving ``service.app:create_app()`` on loopback, for tests and benchmarks.

``Gunicorn(config_dict, workers=1)`` writes the config, starts gunicorn with the project's
``service/gunicorn_conf.py`` on a free 127.0.0.1 port (multiprocess metrics directory in a
temporary folder), waits for ``/healthz``, and stops it with SIGTERM on exit. Its stdout
(the JSON logs) is kept in ``log_path``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, config: dict, workers: int = 1, env: dict | None = None,
                 start_timeout: float = 60.0) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="addlink-service-"))
        self.config_path = self.dir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config, allow_unicode=True))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = env or {}
        self.start_timeout = start_timeout
        self.log_path = self.dir / "stdout.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        metrics_dir = self.dir / "prometheus"
        metrics_dir.mkdir()
        env = {**os.environ, "ADDLINK_CONFIG": str(self.config_path),
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PYTHONPATH": str(REPO),
               "GUNICORN_BIND": f"127.0.0.1:{self.port}",
               "GUNICORN_WORKERS": str(self.workers), **self.env}
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            [str(GUNICORN), "-c", str(REPO / "service" / "gunicorn_conf.py"),
             "service.app:create_app()"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"gunicorn did not answer /healthz within {self.start_timeout} s")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the gunicorn master)."""
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def logs(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8").splitlines()

"""Worker processes that compute recommendations, one model opened once per process.

Each worker is a process with its own pipe, so the parent can give it one page at a time,
wait on all of them at once, and replace just the one that crashed or hung:

- soft budget: the worker arms ``SIGALRM`` for ``page_timeout`` seconds; a page that runs
  over raises inside the worker, which reports it and stays alive;
- hard budget: if no answer comes ``grace`` seconds later (stuck in C code), or the process
  dies (segfault, OOM kill, ``os._exit``), the parent kills it and starts a fresh one.
Either way the page is reported as failed (outcome ``other``) and the run goes on.

Workers start from a ``forkserver``: never forked from a parent that holds threads
(ZooKeeper client) or open connections.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger("runner.workers")

DEFAULT_RECOMMENDER = "runner.workers:model_recommender"


@dataclass(frozen=True)
class Task:
    key: int
    title: str
    page_id: int
    rev_id: int
    wikitext: str


@dataclass(frozen=True)
class TaskResult:
    key: int
    ok: bool
    recommendation: dict | None = field(default=None, compare=False)
    error: str = ""
    seconds: float = 0.0
    worker: int = 0


class WorkerError(RuntimeError):
    """The workers could not start (e.g. the model cannot be opened)."""


class PageTimeout(Exception):
    pass


def model_recommender(model_path: str, options: dict) -> Callable[[Task], dict]:
    """The production recommender: ``model.open_model`` once, ``model.recommend`` per page."""
    from model import open_model, recommend

    options = dict(options)
    expected = options.pop("expect_checksums", None)
    model = open_model(model_path, store=options.pop("datasets_url", None))
    if expected is not None and dict(model.checksums) != dict(expected):
        raise ValueError(f"{model_path}: manifest checksums changed since the preflight "
                         "verified them")

    def run(task: Task) -> dict:
        return recommend(model, task.wikitext, title=task.title, pageid=task.page_id,
                         revid=task.rev_id, **options)

    return run


def _load(spec: str) -> Callable[[str, dict], Callable[[Task], dict]]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _on_alarm(signum: int, frame: Any) -> None:
    raise PageTimeout()


def _tell(conn: Connection, msg: tuple) -> bool:
    """Send ``msg`` to the parent; False when its end is closed. The parent closes a pipe when
    it stops (at another worker's start-up failure, too): this worker then has nothing left
    to tell, and a BrokenPipeError traceback would reach the user's terminal."""
    try:
        conn.send(msg)
    except OSError:
        return False
    return True


def _worker_main(conn: Connection, spec: str, model_path: str, options: dict,
                 budget: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # (a signal to the whole process group)
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        run = _load(spec)(model_path, options)
    except BaseException as e:  # noqa: BLE001 - report any start-up failure to the parent
        _tell(conn, ("init_error", f"{type(e).__name__}: {e}"))
        return
    if not _tell(conn, ("ready", os.getpid())):
        return
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, budget)
        try:
            rec = run(task)
            msg = ("ok", task.key, rec, "")
        except PageTimeout:
            msg = ("error", task.key, None, f"time budget of {budget:g} s exceeded")
        except Exception as e:  # noqa: BLE001 - one bad page must not stop the worker
            msg = ("error", task.key, None, f"{type(e).__name__}: {e}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if not _tell(conn, (*msg, time.perf_counter() - t0)):
            return


@dataclass
class _Slot:
    process: Any
    conn: Connection
    task: Task | None = None
    deadline: float = 0.0
    started: float = 0.0


class WorkerPool:
    """A fixed number of worker processes; ``submit`` to an idle one, ``wait`` for results."""

    def __init__(self, model_path: str, *, workers: int, page_timeout: float,
                 options: dict | None = None, recommender: str = DEFAULT_RECOMMENDER,
                 grace: float = 10.0, start_timeout: float = 300.0) -> None:
        self.model_path = model_path
        self.size = max(1, workers)
        self.page_timeout = page_timeout
        self.options = dict(options or {})
        self.recommender = recommender
        self.grace = grace
        self.start_timeout = start_timeout
        # One compute thread per worker: the parallelism comes from the worker processes.
        # xgboost (OpenMP) and BLAS would otherwise each start a thread per core, and N
        # workers would fight over the same cores (measured: 1.2x instead of 1.8x with 2).
        # Read when the fork server starts (it imports the model), so set it before.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        self.ctx = mp.get_context("forkserver")
        # Workers fork from a server that already imported the heavy modules: a replacement
        # for a crashed worker starts in well under a second.
        self.ctx.set_forkserver_preload(["runner.workers", "model"])
        self.slots: list[_Slot] = []
        self.restarts = 0

    # -- lifecycle
    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        pending = [self._spawn() for _ in range(self.size)]
        for slot in pending:
            self._await_ready(slot)
        self.slots = pending

    def _spawn(self) -> _Slot:
        parent, child = self.ctx.Pipe(duplex=True)
        p = self.ctx.Process(target=_worker_main, name="addlink-worker", daemon=True,
                             args=(child, self.recommender, self.model_path, self.options,
                                   self.page_timeout))
        p.start()
        child.close()
        return _Slot(p, parent)

    def _await_ready(self, slot: _Slot) -> None:
        ready = wait([slot.conn, slot.process.sentinel], timeout=self.start_timeout)
        msg: tuple = ("init_error", "no answer")
        if slot.conn in ready:
            try:
                msg = slot.conn.recv()
            except EOFError:
                msg = ("init_error", f"worker exited with code {slot.process.exitcode}")
        elif ready:
            msg = ("init_error", f"worker exited with code {slot.process.exitcode}")
        if msg[0] != "ready":
            self._kill(slot)
            self.close()
            raise WorkerError(f"worker could not open the model {self.model_path}: {msg[1]}")

    def close(self) -> None:
        """Idle workers exit when told; busy ones (pages abandoned after a signal) are
        killed at once, so closing never waits for a page."""
        for slot in self.slots:
            if slot.task is None:
                with contextlib.suppress(BrokenPipeError, OSError):
                    slot.conn.send(None)
        for slot in self.slots:
            if slot.task is None:
                slot.process.join(timeout=5)
            self._kill(slot)
        self.slots = []

    @staticmethod
    def _kill(slot: _Slot) -> None:
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join(timeout=5)
        slot.conn.close()

    def _replace(self, i: int) -> None:
        self._kill(self.slots[i])
        slot = self._spawn()
        self._await_ready(slot)
        self.slots[i] = slot
        self.restarts += 1

    # -- work
    @property
    def idle(self) -> int:
        return sum(1 for s in self.slots if s.task is None)

    @property
    def busy(self) -> int:
        return self.size - self.idle

    def submit(self, task: Task) -> bool:
        for slot in self.slots:
            if slot.task is None:
                now = time.monotonic()
                slot.task, slot.started = task, now
                slot.deadline = now + self.page_timeout + self.grace
                with contextlib.suppress(BrokenPipeError, OSError):
                    slot.conn.send(task)  # a dead worker is found by the next wait()
                return True
        return False

    def wait(self, timeout: float | None = None) -> list[TaskResult]:
        """Results that are ready within ``timeout``; crashes and hangs become failures."""
        busy = [s for s in self.slots if s.task is not None]
        if not busy:
            return []
        now = time.monotonic()
        nearest = min(s.deadline for s in busy) - now
        limit = max(0.0, nearest if timeout is None else min(timeout, nearest))
        objs: list[Any] = [s.conn for s in busy] + [s.process.sentinel for s in busy]
        ready = set(wait(objs, timeout=limit))
        results: list[TaskResult] = []
        now = time.monotonic()
        for i, slot in enumerate(self.slots):
            task = slot.task
            if task is None:
                continue
            if slot.conn in ready:
                try:
                    kind, key, rec, err, secs = slot.conn.recv()
                except (EOFError, OSError):
                    kind = "died"
                else:
                    slot.task = None
                    results.append(TaskResult(key, kind == "ok", rec, err, secs,
                                              slot.process.pid or 0))
                    continue
            else:
                kind = "died" if slot.process.sentinel in ready else (
                    "hung" if now >= slot.deadline else "")
            if not kind:
                continue
            pid = slot.process.pid or 0
            if kind == "died":
                slot.process.join(timeout=1)
                error = f"worker died (exit code {slot.process.exitcode})"
            else:
                error = f"no answer within {self.page_timeout + self.grace:g} s; worker killed"
            log.error("worker lost a page", extra={"title": task.title, "error": error})
            results.append(TaskResult(task.key, False, None, error,
                                      now - slot.started, pid))
            slot.task = None
            self._replace(i)
        return results

    def pids(self) -> list[int]:
        return [s.process.pid for s in self.slots if s.process.pid]


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0

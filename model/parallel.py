"""An ordered, bounded map of a per-article function over N worker processes, and stage clocks.

Training's per-article stages (parsing, anchor counting, training pairs) are independent per
article, and so are the parts of a dump in part files, the cross-fitting folds and the
classifier fits; what joins them (counters, the corpus file, the training matrix) is merged
in the main process in input order (the dump's order of articles), so the result is the
same bytes for any number of workers. Workers are forked per stage, after the stage's
read-only state (title tables, anchor dictionaries, vectors) is built: they inherit it
instead of receiving it pickled, and only the articles and their results cross a pipe.
At most ``workers * WINDOW`` batches are in flight, so memory does not grow with the dump.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BATCH = 16  # articles per message: amortizes the pipe without holding many long pages
WINDOW = 4  # batches in flight per worker: keeps workers busy while the reader is slow

_task: Callable[[Any], Any] | None = None  # the stage's function, inherited through fork

INTERRUPTS: list[int] = []  # the SIGINTs a command's handler has seen (model/__main__.py)


def checkpoint() -> None:
    """Raise the KeyboardInterrupt of a Ctrl-C whose exception was lost.

    A signal handler's exception is raised in whatever Python code runs next, and some
    places swallow it: seen, a SIGINT landing in logging's after-fork hook while a stage
    forked its workers printed "Exception ignored" and training went on to write its model
    (exit 0). The handler records each SIGINT in ``INTERRUPTS``; the stages and the final
    install call this, so a lost one still stops the command before it commits anything.
    Only reached on the normal path: while the first KeyboardInterrupt propagates, no
    checkpoint runs, so it is never raised twice."""
    if INTERRUPTS:
        raise KeyboardInterrupt


def available_cpus() -> int:
    """CPUs this process may use: affinity, capped by a cgroup v2 CPU quota (a Kubernetes
    CPU limit), which ``os.cpu_count()`` does not see (it reports the node's cores)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n or 1, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n or 1)


def _private_bytes() -> int:
    """This process's own memory (USS: private pages), not the pages shared with its parent."""
    total = 0
    try:
        with open("/proc/self/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1]) * 1024
    except OSError:
        pass
    return total


PRIVATE_EVERY = 2.0  # seconds between a worker's samples of its private memory
_sampled = -PRIVATE_EVERY  # when this worker last sampled it (inherited: any first batch does)


def _run_batch(batch: list) -> tuple[list, int]:
    """A batch's results, and now and then the worker's private memory (0 when not sampled).

    Reading smaps_rollup walks the process's page tables: about 10 ms at 400 MB, and it was
    done after every batch, which made 2 workers spend more system time than the stages'
    work at 10^4 articles (21 s of system time against 4 s in one process).
    """
    global _sampled
    assert _task is not None
    out = [_task(item) for item in batch]
    now = time.monotonic()
    if now - _sampled < PRIVATE_EVERY:
        return out, 0
    _sampled = now
    return out, _private_bytes()


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int, batch: int = BATCH
) -> Iterator[R]:
    """``map(fn, items)`` computed by ``workers`` forked processes, yielded in input order.

    ``fn`` may be a closure over large read-only state: it is not pickled but inherited by
    the workers, which are forked here (so state built after this call is not theirs). With
    one worker it runs in this process, which is the reference the others must equal.
    """
    global _task
    if workers <= 1:
        yield from map(fn, items)
        return
    _task = fn
    # Objects that exist now are the workers' read-only inheritance: frozen out of the cyclic
    # garbage collector, whose full collections in each worker would otherwise walk (and so
    # copy, page by page, through reference counts) every one of them.
    gc.freeze()
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pending: deque = deque()
            source = iter(items)
            while chunk := list(islice(source, batch)):
                pending.append(pool.apply_async(_run_batch, (chunk,)))
                while len(pending) >= workers * WINDOW:
                    yield from _collect(pending.popleft())
            while pending:
                yield from _collect(pending.popleft())
            pool.close()  # workers exit and are reaped: their CPU time counts for the stage
            pool.join()
    finally:
        _task = None
        gc.unfreeze()


class Background:
    """``fn()`` computed in one forked process while this one goes on; ``result()`` waits.

    For a serial step whose input is ready before the stages that need it: it then runs
    beside them instead of between them. A bare fork, not a ``multiprocessing.Process``:
    multiprocessing reaps its finished children whenever it starts another (each stage's
    pool does), which put the step's CPU time into whichever stage came next; here the
    child is reaped by ``result()``, so its CPU counts for the stage that waits for it.
    """

    def __init__(self, fn: Callable[[], Any]):
        self._receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
        gc.freeze()  # the child's collector leaves this process's objects alone (see above)
        try:
            self._pid = os.fork()
            if self._pid == 0:  # the child: compute, send, leave without any cleanup
                try:
                    self._receive.close()
                    _orphan_proof()
                    _background(fn, send)
                finally:
                    os._exit(0)
        finally:
            gc.unfreeze()
        send.close()
        _live.add(self._pid)

    def result(self) -> Any:
        try:
            ok, value = self._receive.recv()
        except EOFError:
            raise RuntimeError("a background step's process ended without its result") from None
        finally:
            self._receive.close()
            os.waitpid(self._pid, 0)
            _live.discard(self._pid)
        if not ok:
            raise value
        return value


_live: set[int] = set()  # background children not yet reaped by result()


def stop_background() -> None:
    """Kill and reap every background step still running.

    Called when this process gives up (Ctrl-C, an error) before it prints its one-line
    ending: a Punkt child left running would outlive the command and write its own log
    records after that line (and hold its memory) for minutes.
    """
    for pid in list(_live):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        _live.discard(pid)


def _orphan_proof() -> None:
    """In a background child: Ctrl-C is the parent's to handle, and its death is ours.

    A terminal's Ctrl-C reaches the whole process group; the parent stops the child
    (stop_background), so the child ignores SIGINT rather than race it with a traceback.
    PR_SET_PDEATHSIG (Linux) kills the child if the parent dies without that cleanup
    (SIGKILL, OOM), so no step runs on for nobody.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: stop_background still covers Ctrl-C
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _background(fn: Callable[[], Any], send) -> None:
    try:
        send.send((True, fn()))
    except BaseException as e:  # noqa: BLE001 - re-raised in the waiting process
        send.send((False, e))
    finally:
        send.close()


def _collect(result) -> list:
    out, private = result.get()
    clock = _current
    if clock is not None:
        clock.worker_private = max(clock.worker_private, private)
    return out


# ------------------------------------------------------------------------ stage clocks


class _Stage:
    def __init__(self, name: str):
        self.name = name
        self.rss_peak = 0
        self.worker_private = 0
        self.extra: dict[str, Any] = {}


_current: _Stage | None = None
_stages: list[dict] | None = None


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _sample(stop: threading.Event) -> None:
    while not stop.wait(0.05):
        clock = _current
        if clock is not None:
            clock.rss_peak = max(clock.rss_peak, _rss())


@contextmanager
def recording() -> Iterator[list[dict]]:
    """Collect the ``stage`` records made inside (wall, CPU of this process and its
    workers, peak RSS of this process, peak private memory of a worker)."""
    global _stages
    _stages = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(stop,), daemon=True)
    sampler.start()
    try:
        yield _stages
    finally:
        stop.set()
        sampler.join()
        _stages = None


def recorded() -> list[dict]:
    """The stages recorded so far (empty outside ``recording()``)."""
    return list(_stages or ())


def annotate(**fields: Any) -> None:
    """Add figures to the current stage's record (a no-op outside ``recording()``)."""
    clock = _current
    if clock is not None:
        clock.extra.update(fields)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time one training stage; a no-op outside ``recording()``."""
    global _current
    checkpoint()
    if _stages is None:
        yield
        checkpoint()
        return
    outer = _current
    clock = _current = _Stage(name)
    clock.rss_peak = _rss()
    wall, cpu = time.monotonic(), time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        yield
    finally:
        done = resource.getrusage(resource.RUSAGE_CHILDREN)
        clock.rss_peak = max(clock.rss_peak, _rss())
        _stages.append(
            {
                "stage": name,
                "wall_s": round(time.monotonic() - wall, 3),
                "cpu_s": round(time.process_time() - cpu, 3),
                "worker_cpu_s": round(
                    max(0.0, done.ru_utime + done.ru_stime - children.ru_utime - children.ru_stime),
                    3,
                ),
                "rss_peak_mb": round(clock.rss_peak / 2**20, 1),
                "worker_private_peak_mb": round(clock.worker_private / 2**20, 1),
                **clock.extra,
            }
        )
        _current = outer
        if outer is not None:
            outer.rss_peak = max(outer.rss_peak, clock.rss_peak)
            outer.worker_private = max(outer.worker_private, clock.worker_private)
    checkpoint()

"""The fault suite's reusable parts: the invariants of a store and its sink, a configuration
with short deadlines, and the runner as a real process that can be killed or signalled.

Used by tests/test_faults.py (the short CI version) and benchmarks/faults.py (the long one).

Invariants (``check``), after a run whose outbox could drain:

- per-page order: the events the sink acknowledged for one page are in the order they were
  made (``meta.dt``); a re-delivered event (same ``meta.id``) is a duplicate, not a
  violation, and only right after itself;
- row <-> acknowledged event: a page has a data row exactly when the last event the sink
  acknowledged for it is a ``set``; and the store's own record of it (``addlink_acked``)
  agrees with the sink;
- outbox drained: no event pending, no dead letter;
- no stale rows: every data row is of the page's latest revision (when a source is given).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from runner.sources.dump import DumpSource
from runner.store import open_store
from tests.runner_support import LTG_DUMP, migrated
from tests.tcpproxy import TcpProxy

REPO = Path(__file__).resolve().parent.parent
BOUND = 60.0  # every fault class ends the run by itself within this (docs/reliability.md)

# Short deadlines: each fault class ends a run within seconds (docs/reliability.md).
SHORT = {
    "store": {"connect_timeout": 2, "read_timeout": 3, "write_timeout": 3},
    "events": {"timeout": 2, "max_attempts": 3, "backoff": 0.2},
    "lock": {"timeout": 4},
    # php -S of the local MediaWiki answers a batch in seconds on a loaded host
    "source": {"timeout": 15, "max_retries": 1},
}


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    duplicates: int = 0  # events acknowledged more than once (same meta.id)
    rows: int = 0
    events: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations


def jsonl_events(path: Path) -> list[dict]:
    """What a JSON-lines sink holds (a line cut by a kill is no event: it was not acked)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def data_rows(store) -> dict[int, int]:
    return {r.page_id: r.rev_id for r in store.iter_data_rows()}


def check(store, acknowledged: list[dict], source=None, drained: bool = True) -> Report:
    """The invariants of one wiki's store against the events its sink acknowledged."""
    rep = Report(events=len(acknowledged))
    seen: Counter = Counter()
    last: dict[int, dict] = {}
    for ev in acknowledged:
        page, meta = int(ev["page"]["page_id"]), ev["meta"]
        seen[meta["id"]] += 1
        prev = last.get(page)
        if prev is not None and prev["meta"]["id"] != meta["id"] \
                and meta["dt"] < prev["meta"]["dt"]:
            rep.violations.append(f"order: page {page}: event {meta['id']} made at {meta['dt']}"
                                  f" acknowledged after one made at {prev['meta']['dt']}")
        if prev is not None and prev["meta"]["id"] != meta["id"] and seen[meta["id"]] > 1:
            rep.violations.append(f"order: page {page}: event {meta['id']} acknowledged again "
                                  "after a later one")
        last[page] = ev
    rep.duplicates = sum(n - 1 for n in seen.values())
    tagged = {p: "set" in (ev.get("weighted_tags") or {}) for p, ev in last.items()}
    rows = data_rows(store)
    rep.rows = len(rows)
    if drained:
        counts = store.outbox_counts()
        if counts["pending"] or counts["failed"]:
            rep.violations.append(f"outbox: {counts['pending']} pending, "
                                  f"{counts['failed']} dead letters")
        for p in rows:
            if not tagged.get(p):
                rep.violations.append(f"row without an acknowledged set event: page {p}")
        for p, t in tagged.items():
            if t and p not in rows:
                rep.violations.append(f"tagged in search without a row: page {p}")
        for p, t, _ in store.iter_acked():
            if tagged.get(p, False) != t:
                rep.violations.append(f"addlink_acked says tagged={t} for page {p}, the sink "
                                      f"last acknowledged {'set' if tagged.get(p) else 'clear'}")
    if source is not None and rows:
        latest = source.latest_revisions(list(rows))
        for p, rev in rows.items():
            if latest.get(p) != rev:
                rep.violations.append(f"stale row: page {p} r{rev}, latest r{latest.get(p)}")
    return rep


# ---------------------------------------------------------------------------- configuration


def write_config(path: Path, model: str | Path, dump: str, *, store: dict, events: dict,
                 lock: dict, source: dict | None = None, target: int = 10,
                 workers: int = 2, short: bool = True) -> Path:
    """A runner configuration for one wiki (ltgwiki), with the SHORT deadlines."""
    src = source or {"type": "dump", "path": dump, "complete": True,
                     "cache_dir": str(path.parent / "cache")}
    src.setdefault("cache_dir", str(path.parent / "cache"))
    if short:
        store = {**SHORT["store"], **store} if store.get("type") == "mysql" else store
        events = {**SHORT["events"], **events} if events.get("type") == "eventgate" \
            else events
        lock = {**SHORT["lock"], **lock} if lock.get("type") == "zookeeper" else lock
        if src.get("type") == "api":
            src = {**SHORT["source"], **src}
    doc = {"runner": {"workers": workers, "page_timeout": 30, "batch_size": 60},
           "store": store, "events": events, "lock": lock,
           "wikis": {"ltgwiki": {
               "language": "ltg", "domain": "ltg.wikipedia.org", "model": str(model),
               "pool_target": target, "source": src,
               "candidates": {"strategy": "random", "batch_size": 60},
               # Permissive criteria: more pages qualify, so more rows and events are
               # written (and killed mid-way) per second of the suite.
               "criteria": {"disambiguation_templates": ["Zeimeibu škiršona"],
                            "excluded_sections": ["Nūruodis"],
                            "minimum_links_per_task": 1, "minimum_link_score": 0.3,
                            "minimum_time_since_last_edit": 0}}}}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    if store.get("type") == "sqlite":
        migrated(path)  # MySQL: mysql_setup migrates around the fault proxy
    return path


# ---------------------------------------------------------------------------- the process


@dataclass
class Finished:
    code: int
    seconds: float
    stdout: str
    stderr: str

    def lines(self) -> list[dict]:
        return [json.loads(x) for x in self.stdout.splitlines() if x.startswith("{")]

    def finished(self) -> dict | None:
        done = [x for x in self.lines() if x.get("message") == "run finished"]
        return done[-1] if done else None


class Runner:
    """``python -m runner --config C ARGS`` in a process group of its own."""

    def __init__(self, config: Path, *args: str, env: dict | None = None) -> None:
        self.t0 = time.monotonic()
        self.out_path = config.parent / f"out-{os.getpid()}-{time.monotonic_ns()}.log"
        self.err_path = self.out_path.with_suffix(".err")
        self._out = open(self.out_path, "w")  # noqa: SIM115 - closed in wait()
        self._err = open(self.err_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "--config", str(config), *args], cwd=REPO,
            stdout=self._out, stderr=self._err, start_new_session=True,
            env={**os.environ, **(env or {})})

    def stdout(self) -> str:
        self._out.flush()
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, message: str, timeout: float = 60.0, text: str = "") -> bool:
        """Until a log line with this message (and ``text``) appears, or the process ends."""
        deadline = time.monotonic() + timeout
        needle = f'"message": "{message}"'
        while time.monotonic() < deadline:
            if any(needle in x and text in x for x in self.stdout().splitlines()):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def signal(self, sig: int) -> float:
        """Send ``sig`` to the runner's main process only (as Kubernetes does)."""
        self.proc.send_signal(sig)
        return time.monotonic()

    def kill9(self) -> None:
        """kill -9 of the whole process group: the runner, its workers, the fork server."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.wait(30)

    def wait(self, timeout: float = 120.0) -> Finished:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            code = -999  # did not end by itself
        seconds = time.monotonic() - self.t0
        self._out.close()
        self._err.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers of a killed group
        out = self.out_path.read_text(encoding="utf-8", errors="replace")
        err = self.err_path.read_text(encoding="utf-8", errors="replace")
        return Finished(code, seconds, out, err)


def run(config: Path, *args: str, timeout: float = 120.0) -> Finished:
    return Runner(config, *args).wait(timeout)


def has_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" in text


# ---------------------------------------------------------------------------- scenarios


def sqlite_setup(tmp: Path, model: Path, *, lock: dict | None = None,
                 events: dict | None = None, **kw) -> tuple[Path, dict]:
    """SQLite + JSON lines (or ``events``) + a file lock (or ``lock``), in ``tmp``."""
    store = {"type": "sqlite", "path": str(tmp / "addlink.sqlite")}
    events = events or {"type": "jsonlines", "path": str(tmp / "events.jsonl")}
    lock = lock or {"type": "file", "dir": str(tmp / "locks")}
    return write_config(tmp / "config.yaml", model, LTG_DUMP, store=store, events=events,
                        lock=lock, **kw), store


def mysql_setup(tmp: Path, model: Path, db_port: int, eg_url: str, *, lock: dict | None = None,
                source: dict | None = None, **kw) -> tuple[Path, dict, str]:
    db = f"addlink_fault_{secrets.token_hex(4)}"
    store = {"type": "mysql", "url": f"mysql://root@127.0.0.1:{db_port}/{db}",
             "create_database": True}
    events = {"type": "eventgate", "url": eg_url}
    cfg = write_config(tmp / "config.yaml", model, LTG_DUMP, store=store, events=events,
                       lock=lock or {"type": "file", "dir": str(tmp / "locks")},
                       source=source, **kw)
    migrated(cfg, store_url=f"mysql://root@127.0.0.1:3306/{db}")
    return cfg, store, f"mysql://root@127.0.0.1:3306/{db}"


def open_cfg_store(cfg_path: Path):
    from runner.config import load_config

    return open_store(load_config(cfg_path).store, "ltgwiki")


def invariants(cfg_path: Path, acknowledged: list[dict], *, dump: bool = True):
    store = open_cfg_store(cfg_path)
    try:
        src = DumpSource(LTG_DUMP, complete=True, cache_dir=cfg_path.parent / "cache") \
            if dump else None
        return check(store, acknowledged, src)
    finally:
        store.close()


def one_line_error(res) -> str:
    """The error a run reports: one line in its summary, never a traceback."""
    assert not has_traceback(res.stdout) and not has_traceback(res.stderr), res.stderr[-2000:]
    done = res.finished()
    assert done is not None, res.stdout[-2000:]
    assert "\n" not in done["error"]
    return done["error"]


def kill_runs(cfg: Path, n: int, acknowledged, rng: random.Random) -> list[str]:
    """n runs killed with -9 at a random moment, each followed by one clean rerun; the
    invariants after every rerun."""
    problems = []
    for i in range(n):
        args = ("refresh", "--target", str(20 + 15 * i)) if i % 2 == 0 else \
            ("revalidate", "--wiki", "ltgwiki", "--all", "--limit", "15")
        r = Runner(cfg, *args)
        r.wait_for("evaluated", timeout=30)
        time.sleep(rng.uniform(0.0, 2.0))
        r.kill9()
        res = run(cfg, "refresh", "--target", str(20 + 15 * i))
        if res.code != 0:
            problems.append(f"rerun {i}: exit {res.code}: {res.stderr[-500:]}")
        rep = invariants(cfg, acknowledged())
        problems += [f"after kill {i}: {v}" for v in rep.violations]
    return problems


def partition_run(cfg: Path, proxy: TcpProxy, mode: str = "stall"):
    """A refresh cut off by ``proxy`` after its first page: (result, seconds from the fault
    to the end of the process)."""
    r = Runner(cfg, "refresh", "--target", "100000")
    assert r.wait_for("evaluated", timeout=90), r.stdout()[-3000:]
    at = time.monotonic()
    proxy.set(mode)
    res = r.wait(BOUND + 60)
    proxy.set("pass")
    return res, res.seconds - (at - r.t0)

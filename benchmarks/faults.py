"""The long fault suite: kill -9 runs on each store, every fault class, SIGTERM exit times.

    .venv/bin/python benchmarks/faults.py --kills 50 --sigterms 10 --out docs/reliability.json

Needs the local services (scripts/services.sh: MariaDB, ZooKeeper, MediaWiki); everything
targets 127.0.0.1. The invariants, the fault injectors (TCP proxy, EventGate modes) and the
short deadlines are the CI suite's (tests/faults.py, tests/test_faults.py): the figures are
of the same code paths, more often. docs/reliability.md records a run of this script.

- kill runs: ``--kills`` runs per store (MariaDB + EventGate; SQLite + JSON lines), each a
  refresh (growing target) or a ``revalidate --all`` (clear then set events per page)
  killed with -9 (the whole process group) at a random moment after its first page, then
  one clean rerun and the invariants; violations and duplicates are counted.
- fault classes: each injected once mid-run; the exit code and the seconds from the fault
  to the end of the process; then the fault clears, one rerun (drift for dead letters) and
  the invariants.
- SIGTERM: ``--sigterms`` runs signalled at a random moment: seconds from the signal to
  the exit, and whether every committed row has its event.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model.exitcodes import ExitCode  # noqa: E402
from tests.conftest import MW_PORT, ZK_PORT  # noqa: E402
from tests.eventgate import EventGate  # noqa: E402
from tests.faults import (  # noqa: E402
    SHORT,
    Runner,
    invariants,
    jsonl_events,
    kill_runs,
    mysql_setup,
    partition_run,
    run,
    sqlite_setup,
)
from tests.runner_support import LTG_DUMP, drop_database  # noqa: E402
from tests.tcpproxy import TcpProxy  # noqa: E402


def model_dir(path: str | None) -> Path:
    if path:
        return Path(path)
    out = REPO / "var" / "bench-models" / "ltgwiki"
    if not (out / "manifest.json").is_file():
        from model.train import Settings, train_model

        train_model(LTG_DUMP, out, Settings(seed=1))
    return out


def kill_figures(model: Path, kills: int, seed: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory(prefix="faults-sqlite-") as tmp:
        t0 = time.monotonic()
        cfg, _ = sqlite_setup(Path(tmp), model)
        problems = kill_runs(cfg, kills, lambda: jsonl_events(Path(tmp) / "events.jsonl"),
                             random.Random(seed))
        rep = invariants(cfg, jsonl_events(Path(tmp) / "events.jsonl"))
        out["sqlite+jsonlines"] = {"kills": kills, "violations": len(problems),
                                   "problems": problems[:20], "rows": rep.rows,
                                   "events": rep.events, "duplicates": rep.duplicates,
                                   "seconds": round(time.monotonic() - t0, 1)}
    with tempfile.TemporaryDirectory(prefix="faults-mysql-") as tmp, EventGate() as eg:
        t0 = time.monotonic()
        cfg, _, url = mysql_setup(Path(tmp), model, 3306, eg.url)
        try:
            problems = kill_runs(cfg, kills, lambda: list(eg.accepted), random.Random(seed))
            rep = invariants(cfg, list(eg.accepted))
        finally:
            drop_database(url)
        out["mariadb+eventgate"] = {"kills": kills, "violations": len(problems),
                                    "problems": problems[:20], "rows": rep.rows,
                                    "events": rep.events, "duplicates": rep.duplicates,
                                    "seconds": round(time.monotonic() - t0, 1)}
    return out


def _ended(r: Runner, fault_at: float, bound: float = 90.0) -> tuple[int, float, str]:
    res = r.wait(bound)
    done = res.finished() or {}
    return res.code, round(res.seconds - (fault_at - r.t0), 2), done.get("error", "")


def _record(name: str, code: int, seconds: float, error: str, expected: int, rerun,
            rep) -> dict:
    return {"fault": name, "exit_code": code, "expected": int(expected),
            "seconds_to_end": seconds, "error": error[:160], "rerun_exit": rerun.code,
            "violations_after_rerun": len(rep.violations), "duplicates": rep.duplicates}


def proxied_fault(model: Path, name: str, port: int, mode: str, expected: ExitCode,
                  kind: str) -> dict:
    """A fault between the runner and one service (MariaDB, ZooKeeper, MediaWiki)."""
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp, EventGate() as eg, \
            TcpProxy(port) as proxy:
        tmp = Path(tmp)
        url = None
        if kind == "mysql":
            cfg, _, url = mysql_setup(tmp, model, proxy.port, eg.url, target=100000)
            acked = lambda: list(eg.accepted)  # noqa: E731
        else:
            lock, source = None, None
            if kind == "zookeeper":
                lock = {"type": "zookeeper", "hosts": f"127.0.0.1:{proxy.port}",
                        "root": f"/addlink-bench-{secrets.token_hex(3)}"}
            if kind == "mediawiki":
                source = {"type": "api", "api_url": f"http://127.0.0.1:{proxy.port}/api.php"}
            cfg, _ = sqlite_setup(tmp, model, lock=lock,
                                  source=source, target=100000)
            acked = lambda: jsonl_events(tmp / "events.jsonl")  # noqa: E731
        try:
            res, secs = partition_run(cfg, proxy, mode)
            code, secs, error = res.code, round(secs, 2), (res.finished() or {}).get("error", "")
            if kind == "zookeeper":  # the cut session's lock lives until it expires
                time.sleep(SHORT["lock"]["timeout"] + 2)
            rerun = run(cfg, "refresh", "--target", "30")
            rep = invariants(cfg, acked(), dump=kind != "mediawiki")
        finally:
            if url:
                drop_database(url)
        return _record(name, code, secs, error, expected, rerun, rep)


def eventgate_fault(model: Path, name: str, setup, expected: ExitCode,
                    repair: tuple[str, ...] = ("refresh", "--target", "30")) -> dict:
    with tempfile.TemporaryDirectory(prefix="faults-eg-") as tmp, EventGate() as eg:
        tmp = Path(tmp)
        cfg, _ = sqlite_setup(tmp, model, events={"type": "eventgate", "url": eg.url},
                              target=25)
        r = Runner(cfg, "refresh")
        r.wait_for("evaluated", timeout=90)
        at = time.monotonic()
        setup(eg)
        code, secs, error = _ended(r, at)
        eg.forced.clear()
        eg.stalls.clear()
        eg.error_pages, eg.invalid_pages = set(), set()
        rerun = run(cfg, *repair)
        rep = invariants(cfg, list(eg.accepted))
        return _record(name, code, secs, error, expected, rerun, rep)


def fault_figures(model: Path) -> list[dict]:
    rows = [
        proxied_fault(model, "MariaDB silent partition", 3306, "stall",
                      ExitCode.UNAVAILABLE, "mysql"),
        proxied_fault(model, "MariaDB connections reset", 3306, "reset",
                      ExitCode.UNAVAILABLE, "mysql"),
        proxied_fault(model, "MariaDB reset after COMMIT (once)", 3306, "reset_after_commit",
                      ExitCode.OK, "mysql"),
        proxied_fault(model, "ZooKeeper silent partition", ZK_PORT, "stall",
                      ExitCode.LOCK_LOST, "zookeeper"),
        proxied_fault(model, "ZooKeeper connections cut", ZK_PORT, "cut",
                      ExitCode.LOCK_LOST, "zookeeper"),
        proxied_fault(model, "MediaWiki silent partition", MW_PORT, "stall",
                      ExitCode.UNAVAILABLE, "mediawiki"),
        proxied_fault(model, "MediaWiki connections reset", MW_PORT, "reset",
                      ExitCode.UNAVAILABLE, "mediawiki"),
        eventgate_fault(model, "EventGate 503 for the rest of the run",
                        lambda eg: eg.fail_next(503, 100000), ExitCode.EVENTS_UNDELIVERED),
        eventgate_fault(model, "EventGate 400 (all invalid)",
                        lambda eg: eg.fail_next(400, 100000), ExitCode.EVENTS_UNDELIVERED,
                        repair=("drift", "--wiki", "ltgwiki")),
        eventgate_fault(model, "EventGate 429 x2 then fine",
                        lambda eg: eg.fail_next(429, 2), ExitCode.OK),
        eventgate_fault(model, "EventGate times out after accepting (x2)",
                        lambda eg: eg.stall_next(3.0, 2), ExitCode.OK),
    ]
    return rows


def sigterm_figures(model: Path, n: int, seed: int) -> dict:
    """Each run on a fresh store (a full pool would end a run before its signal)."""
    rng = random.Random(seed)
    times, codes, violations, rows = [], [], 0, []
    for _ in range(n):
        with tempfile.TemporaryDirectory(prefix="faults-term-") as tmp:
            cfg, _ = sqlite_setup(Path(tmp), model, target=100000)
            r = Runner(cfg, "refresh")
            r.wait_for("evaluated", 120, '"outcome": "success"')
            time.sleep(rng.uniform(0.0, 3.0))
            at = r.signal(signal.SIGTERM)
            res = r.wait(90)
            times.append(res.seconds - (at - r.t0))
            codes.append(res.code)
            rep = invariants(cfg, jsonl_events(Path(tmp) / "events.jsonl"))
            violations += len(rep.violations)
            rows.append(rep.rows)
    return {"runs": n, "exit_codes": sorted(set(codes)),
            "seconds_max": round(max(times), 2),
            "seconds_median": round(statistics.median(times), 2),
            "rows_committed_median": statistics.median(rows), "violations": violations}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--sigterms", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--model", help="ltgwiki model directory (default: trained once)")
    p.add_argument("--out", help="write the figures as JSON here")
    p.add_argument("--skip", action="append", default=[],
                   choices=("kills", "faults", "sigterm"))
    args = p.parse_args()
    model = model_dir(args.model)
    figures: dict = {"command": " ".join(["benchmarks/faults.py", *sys.argv[1:]])}
    t0 = time.monotonic()
    if "sigterm" not in args.skip:
        figures["sigterm"] = sigterm_figures(model, args.sigterms, args.seed)
        print(json.dumps(figures["sigterm"]), flush=True)
    if "faults" not in args.skip:
        figures["faults"] = fault_figures(model)
        for row in figures["faults"]:
            print(json.dumps(row, ensure_ascii=False), flush=True)
    if "kills" not in args.skip:
        figures["kills"] = kill_figures(model, args.kills, args.seed)
        print(json.dumps(figures["kills"]), flush=True)
    figures["seconds"] = round(time.monotonic() - t0, 1)
    text = json.dumps(figures, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

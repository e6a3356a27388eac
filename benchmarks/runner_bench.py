"""Refresh-job throughput: pages evaluated per second and time to fill a pool, 1 vs N workers.

Runs the real pipeline (``runner.job.WikiJob`` with the configured adapters: Action API
against the local MediaWiki, or the dump source) on a fresh SQLite store for each run, the
candidates in page-id order (``allpages``) so every run sees the same pages:

- throughput: ``--pages`` candidates, no target; evaluated pages / wall second (after the
  workers have started: their start-up, one model open each, is reported apart);
- fill: time until the pool holds ``--target`` tasks, from an empty store;
- per-worker RSS: sampled every 50 ms from /proc during the runs (peak per worker process);
- machine speed-up: N CPU-bound processes at once against one, measured right before the
  N-worker run, so a shared or throttled host shows up next to the runner's speed-up.
Each figure is the best of ``--repeat`` runs.

Shards (``--shards 1 2``): the backfill setting of issue 4. N separate processes (this
script in ``--child`` mode, each one the app's lock + adapters + shared pool target + a
``WikiJob`` with ``--shard i/N`` and ``--shard-workers`` workers) walk the whole wiki
(``allpages``, no target) against one MariaDB store (a fresh database per run) and
ZooKeeper, as pods would. pages/s = all shards' evaluated pages / the wall time from the
first shard's first page (workers started) to the last shard's end.

Usage (the MediaWiki of scripts/services.sh, the ltgwiki model)::

    D=../shared/data/dumps/ltgwiki-20170901-pages-articles.xml.bz2
    python benchmarks/runner_bench.py --source mediawiki --train-dump $D --pages 600 --target 8
    python benchmarks/runner_bench.py --source dump --dump $D --train-dump $D --pages 600 \\
        --target 8
    python benchmarks/runner_bench.py --source mediawiki --train-dump $D --shards 1 2

Prints a Markdown table (and ``--json`` the raw figures).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.app import Adapters, NoLock  # noqa: E402
from runner.config import parse_config  # noqa: E402
from runner.job import RunOptions, WikiJob  # noqa: E402
from runner.metrics import Metrics  # noqa: E402
from runner.workers import rss_bytes  # noqa: E402


def config_doc(args: argparse.Namespace, work: Path, target: int) -> dict:
    if args.source == "mediawiki":
        source = {"type": "api", "api_url": args.api_url}
    else:
        source = {"type": "dump", "path": args.dump, "complete": True,
                  "cache_dir": str(work / "cache")}
    return {"runner": {"page_timeout": 60,
                       "user_agent": "addlink-bench/0.1 (local benchmark on 127.0.0.1)"},
            "store": {"type": "sqlite", "path": str(work / "addlink.sqlite")},
            "events": {"type": "jsonlines", "path": str(work / "events.jsonl")},
            "wikis": {args.wiki: {
                "language": args.wiki.removesuffix("wiki"), "model": args.model,
                "pool_target": target, "source": source,
                "candidates": {"strategy": "allpages", "batch_size": args.batch_size},
                "criteria": {"minimum_time_since_last_edit": args.min_age}}}}


def config(args: argparse.Namespace, work: Path, target: int):
    return parse_config(config_doc(args, work, target), env={})


def server_cpu() -> float:
    """CPU seconds used so far by the local MediaWiki (``php -S`` and its workers)."""
    total = 0.0
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if cmd[:1] == ["php"] and "-S" in cmd:  # also "php -d opcache... -S host:port"
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
    return total


def db_cpu() -> float:
    """CPU seconds used so far by the local MariaDB server (0 if it is not visible here)."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in ("mariadbd", "mysqld"):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
    return total


class Sampler(threading.Thread):
    """Peak RSS and CPU time of the parent and of each worker process, every 50 ms."""

    def __init__(self, job: WikiJob) -> None:
        super().__init__(daemon=True)
        self.job, self.done = job, threading.Event()
        self.workers: dict[int, int] = {}
        self.worker_cpu: dict[int, float] = {}
        self.parent = 0

    def run(self) -> None:
        while not self.done.is_set():
            pool = self.job.workers
            for pid in pool.pids() if pool else []:
                self.workers[pid] = max(self.workers.get(pid, 0), rss_bytes(pid))
                with contextlib.suppress(psutil.Error):
                    t = psutil.Process(pid).cpu_times()
                    self.worker_cpu[pid] = t.user + t.system
            self.parent = max(self.parent, rss_bytes(os.getpid()))
            time.sleep(0.05)


def _spin(n: int = 20_000_000) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - t0


def machine_speedup(procs: int) -> float:
    """What the machine itself gives: throughput of ``procs`` CPU-bound processes at once
    over one alone (2.0 on two free cores; less when the host is shared or throttled)."""
    import multiprocessing as mp

    alone = _spin()
    with mp.get_context("spawn").Pool(procs) as pool:
        t0 = time.perf_counter()
        pool.map(_spin, [20_000_000] * procs)
        together = time.perf_counter() - t0
    return round(procs * alone / together, 2)


def one_run(args: argparse.Namespace, workers: int, *, limit: int | None,
            target: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="runner-bench-") as tmp, ExitStack() as stack:
        cfg = config(args, Path(tmp), target)
        metrics = Metrics()
        a = Adapters(cfg, args.wiki, metrics, stack)
        if args.source == "dump":  # build the dump cache outside the timed part
            next(a.source.candidates("allpages", batch_size=1), None)
        job = WikiJob(cfg, cfg.wiki(args.wiki), source=a.source, store=a.store,
                      publisher=a.publisher, metrics=metrics, lock=NoLock(),
                      options=RunOptions(workers=workers, limit=limit))
        sampler = Sampler(job)
        sampler.start()
        t0, c0, s0 = time.monotonic(), time.process_time(), server_cpu()
        res = job.run()
        wall = time.monotonic() - t0
        parent_cpu, srv_cpu = time.process_time() - c0, server_cpu() - s0
        sampler.done.set()
        sampler.join()
        startup = job.workers_startup
        return {"workers": workers, "evaluated": res.evaluated, "wall_s": round(wall, 2),
                "startup_s": round(startup, 2),
                "pages_per_s": round(res.evaluated / max(1e-9, wall - startup), 2),
                "successes": res.outcomes.get("success", 0), "stop": res.stop_reason,
                "pool": res.pool_after,
                "worker_rss_mb": [round(v / 2**20, 1) for v in sampler.workers.values()],
                "parent_rss_mb": round(sampler.parent / 2**20, 1),
                "cpu_ms_per_page": {
                    "workers": round(1000 * sum(sampler.worker_cpu.values())
                                     / max(1, res.evaluated), 2),
                    "parent": round(1000 * parent_cpu / max(1, res.evaluated), 2),
                    "server": round(1000 * srv_cpu / max(1, res.evaluated), 2)}}


def child(args: argparse.Namespace) -> int:
    """One shard of a ``--shards`` run, in a process of its own; prints its figures."""
    from runner.app import locked
    from runner.coordination import pool_target_factory

    i, n = (int(x) for x in args.child.split("/"))
    cfg = parse_config(json.loads(Path(args.child_config).read_text()), env={})
    opts = RunOptions(workers=args.shard_workers, shard=(i, n), target=10**9)
    metrics = Metrics()
    out: dict = {}

    def body(lock) -> object:
        with ExitStack() as stack:
            a = Adapters(cfg, args.wiki, metrics, stack)
            target = pool_target_factory(cfg, args.wiki, opts, a.store.pool_size,
                                         client=getattr(lock, "client", None))
            job = WikiJob(cfg, cfg.wiki(args.wiki), source=a.source, store=a.store,
                          publisher=a.publisher, metrics=metrics, lock=lock, options=opts,
                          pool_target=target)
            sampler = Sampler(job)
            sampler.start()
            t0, c0 = time.time(), time.process_time()
            res = job.run()
            end = time.time()
            sampler.done.set()
            sampler.join()
            out.update(shard=f"{i}/{n}", evaluated=res.evaluated, status=res.status,
                       stop=res.stop_reason, successes=res.outcomes.get("success", 0),
                       first_page_at=t0 + job.workers_startup, end_at=end,
                       parent_cpu=time.process_time() - c0,
                       worker_cpu=sum(sampler.worker_cpu.values()),
                       worker_rss_mb=[round(v / 2**20, 1) for v in sampler.workers.values()])
            return res

    locked(cfg, args.wiki, opts, metrics, body)
    print(json.dumps(out), flush=True)
    return 0 if out.get("status") == "ok" else 1


def shards_run(args: argparse.Namespace, shards: int) -> dict:
    """``shards`` processes at once over the whole wiki; aggregate pages/s."""
    import secrets
    import subprocess

    import pymysql

    db = f"addlink_bench_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="runner-bench-") as tmp:
        doc = config_doc(args, Path(tmp), 10**9)
        doc["store"] = {"type": "mysql", "url": f"{args.mysql}/{db}",
                        "create_database": True}
        doc["lock"] = {"type": "zookeeper", "hosts": args.zk_hosts,
                       "root": f"/addlink-bench-{time.time_ns()}"}
        doc["events"]["path"] = str(Path(tmp) / "events-{wiki}.jsonl")
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(doc))
        if args.source == "dump":  # build the dump cache before the timed part
            config(args, Path(tmp), 1)  # validates
            from runner.sources.dump import DumpSource

            DumpSource(args.dump, cache_dir=Path(tmp) / "cache").close()
        s0, d0 = server_cpu(), db_cpu()
        procs = [subprocess.Popen(
            [sys.executable, __file__, "--child", f"{i}/{shards}", "--child-config", str(path),
             "--wiki", args.wiki, "--model", args.model, "--source", args.source,
             "--shard-workers", str(args.shard_workers)],
            stdout=subprocess.PIPE, text=True) for i in range(shards)]
        outs = [p.communicate()[0] for p in procs]
        srv_cpu, mdb_cpu = server_cpu() - s0, db_cpu() - d0
    _zk_cleanup(args.zk_hosts, doc["lock"]["root"])
    try:
        conn = pymysql.connect(**_mysql_kw(args.mysql), autocommit=True)
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()
    except pymysql.MySQLError:
        pass
    parts = []
    for p, o in zip(procs, outs, strict=True):
        lines = [x for x in o.splitlines() if x.startswith('{"shard"')]
        if p.returncode != 0 or not lines:
            raise SystemExit(f"a shard failed (exit {p.returncode}):\n{o[-3000:]}")
        parts.append(json.loads(lines[-1]))
    evaluated = sum(x["evaluated"] for x in parts)
    wall = max(x["end_at"] for x in parts) - min(x["first_page_at"] for x in parts)
    return {"shards": shards, "workers_per_shard": args.shard_workers, "evaluated": evaluated,
            "wall_s": round(wall, 2), "pages_per_s": round(evaluated / wall, 2),
            "successes": sum(x["successes"] for x in parts),
            "stops": sorted({x["stop"] for x in parts}),
            "worker_rss_mb": max(v for x in parts for v in x["worker_rss_mb"] or [0]),
            "cpu_ms_per_page": {
                "workers": round(1000 * sum(x["worker_cpu"] for x in parts) / evaluated, 2),
                "parents": round(1000 * sum(x["parent_cpu"] for x in parts) / evaluated, 2),
                "server": round(1000 * srv_cpu / evaluated, 2),
                "mariadb": round(1000 * mdb_cpu / evaluated, 2)}}


def _zk_cleanup(hosts: str, root: str) -> None:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=hosts)
    zk.start(timeout=10)
    try:
        zk.delete(root, recursive=True)
    finally:
        zk.stop()
        zk.close()


def _mysql_kw(url: str) -> dict:
    from runner.store.mysql import parse_mysql_url

    kw = parse_mysql_url(url.rstrip("/") + "/x")
    kw.pop("database")
    return kw


def shards_main(args: argparse.Namespace) -> int:
    rows = []
    for n in args.shards:
        best = max((shards_run(args, n) for _ in range(args.repeat)),
                   key=lambda r: r["pages_per_s"])
        best["machine_speedup"] = machine_speedup(n) if n > 1 else 1.0
        rows.append(best)
    if args.json:
        print(json.dumps(rows, indent=2))
    base = rows[0]["pages_per_s"]
    print("\n| shards (processes) | workers per shard | pages evaluated | pages/s | speed-up "
          "| machine speed-up | CPU ms per page: workers | shard parents | MediaWiki server "
          "| MariaDB | worker RSS MiB (peak) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["cpu_ms_per_page"]
        print(f"| {r['shards']} | {r['workers_per_shard']} | {r['evaluated']} | "
              f"{r['pages_per_s']} | {r['pages_per_s'] / base:.2f}x | "
              f"{r['machine_speedup']:.2f}x | {c['workers']} | {c['parents']} | {c['server']} "
              f"| {c['mariadb']} | {r['worker_rss_mb']} |")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=("mediawiki", "dump"), default="mediawiki")
    p.add_argument("--api-url", default="http://127.0.0.1:8089/api.php")
    p.add_argument("--dump")
    p.add_argument("--wiki", default="ltgwiki")
    p.add_argument("--model", help="model directory (default: train one from --train-dump)")
    p.add_argument("--train-dump", help="train the model from this dump first (into a temp dir)")
    p.add_argument("--pages", type=int, default=600, help="candidates per throughput run")
    p.add_argument("--target", type=int, default=10, help="pool target of the fill runs")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--min-age", type=int, default=86400,
                   help="minimum_time_since_last_edit (s)")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure (best is kept)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--shards", type=int, nargs="+",
                   help="instead: N shard processes over the whole wiki, e.g. 1 2")
    p.add_argument("--shard-workers", type=int, default=1, help="workers per shard process")
    p.add_argument("--mysql", default="mysql://root@127.0.0.1:3306",
                   help="MariaDB server of the shard runs (a fresh database each run)")
    p.add_argument("--zk-hosts", default="127.0.0.1:2181")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-config", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    if args.source == "dump" and not args.dump:
        p.error("--source dump needs --dump")
    if not args.model:
        if not args.train_dump:
            p.error("give --model or --train-dump")
        from model.train import train_model

        args.model = str(Path(tempfile.mkdtemp(prefix="runner-bench-model-")) / args.wiki)
        train_model(args.train_dump, args.model, wiki=args.wiki)
    if args.shards:
        return shards_main(args)
    rows = []
    for w in args.workers:
        # best of --repeat runs; the machine's own parallel speed-up is measured right
        # before (a shared or throttled host gives less than its core count)
        thr = max((one_run(args, w, limit=args.pages, target=10**9)
                   for _ in range(args.repeat)), key=lambda r: r["pages_per_s"])
        thr["machine_speedup"] = machine_speedup(w) if w > 1 else 1.0
        fill = min((one_run(args, w, limit=None, target=args.target)
                    for _ in range(args.repeat)), key=lambda r: r["wall_s"])
        rows.append({"throughput": thr, "fill": fill})
    base = rows[0]["throughput"]["pages_per_s"]
    if args.json:
        print(json.dumps(rows, indent=2))
    print(f"\n| workers | pages evaluated | pages/s | speed-up | machine speed-up "
          f"| worker start (s) | fill to {args.target}: s (pages) | worker RSS MiB (peak) "
          f"| parent RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t, f = r["throughput"], r["fill"]
        rss = max(t["worker_rss_mb"] + f["worker_rss_mb"] or [0])
        print(f"| {t['workers']} | {t['evaluated']} | {t['pages_per_s']} | "
              f"{t['pages_per_s'] / base:.2f}x | {t['machine_speedup']:.2f}x | "
              f"{t['startup_s']} | {f['wall_s']} ({f['evaluated']}, {f['stop']}) | {rss} | "
              f"{max(t['parent_rss_mb'], f['parent_rss_mb'])} |")
    print("\n| workers | CPU ms per page: workers | parent | MediaWiki server |")
    print("|---|---|---|---|")
    for r in rows:
        c = r["throughput"]["cpu_ms_per_page"]
        print(f"| {r['throughput']['workers']} | {c['workers']} | {c['parent']} | "
              f"{c['server']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

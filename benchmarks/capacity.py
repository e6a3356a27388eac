"""Capacity plan: CPU, memory and wall time to keep N wikis' pools full, from measured costs.

Every figure comes from a measurement file (below) and the assumptions given on the command
line; nothing is invented. A missing or incomplete measurement is an error, not a default.

Measurement file (JSON, ``"format": 1``), written from a real runner benchmark run::

    {
      "format": 1,
      "command": "the exact command that produced the numbers",
      "machine": "2 cores, 24 GB (free text)",
      "wiki": "ltgwiki",                    # the wiki the run evaluated
      "workers": 2,                         # worker processes in the measured run
      "pages_evaluated": 903,               # candidates evaluated in that run ("pages per run")
      "pages_per_second_per_worker": 3.1,   # evaluated candidates / wall second / worker
      "cpu_per_worker": 0.92,               # CPU s of all the run's processes / wall s / workers
      "worker_rss_mb": 212.0,               # peak RSS of the largest worker process (MiB)
      "parent_rss_mb": 96.0                 # peak RSS of the main (scheduler) process (MiB)
    }

Arithmetic (all per day unless said otherwise):

- evaluations per wiki per day  = pool_target x churn / success_rate
  (each day ``churn`` of the pool is used up or invalidated by edits and must be refilled;
  only ``success_rate`` of evaluated candidates become tasks)
- worker-seconds per day        = wikis x evaluations per wiki / pages_per_second_per_worker
- average cores                 = worker-seconds / 86400 x cpu_per_worker
- one refresh of one wiki       = evaluations per run / (workers x pages/s) + startup seconds
- wikis per CronJob group       = floor(max_runtime / one refresh), so a group's run ends
  before ``--max-runtime``; groups = ceil(wikis / wikis per group)
- pod memory                    = parent RSS + workers x worker RSS, times the headroom,
  rounded up to 64 MiB: the CronJobs' request and limit; CPU request = workers x measured
  cores per worker, CPU limit = one core per worker (manifests/ take both from
  ``pod_resources``; tests/test_manifests.py checks they agree)
- initial fill (backfill)       = pool_target / success_rate evaluations per wiki; all wikis by
  the CronJobs alone: each group busy max_runtime x runs_per_day seconds a day (throughput
  bound; churn during the fill ignored)

Usage::

    python benchmarks/capacity.py measure --out MEASUREMENT.json [--machine TEXT] -- \\
        python -m runner --config C --log-format=json refresh --wiki W --workers=2
    python benchmarks/capacity.py plan --input MEASUREMENT.json --wikis 300 \\
        --pool-target 3000 --churn 0.05 --success-rate 0.3 [--workers 2] ...
    python benchmarks/capacity.py plan ... --update-doc docs/operations.md

``measure`` runs a real runner command and writes the measurement file: it samples the RSS
of the runner and of each of its child processes (psutil, every 50 ms), takes the CPU time
of the whole process tree (the larger of the kernel's rusage of reaped children and the sum
of the last sampled CPU time of every process seen), and reads the
evaluated pages and run seconds from the runner's ``run finished`` JSON log records. RSS
counts pages shared with the parent once per process, so the sum over-estimates a pod's
memory a little: a safe side for a limit.

``plan --update-doc`` replaces the text between the ``capacity:begin``/``capacity:end``
markers of the given Markdown file with its output (and the command that made it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

FORMAT = 1
MIB_STEP = 64  # memory is rounded up to this many MiB
DOC_BEGIN = "<!-- capacity:begin -->"
DOC_END = "<!-- capacity:end -->"
REQUIRED = {
    "command": str,
    "wiki": str,
    "workers": int,
    "pages_evaluated": int,
    "pages_per_second_per_worker": float,
    "cpu_per_worker": float,
    "worker_rss_mb": float,
    "parent_rss_mb": float,
}


class InputError(ValueError):
    """The measurement file is missing, unreadable or incomplete; the message says which."""


@dataclass(frozen=True)
class Measurement:
    command: str
    wiki: str
    workers: int
    pages_evaluated: int
    pages_per_second_per_worker: float
    cpu_per_worker: float
    worker_rss_mb: float
    parent_rss_mb: float
    machine: str = ""


@dataclass(frozen=True)
class Assumptions:
    wikis: int
    pool_target: int  # articles per wiki
    churn: float  # fraction of the pool to refill per day
    success_rate: float  # fraction of evaluated candidates that become tasks
    workers: int = 2  # worker processes per pod
    runs_per_day: int = 24  # CronJob runs per group per day
    max_runtime: float = 3000.0  # seconds, the runner's --max-runtime
    startup_seconds: float = 10.0  # per wiki and run: lock, model open, first API round trip
    memory_headroom: float = 1.25  # factor over the measured peak RSS
    backfill_shards: int = 4  # pods of one Indexed backfill Job


@dataclass(frozen=True)
class Plan:
    evaluations_per_wiki_per_day: float
    evaluations_per_day: float
    worker_seconds_per_day: float
    average_cores: float
    evaluations_per_wiki_per_run: float
    seconds_per_wiki_run: float
    wikis_per_group: int
    groups: int
    pod_cpu: float
    pod_memory_mib: int
    peak_cores: float  # every group running at once
    peak_memory_mib: int
    busy_fraction: float  # share of each group's interval spent running
    fill_evaluations_per_wiki: float
    fill_hours_per_wiki: float  # one wiki, backfill_shards pods x workers
    fill_days_all_wikis: float  # all wikis, the CronJob groups alone, running full time


def load_measurement(path: str | Path) -> Measurement:
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: measurement file not found. Run the runner benchmark first and record "
            "its costs in this file (format in benchmarks/capacity.py); no figures without it."
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not readable JSON: {e}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a JSON object")
    if raw.get("format") != FORMAT:
        raise InputError(f"{path}: format: expected {FORMAT}, got {raw.get('format')!r}")
    values = {}
    for key, kind in REQUIRED.items():
        if key not in raw:
            raise InputError(f"{path}: {key}: required field is missing")
        value = raw[key]
        if kind is str:
            if not isinstance(value, str) or not value:
                raise InputError(f"{path}: {key}: expected a non-empty string")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InputError(f"{path}: {key}: expected a positive number, got {value!r}")
        elif kind is int and not isinstance(value, int):
            raise InputError(f"{path}: {key}: expected an integer, got {value!r}")
        values[key] = float(value) if kind is float else value
    if values["cpu_per_worker"] > 1.5:
        raise InputError(f"{path}: cpu_per_worker: {values['cpu_per_worker']} cores for one "
                         "worker process; expected about 1 or less")
    return Measurement(machine=str(raw.get("machine", "")), **values)


def pod_resources(m: Measurement, workers: int, headroom: float = 1.25) -> dict:
    """Kubernetes resources for a runner pod with ``workers`` worker processes.

    Memory, request = limit (a batch pod should neither be the first evicted nor outgrow its
    share of the node): peak main-process RSS plus one peak worker RSS per worker, times
    ``headroom``, rounded up to 64 MiB. CPU request: the measured cores per worker times
    ``workers`` (rounded up to 100m); CPU limit: one core per worker, which no worker can
    exceed anyway, so a pod whose API answers faster than measured is never throttled.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    memory = (m.parent_rss_mb + workers * m.worker_rss_mb) * headroom
    memory_mib = math.ceil(memory / MIB_STEP) * MIB_STEP
    cpu_milli = max(100, math.ceil(workers * m.cpu_per_worker * 10) * 100)
    return {"requests": {"cpu": f"{cpu_milli}m", "memory": f"{memory_mib}Mi"},
            "limits": {"cpu": f"{max(cpu_milli, workers * 1000)}m",
                       "memory": f"{memory_mib}Mi"}}


def plan(m: Measurement, a: Assumptions) -> Plan:
    for name in ("wikis", "pool_target", "workers", "runs_per_day", "backfill_shards"):
        if getattr(a, name) < 1:
            raise ValueError(f"{name} must be >= 1")
    if not 0 < a.churn <= 1:
        raise ValueError("churn must be within (0, 1]")
    if not 0 < a.success_rate <= 1:
        raise ValueError("success_rate must be within (0, 1]")
    if a.max_runtime * a.runs_per_day > 86400:
        raise ValueError("max_runtime x runs_per_day exceeds a day: runs would overlap")
    rate = m.pages_per_second_per_worker
    per_wiki_day = a.pool_target * a.churn / a.success_rate
    per_day = a.wikis * per_wiki_day
    worker_seconds = per_day / rate
    per_run = per_wiki_day / a.runs_per_day
    seconds_per_run = per_run / (a.workers * rate) + a.startup_seconds
    per_group = math.floor(a.max_runtime / seconds_per_run)
    if per_group < 1:
        raise ValueError(
            f"one wiki's refresh takes {seconds_per_run:.0f} s, more than max_runtime "
            f"{a.max_runtime:.0f} s: add workers or runs per day"
        )
    groups = math.ceil(a.wikis / per_group)
    resources = pod_resources(m, a.workers, a.memory_headroom)
    pod_cpu = int(resources["requests"]["cpu"][:-1]) / 1000
    pod_memory = int(resources["requests"]["memory"][:-2])
    fill_per_wiki = a.pool_target / a.success_rate
    wikis_in_biggest_group = min(per_group, a.wikis)
    return Plan(
        evaluations_per_wiki_per_day=per_wiki_day,
        evaluations_per_day=per_day,
        worker_seconds_per_day=worker_seconds,
        average_cores=worker_seconds / 86400 * m.cpu_per_worker,
        evaluations_per_wiki_per_run=per_run,
        seconds_per_wiki_run=seconds_per_run,
        wikis_per_group=per_group,
        groups=groups,
        pod_cpu=pod_cpu,
        pod_memory_mib=pod_memory,
        peak_cores=groups * pod_cpu,
        peak_memory_mib=groups * pod_memory,
        busy_fraction=wikis_in_biggest_group * seconds_per_run * a.runs_per_day / 86400,
        fill_evaluations_per_wiki=fill_per_wiki,
        fill_hours_per_wiki=fill_per_wiki / (a.backfill_shards * a.workers * rate) / 3600,
        fill_days_all_wikis=a.wikis * fill_per_wiki
        / (groups * a.workers * rate * a.max_runtime * a.runs_per_day),
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:,.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 86400:,.1f} days"


def render_markdown(m: Measurement, a: Assumptions, p: Plan, command: str) -> str:
    lines = [
        f"Generated by `{command}`.",
        "",
        f"Measured ({m.wiki}, {m.workers} workers, {m.pages_evaluated} pages evaluated"
        + (f", {m.machine}" if m.machine else "") + f"; by `{m.command}`):",
        f"{m.pages_per_second_per_worker:.2f} pages/s per worker, "
        f"{m.cpu_per_worker:.2f} cores per busy worker, "
        f"worker RSS {m.worker_rss_mb:.0f} MiB, main process RSS {m.parent_rss_mb:.0f} MiB.",
        "",
        f"Assumptions: {a.wikis} wikis, pool target {a.pool_target} per wiki, "
        f"{a.churn:.1%} of each pool refilled per day, {a.success_rate:.1%} of evaluated "
        f"candidates become tasks, {a.workers} workers per pod, {a.runs_per_day} runs per day, "
        f"--max-runtime {a.max_runtime:.0f} s, {a.startup_seconds:.0f} s startup per wiki run, "
        f"memory headroom x{a.memory_headroom}, {a.backfill_shards} backfill shards.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| evaluations per wiki per day | {p.evaluations_per_wiki_per_day:,.0f} |",
        f"| evaluations per day, all wikis | {p.evaluations_per_day:,.0f} |",
        f"| worker-hours per day | {p.worker_seconds_per_day / 3600:,.1f} |",
        f"| average CPU cores, around the clock | {p.average_cores:,.2f} |",
        f"| one wiki's refresh (per run) | {p.evaluations_per_wiki_per_run:,.0f} evaluations, "
        f"{_duration(p.seconds_per_wiki_run)} |",
        f"| wikis per CronJob group (fits --max-runtime) | {p.wikis_per_group} |",
        f"| CronJob groups | {p.groups} |",
        f"| pod resources (requests) | {p.pod_cpu:g} CPU, {p.pod_memory_mib} MiB |",
        f"| peak if every group runs at once | {p.peak_cores:g} CPU, "
        f"{p.peak_memory_mib / 1024:,.1f} GiB |",
        f"| busy share of each group's interval | {p.busy_fraction:.0%} |",
        f"| initial fill of one wiki ({a.backfill_shards} shards) | "
        f"{p.fill_evaluations_per_wiki:,.0f} evaluations, "
        f"{_duration(p.fill_hours_per_wiki * 3600)} |",
        f"| initial fill of all wikis by the CronJobs alone | "
        f"{_duration(p.fill_days_all_wikis * 86400)} |",
    ]
    return "\n".join(lines) + "\n"


def update_doc(doc: Path, section: str) -> None:
    text = doc.read_text(encoding="utf-8")
    if text.count(DOC_BEGIN) != 1 or text.count(DOC_END) != 1:
        raise InputError(f"{doc}: needs exactly one {DOC_BEGIN} and one {DOC_END} marker")
    head, rest = text.split(DOC_BEGIN)
    _, tail = rest.split(DOC_END)
    doc.write_text(f"{head}{DOC_BEGIN}\n{section}{DOC_END}{tail}", encoding="utf-8")


def doc_section(doc: Path) -> str:
    """The generated text currently between the markers of ``doc``."""
    text = doc.read_text(encoding="utf-8")
    return text.split(DOC_BEGIN, 1)[1].split(DOC_END, 1)[0].lstrip("\n")


# ---------------------------------------------------------------------------- measure


def _workers_of(command: list[str]) -> int:
    for i, arg in enumerate(command):
        if arg.startswith("--workers="):
            return int(arg.split("=", 1)[1])
        if arg == "--workers" and i + 1 < len(command):
            return int(command[i + 1])
    raise InputError("measure: the runner command must give --workers=N (the figures are "
                     "per worker)")


def run_summaries(stdout: str) -> list[dict]:
    """The runner's ``run finished`` records (one per wiki) from its JSON-lines stdout."""
    out = []
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("message") == "run finished":
            out.append(record)
    return out


class TreeSampler(threading.Thread):
    """Peak RSS and last CPU time of a process and of each descendant, until it exits.

    Sampled CPU time is needed besides rusage: multiprocessing's helper processes (a
    forkserver) are not always reaped by the runner, and then their children's CPU time
    never reaches the kernel's rusage of the runner.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except self.psutil.NoSuchProcess:
                return
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
                except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                    continue
                self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), rss)
                self.cpu[proc.pid] = times.user + times.system
            time.sleep(self.interval)


def measure(command: list[str], machine: str = "") -> dict:
    """Run ``command`` (a runner refresh) and return its measurement record."""
    workers = _workers_of(command)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.done.set()
    sampler.join()
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise InputError(f"measure: the runner exited {proc.returncode}:\n{stderr[-2000:]}")
    runs = run_summaries(stdout)
    if not runs:
        raise InputError("measure: no 'run finished' record in the runner's output; "
                         "run it with --log-format=json")
    evaluated = sum(int(r["evaluated"]) for r in runs)
    seconds = sum(float(r["seconds"]) for r in runs)
    if evaluated == 0 or seconds <= 0:
        raise InputError("measure: the run evaluated no page; nothing to measure")
    rusage_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(rusage_cpu, sum(sampler.cpu.values()))
    children = [rss for pid, rss in sampler.peaks.items() if pid != proc.pid]
    if not children:
        raise InputError("measure: no worker process was seen; is --workers honoured?")
    successes = sum(int(r["outcomes"].get("success", 0)) for r in runs)
    mib = 1024 * 1024
    return {
        "format": FORMAT,
        "command": shlex.join(command),
        "machine": machine,
        "wiki": ",".join(r["wiki"] for r in runs),
        "workers": workers,
        "pages_evaluated": evaluated,
        "pages_per_second_per_worker": round(evaluated / seconds / workers, 3),
        # Over the wall time of the whole command, as documented above: the CPU of start-up
        # (imports, the dump cache, spawning workers) is spread over it, not over the run.
        "cpu_per_worker": round(cpu / wall / workers, 3),
        "worker_rss_mb": round(max(children) / mib, 1),
        "parent_rss_mb": round(sampler.peaks.get(proc.pid, 0) / mib, 1),
        # Context only; plan() takes its success rate from the command line.
        "run_seconds": round(seconds, 2),
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "success_rate_measured": round(successes / evaluated, 3),
        "outcomes": {k: sum(int(r["outcomes"].get(k, 0)) for r in runs)
                     for k in sorted({k for r in runs for k in r["outcomes"]})},
    }


# ---------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="benchmarks/capacity.py",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = root.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="run a runner command, write the measurement file")
    m.add_argument("--out", required=True, help="measurement JSON to write")
    m.add_argument("--machine", default=f"{os.cpu_count()} cores",
                   help="free text about the machine (default: the core count)")
    m.add_argument("runner_command", nargs=argparse.REMAINDER,
                   help="-- python -m runner ... refresh ... --workers=N")
    p = sub.add_parser("plan", help="capacity plan from a measurement file")
    p.add_argument("--input", required=True, help="measurement JSON (format in this module)")
    p.add_argument("--wikis", type=int, required=True, help="number of wikis")
    p.add_argument("--pool-target", type=int, required=True, help="articles per wiki's pool")
    p.add_argument("--churn", type=float, required=True,
                   help="fraction of each pool to refill per day (edits, completed tasks)")
    p.add_argument("--success-rate", type=float, required=True,
                   help="fraction of evaluated candidates that become tasks")
    p.add_argument("--workers", type=int, default=Assumptions.workers,
                   help="worker processes per pod (default %(default)s)")
    p.add_argument("--runs-per-day", type=int, default=Assumptions.runs_per_day,
                   help="CronJob runs per group per day (default %(default)s)")
    p.add_argument("--max-runtime", type=float, default=Assumptions.max_runtime,
                   help="runner --max-runtime in seconds (default %(default)s)")
    p.add_argument("--startup-seconds", type=float, default=Assumptions.startup_seconds,
                   help="fixed cost per wiki and run (default %(default)s)")
    p.add_argument("--memory-headroom", type=float, default=Assumptions.memory_headroom,
                   help="factor over measured peak RSS (default %(default)s)")
    p.add_argument("--backfill-shards", type=int, default=Assumptions.backfill_shards,
                   help="pods of one backfill Job (default %(default)s)")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--update-doc", metavar="FILE",
                   help="write the markdown between the capacity markers of FILE")
    return root


def _measure_main(args: argparse.Namespace) -> int:
    command = args.runner_command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("capacity: error: measure: give the runner command after --", file=sys.stderr)
        return 2
    try:
        record = measure(command, args.machine)
    except (InputError, ValueError, OSError) as e:
        print(f"capacity: error: {e}", file=sys.stderr)
        return 1
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    load_measurement(args.out)  # what was written is what plan() accepts
    print(json.dumps(record, indent=2))
    return 0


def _plan_main(args: argparse.Namespace, argv: list[str]) -> int:
    try:
        m = load_measurement(args.input)
        a = Assumptions(
            wikis=args.wikis, pool_target=args.pool_target, churn=args.churn,
            success_rate=args.success_rate, workers=args.workers,
            runs_per_day=args.runs_per_day, max_runtime=args.max_runtime,
            startup_seconds=args.startup_seconds, memory_headroom=args.memory_headroom,
            backfill_shards=args.backfill_shards,
        )
        p = plan(m, a)
    except (InputError, ValueError) as e:
        print(f"capacity: error: {e}", file=sys.stderr)
        return 2
    command_args = [x for i, x in enumerate(argv)
                    if x != "--update-doc" and (i == 0 or argv[i - 1] != "--update-doc")]
    command = shlex.join(["python", "benchmarks/capacity.py", *command_args])
    if args.format == "json":
        print(json.dumps({"measurement": asdict(m), "assumptions": asdict(a),
                          "plan": asdict(p), "command": command}, indent=2))
        return 0
    section = render_markdown(m, a, p, command)
    if args.update_doc:
        try:
            update_doc(Path(args.update_doc), section)
        except (InputError, OSError) as e:
            print(f"capacity: error: {e}", file=sys.stderr)
            return 2
    print(section, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.command == "measure":
        return _measure_main(args)
    return _plan_main(args, argv)


if __name__ == "__main__":
    sys.exit(main())

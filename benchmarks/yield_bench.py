"""Yield: tasks stored per 100 pages evaluated, by a real refresh at the shipped defaults.

    .venv/bin/python benchmarks/yield_bench.py [--dumps DIR] [--only WIKI] [--json OUT]

For every shared dump: a model trained on the whole dump (seed 1), then
``python -m runner refresh`` over that dump (dump source, SQLite store, JSON-lines events,
file lock, all in a temporary directory) with the ``allpages`` walk and a pool target no
wiki reaches, so every page of the dump gets an outcome. The criteria are the production
defaults of ``runner.config.Criteria`` (minimumLinkScore 0.75 where SPEC §5 says 0.6,
docs/runner.md; minimumLinksPerTask 2, maximumLinksPerTask 10), not the sample config's
English block. The JSON's ``criteria`` are the defaults when the run started; each result's
``minimum_link_score`` is the one it ran at. Excluded sections and
disambiguation templates are left at their (empty) defaults: they are per-wiki settings.

Printed per wiki: pages evaluated, tasks stored, tasks per 100 pages evaluated, the mean
links of a stored task, and the outcome counts (the run's own summary).

``--scores 0.7,0.8,auto``: one refresh per minimum link score on the same model; ``auto`` is
passed to the runner as such (``criteria.minimum_link_score: auto``), which takes the
whole-dump model's ``training.suggested_minimum_link_score`` (recorded as ``auto_score``).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backtest_all import chosen_dumps, dump_options  # noqa: E402 - benchmarks/, sys.path[0]

from model.train import Settings, train_model  # noqa: E402
from runner.config import Criteria  # noqa: E402

NEVER_REACHED = 1_000_000  # pool target: the walk ends with candidates_exhausted


def refresh(
    dump: Path, work: Path, workers: int, timeout: float, scores: list[float | str | None]
) -> list[dict]:
    """Train on the whole dump, refresh over it through the runner's CLI; the figures.

    One refresh per minimum link score (None: the shipped default), each on a fresh store.
    """
    model = work / "model"
    manifest = train_model(dump, model, Settings(seed=1))
    out = []
    for i, score in enumerate(scores):
        run = work / f"run{i}"
        run.mkdir()
        out.append(_refresh_once(dump, run, model, manifest, workers, timeout, score))
    return out


def _refresh_once(
    dump: Path, work: Path, model: Path, manifest: dict, workers: int, timeout: float,
    score: float | str | None,
) -> dict:
    wiki = manifest["wiki"]
    config = {
        "runner": {"workers": workers, "page_timeout": 60, "max_runtime": timeout},
        "store": {"type": "sqlite", "path": str(work / "addlink.sqlite")},
        "events": {"type": "jsonlines", "path": str(work / "events.jsonl")},
        "lock": {"type": "file", "dir": str(work / "locks")},
        "metrics": {"type": "off"},
        "wikis": {
            wiki: {
                "language": manifest["language"],
                "model": str(model),
                "pool_target": NEVER_REACHED,
                "source": {
                    "type": "dump",
                    "path": str(dump),
                    "complete": manifest["complete"],
                    "cache_dir": str(work / "cache"),
                },
                "candidates": {"strategy": "allpages", "batch_size": 200},
                **({"criteria": {"minimum_link_score": score}} if score is not None else {}),
            }
        },
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    subprocess.run([sys.executable, "-m", "runner", "--config", str(work / "config.yaml"),
                    "migrate"], cwd=REPO, check=True, capture_output=True, timeout=300)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--config", str(work / "config.yaml"),
         "--log-format", "json", "refresh", "--wiki", wiki],
        cwd=REPO, capture_output=True, text=True, timeout=timeout + 120,
    )
    seconds = time.monotonic() - start
    summary = None
    for line in proc.stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "run finished":
            summary = entry
    if proc.returncode != 0 or summary is None:
        raise RuntimeError(f"{wiki}: runner exited {proc.returncode}: {proc.stderr[-500:]}")
    conn = sqlite3.connect(work / "addlink.sqlite")
    stored = [
        json.loads(d)
        for (d,) in conn.execute(
            "SELECT gelr_data FROM growthexperiments_link_recommendations "
            "WHERE gelr_data IS NOT NULL"
        )
    ]
    conn.close()
    evaluated = summary["evaluated"]
    links = [len(d["links"]) for d in stored]
    return {
        "wiki": wiki,
        "minimum_link_score": Criteria().minimum_link_score if score is None else score,
        "auto_score": manifest.get("training", {}).get("suggested_minimum_link_score"),
        "suggestion": manifest.get("training", {}).get("suggestion"),
        "articles": manifest["counts"]["articles"],
        "complete": manifest["complete"],
        "evaluated": evaluated,
        "stored": len(stored),
        "per_100": round(100 * len(stored) / evaluated, 2) if evaluated else 0.0,
        "mean_links": round(sum(links) / len(links), 2) if links else None,
        "outcomes": summary["outcomes"],
        "stop_reason": summary["stop_reason"],
        "seconds": round(seconds, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    dump_options(p)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per refresh at most")
    p.add_argument("--json", type=Path)
    p.add_argument("--scores", help="comma-separated minimum link scores to refresh at "
                   "(default: the shipped default only); one training per dump")
    args = p.parse_args()
    scores = [v if v == "auto" else float(v) for v in args.scores.split(",")] \
        if args.scores else [None]
    dumps = chosen_dumps(args)
    c = Criteria()
    print(
        f"Criteria: minimum_link_score {c.minimum_link_score}, minimum_links_per_task "
        f"{c.minimum_links_per_task}, maximum_links_per_task {c.maximum_links_per_task}\n"
    )
    print("| wiki | minimum link score | pages evaluated | tasks stored | tasks per 100 pages "
          "| mean links per task | outcomes | stop |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for dump in dumps:
        with tempfile.TemporaryDirectory(prefix="addlink-yield-") as work:
            runs = refresh(dump, Path(work), args.workers, args.timeout, scores)
        results += runs
        for r in runs:
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
            shown = r["minimum_link_score"]
            if shown == "auto":
                shown = f"auto = {r['auto_score']}"
            print(f"| {r['wiki']} | {shown} | {r['evaluated']} | "
                  f"{r['stored']} | {r['per_100']:.1f} | "
                  f"{r['mean_links'] if r['mean_links'] is not None else '-'} | {outcomes} | "
                  f"{r['stop_reason']} |", flush=True)
    if args.json:
        doc = {"command": " ".join(sys.argv), "criteria": asdict(c), "results": results}
        args.json.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

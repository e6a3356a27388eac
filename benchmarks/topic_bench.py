"""Pools per topic over ltgwiki: how each topic fills, and tasks per 100 pages evaluated.

    ADDLINK_SERVICES_DIR=... .venv/bin/python benchmarks/topic_bench.py \
        [--per-topic 5] [--batch 10] [--overshoot default|0|N] [--json OUT]

A real refresh (``runner.app.run_wiki``) of the local MediaWiki (scripts/services.sh; page
data, revisions, red links) with per-topic pools over the 8 topics of the CirrusSearch
stand-in (tests/searchindex.py: topics derived from the pages' categories; tags only from
the events the local EventGate stand-in accepts, applied after a 0.3 s lag). SQLite store,
file lock, a model trained on the whole ltgwiki dump (seed 1, var/models/ltgwiki, trained
if missing). Criteria: minimum_link_score 0.4, minimum_links_per_task 1 (the tests'
settings: at the production 0.6/2 ltgwiki has ~40 tasks in all).

Printed per topic: pages evaluated for it (its batches' outcomes, ``addlink_outcomes_total``
by topic), tasks stored from its batches, tasks per 100 evaluated, its final count (a page
counts for each of its topics), target, state (full / exhausted) and still needed, and how
far it went over the target. Then the index's own counts after the lag, which must equal
the run's view.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model.train import Settings, train_model  # noqa: E402
from runner.app import run_wiki  # noqa: E402
from runner.config import parse_config  # noqa: E402
from runner.metrics import PrometheusMetrics  # noqa: E402
from runner.run import RunOptions  # noqa: E402
from tests.eventgate import EventGate  # noqa: E402
from tests.runner_support import LTG_DUMP, migrated  # noqa: E402
from tests.searchindex import TOPICS, SearchIndex, load_pages, topic_wiki  # noqa: E402

API = "http://127.0.0.1:8089/api.php"
UA = "addlink-bench/0.1 (https://example.org/addlink; topic benchmark on 127.0.0.1)"


def model_dir() -> Path:
    out = REPO / "var" / "models" / "ltgwiki"
    if not (out / "manifest.json").is_file():
        train_model(Path(LTG_DUMP), out, Settings(seed=1))
    return out


def one_run(per_topic: int, batch: int, overshoot: int | None, workers: int) -> dict:
    pages = load_pages(API)
    work = Path(tempfile.mkdtemp(prefix="topic-bench-"))
    extra = {} if overshoot is None else {"topic_overshoot": overshoot}
    with SearchIndex(pages, lag=0.3, seed=1) as idx, EventGate() as eg:
        eg.subscribers.append(idx.receive)
        cfg = migrated(parse_config({
            "runner": {"workers": workers, "user_agent": UA},
            "store": {"type": "sqlite", "path": str(work / "a.sqlite")},
            "events": {"type": "eventgate", "url": eg.url},
            "lock": {"type": "file", "dir": str(work / "locks")},
            "wikis": {"ltgwiki": topic_wiki(str(model_dir()), API, idx.url,
                                            per_topic=per_topic, batch=batch, **extra)}},
            env={}))
        metrics = PrometheusMetrics()
        t0 = time.monotonic()
        res = run_wiki(cfg, "ltgwiki", RunOptions(), metrics)
        seconds = time.monotonic() - t0
        idx.settle()
        in_index = {t: idx.count(t) for t in TOPICS}
    rows = []
    for t, f in res.topics.items():
        by_outcome = {}
        for fam in metrics.registry.collect():
            if fam.name != "addlink_outcomes":
                continue
            for s in fam.samples:
                if s.name.endswith("_total") and s.labels.get("topic") == t:
                    by_outcome[s.labels["outcome"]] = int(s.value)
        evaluated = sum(by_outcome.values())
        found = by_outcome.get("success", 0)
        rows.append({"topic": t, "evaluated": evaluated, "tasks_from_its_batches": found,
                     "tasks_per_100": round(100.0 * found / evaluated, 1) if evaluated else 0,
                     "count": f["count"], "target": f["target"], "state": f["state"],
                     "still_needed": f["still_needed"],
                     "over_target": max(0, f["count"] - f["target"]),
                     "dropped_topic_full": f["dropped_topic_full"], "in_index": in_index[t]})
    total_eval = res.evaluated
    return {"per_topic": per_topic, "batch": batch,
            "overshoot": "one batch (default)" if overshoot is None else overshoot,
            "status": res.status, "stop_reason": res.stop_reason, "seconds": round(seconds, 1),
            "evaluated": total_eval, "pool_size": res.pool_after,
            "tasks_per_100": round(100.0 * res.outcomes.get("success", 0) / total_eval, 1)
            if total_eval else 0, "topics": rows,
            "index_equals_view": all(r["in_index"] == r["count"] for r in rows)}


def show(r: dict) -> str:
    head = ("topic", "evaluated", "tasks", "per 100", "count", "target", "state", "needed",
            "over", "dropped", "in index")
    lines = [head] + [(x["topic"], str(x["evaluated"]), str(x["tasks_from_its_batches"]),
                       f"{x['tasks_per_100']:.1f}", str(x["count"]), str(x["target"]),
                       x["state"], str(x["still_needed"]), str(x["over_target"]),
                       str(x["dropped_topic_full"]), str(x["in_index"])) for x in r["topics"]]
    w = [max(len(x[i]) for x in lines) for i in range(len(head))]
    table = "\n".join("  ".join(c.ljust(n) for c, n in zip(x, w, strict=True)) for x in lines)
    return (f"per topic {r['per_topic']}, batches of {r['batch']}, overshoot {r['overshoot']}: "
            f"{r['status']} ({r['stop_reason']}) in {r['seconds']} s, {r['evaluated']} "
            f"evaluated, pool {r['pool_size']} distinct pages, {r['tasks_per_100']} tasks per "
            f"100 evaluated, index = run's view: {r['index_equals_view']}\n{table}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-topic", type=int, default=5)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--overshoot", default="default",
                    help="candidates.topic_overshoot: 'default' (one batch) or a number")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("runner").setLevel(logging.ERROR)
    overshoot = None if args.overshoot == "default" else int(args.overshoot)
    r = one_run(args.per_topic, args.batch, overshoot, args.workers)
    print(show(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()

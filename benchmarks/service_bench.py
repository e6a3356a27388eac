"""Load test of the recommendation service on loopback, beside the in-process recommender.

    .venv/bin/python benchmarks/service_bench.py [--passes 3] [--clients 2] [--workers 2]
        [--json docs/service-bench.json]

- Every shared wiki's model is configured (trained once into var/bench-models/, seed 1).
- gunicorn (service/gunicorn_conf.py, sync workers) on 127.0.0.1, ``--workers`` processes.
- ``--clients`` threads POST the English sample's 106 articles, ``--passes`` times
  (threshold 0.5, max_recommendations 15, the service defaults); one warm-up request per
  worker first (model opening is measured apart by the service's own metric).
- In the same run: the in-process recommender (``model.recommend``) on the same pages in
  this process, one pass before and one after the load; and two such processes at once
  (before and after), the baseline under the same 2-way contention as 2 workers; and the
  host's own 2-process speed-up (two CPU-bound processes vs one), which bounds what 2
  workers can reach here; and one pass with 1 worker and 1 client: the service's own
  overhead without contention.
Figures: requests/s, p50/p99 latency, error rate, RSS per worker, per-worker pages/s over
in-process pages/s. Bounded: 3 x 106 requests by default, loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DUMPS = REPO.parent / "shared" / "data" / "dumps"
MODELS = REPO / "var" / "bench-models"
EN_DUMP = DUMPS / "enwiki-20160501-sample.xml.bz2"


def models() -> dict[str, Path]:
    """dbname -> model directory for every shared dump (trained once, then reused)."""
    from model.train import Settings, train_model

    out = {}
    for dump in sorted(DUMPS.glob("*wiki-*.xml.*")):
        wiki = dump.name.split("-")[0]
        target = MODELS / wiki
        if not (target / "manifest.json").is_file():
            print(f"training {wiki} ...", file=sys.stderr)
            train_model(dump, target, Settings(seed=1))
        out[wiki] = target
    return out


def config(model_dirs: dict[str, Path]) -> dict:
    wikis = {}
    for wiki, directory in model_dirs.items():
        manifest = json.loads((directory / "manifest.json").read_text())
        wikis[wiki] = {"language": manifest["language"], "model": str(directory),
                       "source": {"type": "dump", "path": str(EN_DUMP)}}
    return {"service": {"max_body_bytes": 5_000_000, "deadline": 30,
                        "monitor": {"wiki": "enwiki", "title": "Anarchism"}},
            "wikis": wikis}


def in_process(model_dir: Path, articles: list) -> float:
    from model import open_model, recommend

    model = open_model(model_dir)
    recommend(model, articles[0].text, title=articles[0].title)
    t0 = time.perf_counter()
    for p in articles:
        recommend(model, p.text, title=p.title, pageid=p.page_id, revid=p.rev_id)
    seconds = time.perf_counter() - t0
    model.close()
    return len(articles) / seconds


def _in_process_child(model_dir: str) -> float:
    from model.dump import pages

    articles = [p for p in pages(EN_DUMP) if p.namespace == 0 and not p.redirect]
    return in_process(Path(model_dir), articles)


def in_process_pair(model_dir: Path) -> float:
    """Pages/s of each of two in-process recommenders running at once (mean): the baseline
    under the same 2-way CPU contention as 2 gunicorn workers."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(2) as pool:
        rates = pool.map(_in_process_child, [str(model_dir)] * 2)
    return sum(rates) / len(rates)


def load(url: str, articles: list, passes: int, clients: int) -> dict:
    import requests

    jobs = [p for _ in range(passes) for p in articles]
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def client() -> None:
        http = requests.Session()
        while True:
            with lock:
                if not jobs:
                    return
                p = jobs.pop()
            body = json.dumps({"wikitext": p.text, "revid": p.rev_id, "pageid": p.page_id})
            title = requests.utils.quote(p.title, safe="")
            t0 = time.perf_counter()
            try:
                resp = http.post(f"{url}/v1/linkrecommendations/wikipedia/en/{title}",
                                 data=body, headers={"Content-Type": "application/json"},
                                 timeout=60)
                ok = resp.status_code == 200
                problem = f"HTTP {resp.status_code}"
            except requests.RequestException as e:
                ok, problem = False, type(e).__name__
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if not ok:
                    errors.append(problem)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {"requests": len(lat), "seconds": round(wall, 2),
            "requests_per_s": round(len(lat) / wall, 2),
            "p50_ms": round(statistics.median(lat) * 1000, 1),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1),
            "max_ms": round(lat[-1] * 1000, 1),
            "error_rate": round(len(errors) / len(lat), 4), "errors": errors[:5]}


def rss(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":")
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields.get("VmRSS"), "peak_rss_mb": fields.get("VmHWM")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import requests

    from benchmarks.runner_bench import machine_speedup
    from model.dump import pages
    from tests.service_support import Gunicorn

    model_dirs = models()
    articles = [p for p in pages(EN_DUMP) if p.namespace == 0 and not p.redirect]
    def warm(g: Gunicorn, workers: int) -> dict:
        for p in articles[: workers * 2]:  # every worker opens the model
            requests.post(f"{g.url}/v1/linkrecommendations/wikipedia/en/x",
                          json={"wikitext": p.text, "revid": 1, "pageid": 1}, timeout=120)
        return requests.get(g.url + "/readyz", timeout=120).json()

    before = in_process(model_dirs["enwiki"], articles)
    pair_before = in_process_pair(model_dirs["enwiki"])
    with Gunicorn(config(model_dirs), workers=args.workers) as g:
        ready = warm(g, args.workers)
        result = load(g.url, articles, args.passes, args.clients)
        workers = {pid: rss(pid) for pid in g.worker_pids()}
        metrics = requests.get(g.url + "/metrics", timeout=30).text
    # The same with one worker and one client, one pass: the service's own overhead over
    # in-process, without the host's 2-process contention.
    with Gunicorn(config(model_dirs), workers=1) as g:
        warm(g, 1)
        single = load(g.url, articles, 1, 1)
    pair_after = in_process_pair(model_dirs["enwiki"])
    after = in_process(model_dirs["enwiki"], articles)
    speedup = machine_speedup(2)
    inproc = (before + after) / 2
    pair = (pair_before + pair_after) / 2
    per_worker = result["requests_per_s"] / args.workers
    opens = [line for line in metrics.splitlines()
             if line.startswith("addlink_service_model_open_seconds_sum")]
    report = {
        "command": "benchmarks/service_bench.py " + " ".join(sys.argv[1:]),
        "wikis": sorted(model_dirs), "readiness": ready.get("status"),
        "articles": len(articles), "passes": args.passes, "clients": args.clients,
        "workers": args.workers, "service": result,
        "in_process_pages_per_s": {"before": round(before, 2), "after": round(after, 2)},
        "per_worker_pages_per_s": round(per_worker, 2),
        "per_worker_over_in_process": round(per_worker / inproc, 2),
        "in_process_2_at_once_pages_per_s_each": {"before": round(pair_before, 2),
                                                  "after": round(pair_after, 2)},
        "per_worker_over_in_process_2_at_once": round(per_worker / pair, 2),
        "service_over_in_process": round(result["requests_per_s"] / inproc, 2),
        "host_2_process_speedup": speedup,
        "one_worker_one_client": single,
        "one_worker_over_in_process": round(single["requests_per_s"] / inproc, 2),
        "worker_rss": workers, "model_open_seconds_sum": opens,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

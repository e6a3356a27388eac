"""Recommender speed on one core, against bare parsing, and its scaling with the anchor store.

    .venv/bin/python benchmarks/recommend_bench.py [--model DIR] [--dump FILE]
        [--pad-anchors 2000000] [--json OUT]

Runs the recommender over every article of the English sample and prints pages/s, p50/p95
latency and peak RSS, and in the same run the throughput of bare ``mwparserfromhell.parse``
over the same pages (the floor: every recommendation parses its page once). With
``--pad-anchors N`` it then copies the model, adds N synthetic anchors (keys starting with
"zzsynthetic", targets "Synthetic target N": they can never match real text, as labelled)
and measures again. Each measurement runs in a fresh process so RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DUMP = REPO.parent / "shared" / "data" / "dumps" / "enwiki-20160501-sample.xml.bz2"


def _articles(dump: Path) -> list:
    from model.dump import pages

    return [p for p in pages(dump) if p.namespace == 0 and not p.redirect]


def peak_rss_mb() -> float:
    """VmHWM of this process: unlike ru_maxrss it is not inherited across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(model_dir: Path, dump: Path, rounds: int) -> dict:
    """In this process: bare parse and recommend of each page, one after the other.

    Interleaving the two per page keeps their ratio honest on a machine whose load changes.
    """
    import mwparserfromhell
    import numpy as np

    from model import open_model, recommend

    articles = _articles(dump)
    model = open_model(model_dir)
    recommend(model, articles[0].text, title=articles[0].title)  # warm caches and imports
    parse_times, latencies, links = [], [], 0
    for _ in range(rounds):
        for page in articles:
            t0 = time.perf_counter()
            mwparserfromhell.parse(page.text)
            t1 = time.perf_counter()
            result = recommend(model, page.text, title=page.title)
            t2 = time.perf_counter()
            parse_times.append(t1 - t0)
            latencies.append(t2 - t1)
            links += result["links_count"]
    lat = np.asarray(latencies) * 1000
    parse_rate = len(parse_times) / sum(parse_times)
    rate = len(latencies) / sum(latencies)
    return {
        "pages": len(articles),
        "rounds": rounds,
        "chars_per_page": int(sum(len(p.text) for p in articles) / len(articles)),
        "parse_pages_per_s": round(parse_rate, 2),
        "pages_per_s": round(rate, 2),
        "ratio_to_parse": round(rate / parse_rate, 3),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "peak_rss_mb": peak_rss_mb(),
        "links": links,
        "anchors": json.loads((model_dir / "manifest.json").read_text())["counts"]["anchors"],
    }


def pad(model_dir: Path, out: Path, count: int) -> None:
    """Copy a model and grow its anchor store with clearly labelled synthetic anchors."""
    import numpy as np

    from model.datasets import Bloom
    from model.text import filter_keys

    shutil.copytree(model_dir, out)
    conn = sqlite3.connect(out / "anchors.sqlite")
    rows = (
        (f"zzsynthetic anchor {i:08d}", 0.5, 3, 0.0, json.dumps([[f"Synthetic target {i}", 3]]))
        for i in range(count)
    )
    conn.executemany("INSERT INTO anchors VALUES (?, ?, ?, ?, ?)", rows)
    conn.commit()
    keys = [k for (k,) in conn.execute("SELECT anchor FROM anchors")]
    conn.close()
    manifest = json.loads((out / "manifest.json").read_text())
    keys = sorted(filter_keys(keys, manifest["language"]))
    bloom = Bloom.filled(keys, len(keys))
    np.save(out / "anchors.bloom.npy", bloom.bits)
    manifest["bloom"] = {
        "bytes": len(bloom.bits),
        "hashes": bloom.hashes,
        "scheme": bloom.scheme,
        "whole_keys": True,
    }
    manifest["counts"]["anchors"] = len(keys)
    manifest["counts"]["synthetic_anchors"] = count
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))


def run_child(model_dir: Path, dump: Path, rounds: int) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(model_dir),
            "--dump",
            str(dump),
            "--rounds",
            str(rounds),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "var" / "models" / "enwiki")
    p.add_argument("--dump", type=Path, default=DEFAULT_DUMP)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--pad-anchors", type=int, default=0)
    p.add_argument("--json", type=Path)
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--pad-only", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.pad_only:
        pad(args.model, args.pad_only, args.pad_anchors)
        return 0
    if args.child:
        print(json.dumps(measure(args.child, args.dump, args.rounds)))
        return 0
    if not (args.model / "manifest.json").exists():
        from model.train import train_model

        train_model(args.dump, args.model)
    results = {"base": run_child(args.model, args.dump, args.rounds)}
    if args.pad_anchors:
        with tempfile.TemporaryDirectory() as tmp:
            padded = Path(tmp) / "padded"
            subprocess.run(  # in its own process: this one stays small for the next child
                [
                    sys.executable,
                    __file__,
                    "--pad-only",
                    str(padded),
                    "--model",
                    str(args.model),
                    "--pad-anchors",
                    str(args.pad_anchors),
                ],
                check=True,
            )
            results["padded"] = run_child(padded, args.dump, args.rounds)
        b, g = results["base"], results["padded"]
        results["change"] = {
            "rss": round(g["peak_rss_mb"] / b["peak_rss_mb"] - 1, 3),
            "p50": round(g["p50_ms"] / b["p50_ms"] - 1, 3),
        }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What revalidating the pool costs after a model change (docs/operations.md, "Roll out").

    .venv/bin/python benchmarks/revalidate_cost.py [--pool 100] [--json OUT]

Trains ltgwiki twice (seeds 1 and 2: two model versions), fills a pool with version 1 through
the real runner CLI (dump source, SQLite, JSON-lines events), switches the model symlink to
version 2 the way `model fetch` does, then times `revalidate --checksum-mismatch`: every row
of version 1 is re-evaluated with version 2 (kept, or removed with a clear event). The figure
is wall time per revalidated row next to the refresh's time per stored row, from one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model.publish import switch_link  # noqa: E402
from model.train import Settings, train_model  # noqa: E402

LTG = REPO.parent / "shared" / "data" / "dumps" / "ltgwiki-20170901-pages-articles.xml.bz2"


def runner(config: Path, *args: str) -> tuple[float, list[dict]]:
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "runner", "--config", str(config), *args],
                       cwd=REPO, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"runner {args[0]} exited {r.returncode}: {r.stderr.strip()[-300:]}")
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    return time.monotonic() - start, [x for x in lines if x.get("message") == "run finished"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pool", type=int, default=100, help="rows to fill with version 1")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="addlink-revalidate-") as work:
        w = Path(work)
        models = w / "models"
        for seed in (1, 2):
            train_model(LTG, models / f"ltgwiki.v{seed}", Settings(seed=seed))
        (models / "ltgwiki").symlink_to("ltgwiki.v1")
        config = w / "config.yaml"
        config.write_text(yaml.safe_dump({
            "runner": {"workers": 2},
            "store": {"type": "sqlite", "path": str(w / "a.sqlite")},
            "events": {"type": "jsonlines", "path": str(w / "events.jsonl")},
            "lock": {"type": "file", "dir": str(w / "locks")},
            "wikis": {"ltgwiki": {
                "language": "ltg", "model": str(models / "ltgwiki"), "pool_target": args.pool,
                "source": {"type": "dump", "path": str(LTG), "cache_dir": str(w / "cache")},
                "candidates": {"strategy": "allpages"},
                # Low enough that the small wiki fills a pool of this size with version 1.
                "criteria": {"minimum_link_score": 0.2}}}}))
        subprocess.run([sys.executable, "-m", "runner", "--config", str(config), "migrate"],
                       cwd=REPO, check=True, capture_output=True, timeout=300)
        fill_s, (fill,) = runner(config, "refresh")
        switch_link(models / "ltgwiki", "ltgwiki.v2")
        reval_s, (reval,) = runner(config, "revalidate", "--wiki", "ltgwiki",
                                   "--checksum-mismatch")
        selected = sum(n for k, n in reval["outcomes"].items() if k.startswith("revalidated_"))
        figures = {
            "rows_filled": fill["pool_after"],
            "refresh_seconds": round(fill_s, 2),
            "refresh_pages_evaluated": fill["evaluated"],
            "revalidate_seconds": round(reval_s, 2),
            "revalidate_outcomes": reval["outcomes"],
            "revalidated_rows": selected,
            "seconds_per_revalidated_row": round(reval_s / max(1, selected), 3),
            "pool_after_revalidate": reval["pool_after"],
        }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

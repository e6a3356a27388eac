"""Does ``python -m model train --workers N`` give the same model for every N, on every dump?

    nice -n 5 .venv/bin/python benchmarks/train_identity.py [--workers 1 2 3] \
        [--dumps DUMP ...] [--json docs/train-identity.json]

Trains each shared dump (default: all of ../shared/data/dumps) once per worker count, each
in a child ``python -m model train`` process, and compares every file of the model
directories byte for byte, plus the manifest with its run fields (``seconds``, ``timing``)
removed. Prints one line per dump and writes the verdicts as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DUMPS = REPO.parent / "shared" / "data" / "dumps"
RUN_FIELDS = ("seconds", "timing")  # how a run went, not what the model is


def fingerprint(model: Path) -> dict:
    """sha256 of every model file, the manifest's without its run fields."""
    out = {}
    for f in sorted(model.iterdir()):
        if f.name == "manifest.json":
            manifest = json.loads(f.read_text(encoding="utf-8"))
            for field in RUN_FIELDS:
                manifest.pop(field, None)
            data = json.dumps(manifest, sort_keys=True).encode()
        else:
            data = f.read_bytes()
        out[f.name] = hashlib.sha256(data).hexdigest()
    return out


def train(dump: Path, out: Path, workers: int) -> dict:
    wiki = dump.name.split("-", 1)[0]
    cmd = [sys.executable, "-m", "model", "train", "--wiki", wiki, "--dump", str(dump),
           "--out", str(out), "--workers", str(workers)]
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return {"fingerprint": fingerprint(out), "checksums": manifest["checksums"],
            "seconds": manifest["seconds"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--dumps", type=Path, nargs="+")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    dumps = args.dumps or sorted(DUMPS.glob("*.xml.*"))
    results = []
    with tempfile.TemporaryDirectory(prefix="train-identity-") as work:
        for dump in dumps:
            runs = {n: train(dump, Path(work) / f"{dump.name}-{n}", n) for n in args.workers}
            first = runs[args.workers[0]]
            same = all(r["fingerprint"] == first["fingerprint"] for r in runs.values())
            differing = sorted(
                {name for r in runs.values() for name, h in r["fingerprint"].items()
                 if first["fingerprint"].get(name) != h}
            )
            results.append({
                "dump": dump.name,
                "identical": same,
                "differing_files": differing,
                "checksums": first["checksums"],
                "seconds": {str(n): r["seconds"] for n, r in runs.items()},
            })
            print(f"{dump.name}: {'identical' if same else 'DIFFERENT ' + ','.join(differing)}"
                  f" for --workers {' '.join(map(str, args.workers))}", flush=True)
            _save(args.json, args.workers, results)
    return 0 if all(r["identical"] for r in results) else 1


def _save(path: Path | None, workers: list[int], results: list[dict]) -> None:
    """After each dump, so a run cut short keeps what it measured."""
    if path:
        path.write_text(json.dumps({
            "command": f"nice -n 5 .venv/bin/python benchmarks/train_identity.py --json {path}",
            "workers": workers,
            "compared": "every model file byte for byte; manifest.json without "
                        + ", ".join(RUN_FIELDS),
            "dumps": results,
        }, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())

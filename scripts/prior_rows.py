"""Make the shipped prior (``model/prior_rows/``): the rows of each shared dump's model.

    .venv/bin/python scripts/prior_rows.py [--dumps ../shared/data/dumps] [--workers N]
        [--out model/prior_rows]

Each dump is trained whole, without a prior (a model keeps only its own rows anyway), and
``SHIPPED_ROWS`` of its training rows, a seeded sample, are written as ``WIKI.npz``. Run it
whenever the features change: ``tests/test_model_prior.py`` fails while the shipped rows are
of another feature set than the code's. The files are the same bytes for the same code and
dumps on one machine (fixed seed, fixed zip member times); on another, the similarity column
may differ in its last bit (seen: 998 of ltgwiki's 2,830 rows, by at most 1.2e-7).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model import prior as priors  # noqa: E402
from model.dump import site_info  # noqa: E402
from model.train import Settings, train_model  # noqa: E402

SEED = 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dumps", type=Path, default=REPO.parent / "shared" / "data" / "dumps")
    p.add_argument("--out", type=Path, default=priors.SHIPPED)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    dumps = sorted(args.dumps.glob("*.xml*"))
    if not dumps:
        print(f"prior_rows: no dumps in {args.dumps}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for dump in dumps:
        wiki = site_info(dump).dbname
        with tempfile.TemporaryDirectory(prefix="addlink-prior-rows-") as work:
            model = Path(work) / "model"
            settings = Settings(seed=SEED, workers=args.workers, prior=())
            train_model(dump, model, settings)
            with np.load(model / priors.FILE) as rows:
                x, y = rows["x"], rows["y"]
                features = str(rows["features"])
            priors.save(args.out / f"{wiki}.npz", x, y, wiki=wiki, features=features,
                        seed=SEED, rows=priors.SHIPPED_ROWS)
        print(f"{wiki}: {min(len(y), priors.SHIPPED_ROWS)} of the {len(y)} rows its model "
              "kept", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

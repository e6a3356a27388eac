"""Other wikis' training rows as a prior for a wiki's classifier.

A small wiki gives its classifier a few thousand rows (the English sample's train half about
50 articles), and what its editors link is learnt from little. The features mean the same on
every wiki (counts, link probability, ambiguity, similarity, what kind of mention), so the
rows of wikis already trained say something about a new one. Every model keeps a seeded
sample of its own training rows (``FILE``); training another wiki with ``Settings.prior``
joins those rows to its own, weighted to a share of its own rows' weight that the folds
choose (``RATIOS``, with 0 among them: a wiki whose own rows predict its held-out articles
better keeps them alone). Measured in docs/model.md, "Rows of other wikis as the
classifier's prior".

Only a model's *own* rows are kept, never the prior it was trained with, so priors do not
compound from model to model; a wiki's own model is refused as its prior (in a backtest that
would put test-half articles into training).

The default prior is ``SHIPPED``: a sample of the rows of the whole-dump models of the shared
dumps, kept in the package (``scripts/prior_rows.py`` makes it), so a wiki nobody has trained
before learns from those wikis without being told to. Its file of the wiki being trained is
left out (a backtest of a shared dump must not learn from its own test half), and it applies
only to the feature set it was made with: ``--features reference`` stays the reference's
classifier, its own rows alone.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.datasets import DatasetError, file_checksum

FILE = "prior.rows.npz"
ROWS = 60_000  # rows kept per model at most (a seeded sample): ~2 MB, and no more weight
# Total weight of the prior's rows relative to the wiki's own rows, chosen among by the
# folds' out-of-fold log loss together with the tree count (model.train.train_classifier).
RATIOS = (0.0, 0.25, 1.0)
# The shipped prior: one rows file per shared dump, at most SHIPPED_ROWS rows each. Fewer
# than a model keeps, so that training (every fold fit at each share) stays cheap; the
# share's weight does not depend on the count (model.train.train_classifier).
SHIPPED = Path(__file__).with_name("prior_rows")
SHIPPED_ROWS = 10_000
SHIPPED_NAME = "shipped"  # in Settings.prior: the rows in SHIPPED
DEFAULT = (SHIPPED_NAME,)  # Settings.prior's default
NONE = "none"  # on the command line: no prior at all


@dataclass(frozen=True)
class Prior:
    """Rows of other wikis, joined: features, labels, the wikis they came from and the sha256
    of each rows file (so a manifest says exactly which models taught it)."""

    x: np.ndarray
    y: np.ndarray
    wikis: tuple[str, ...]
    checksums: tuple[str, ...]


def save(path: Path, x: np.ndarray, y: np.ndarray, *, wiki: str, features: str,
         seed: int, rows: int | None = None) -> None:
    """Keep at most ``rows`` (default ``ROWS``) of a model's training rows (seeded, in row
    order) at ``path``."""
    rows = ROWS if rows is None else rows
    keep = np.arange(len(y))
    if len(y) > rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), rows, replace=False))
    arrays = {"x": np.asarray(x[keep], dtype=np.float32),
              "y": np.asarray(y[keep], dtype=np.float32),
              "wiki": np.array(wiki), "features": np.array(features)}
    # np.savez stamps each member with the time it was written; a fixed stamp keeps the
    # model the same bytes from run to run and for any number of workers.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with z.open(member, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, array, allow_pickle=False)


def _rows_file(source: str | Path) -> Path:
    path = Path(source)
    return path / FILE if path.is_dir() else path


def shipped(*, wiki: str, features: str) -> list[Path]:
    """The shipped rows files a model of ``wiki`` with ``features`` learns from by default:
    every one but the wiki's own, and none for a feature set they were not made with."""
    files = []
    for path in sorted(SHIPPED.glob("*.npz")):
        with np.load(path) as data:
            if str(data["features"]) == features and str(data["wiki"]) != wiki:
                files.append(path)
    return files


def load(sources: Sequence[str | Path], *, wiki: str, features: str,
         columns: int) -> Prior | None:
    """The rows of the models (directories, or their rows files) in ``sources``; None for none.
    ``"shipped"`` among them stands for ``shipped(...)``'s files.

    Raises ``DatasetError`` (a model unusable as a prior: no rows file, another feature set or
    width) and ``ValueError`` (the wiki's own model), each naming the source."""
    expanded: list[str | Path] = []
    for source in sources:
        expanded.extend(shipped(wiki=wiki, features=features) if source == SHIPPED_NAME
                        else [source])
    if not expanded:
        return None
    xs, ys, wikis, checksums = [], [], [], []
    for source in expanded:
        path = _rows_file(source)
        if not path.is_file():
            raise DatasetError(f"prior {source}: no {FILE} (a model trained before priors "
                               "existed keeps none; retrain it)")
        try:
            with np.load(path) as data:
                x, y = data["x"], data["y"]
                of, kind = str(data["wiki"]), str(data["features"])
        except (OSError, ValueError, KeyError) as e:
            raise DatasetError(f"prior {source}: unreadable {FILE} ({e})") from e
        if of == wiki:
            raise ValueError(f"prior {source}: a model of {wiki} itself cannot be its prior")
        if kind != features or x.ndim != 2 or x.shape[1] != columns or len(x) != len(y):
            raise DatasetError(
                f"prior {source}: {kind!r} rows of {x.shape[-1]} features, not {features!r} "
                f"of {columns} (trained by another version; "
                + ("make them again: scripts/prior_rows.py)" if Path(path).parent == SHIPPED
                   else "retrain it)")
            )
        xs.append(x)
        ys.append(y)
        wikis.append(of)
        checksums.append(file_checksum(path))
    return Prior(np.concatenate(xs), np.concatenate(ys), tuple(wikis), tuple(checksums))

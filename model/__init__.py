"""Per-wiki link model: training from a dump, on-disk dataset lookups, recommending, backtest.

Public surface (what the runner and the CLI use):

- ``open_model(path_or_url, wiki=None) -> Model``: a lookup object over one wiki's datasets
  (a model directory written by ``python -m model train``; or, with a ``mysql://`` URL, the
  datasets loaded into MySQL plus the directory for the vectors and classifier).
- ``recommend(model, wikitext, *, title, pageid=0, revid=0, threshold=0.5,
  max_recommendations=15, excluded_sections=()) -> dict``: SPEC §2 format_version 1.
"""

from model.datasets import Model, open_model
from model.recommend import recommend

__all__ = ["Model", "open_model", "recommend"]

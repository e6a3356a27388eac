"""Each worker process opens a wiki's model once, on first use, and keeps it.

``model.open_model`` memory-maps the vectors and Bloom filter and reads the keyed datasets
from SQLite files or MySQL tables on demand, so a worker's memory does not grow with the
wiki's size. A model that fails to open is not remembered: the next request tries again
(a model volume mounted late, a database back up).
"""

from __future__ import annotations

import logging
import time

from model import Model, open_model
from model.wikis import Wiki
from service.config import ServiceConfig
from service.metrics import MODEL_OPEN

log = logging.getLogger("service.models")


class ModelUnavailable(RuntimeError):
    """The wiki's model cannot be opened now (answered 503)."""


class Models:
    def __init__(self, cfg: ServiceConfig) -> None:
        self.cfg = cfg
        self._open: dict[str, Model] = {}

    def get(self, wiki: Wiki) -> Model:
        model = self._open.get(wiki.name)
        if model is not None:
            return model
        t0 = time.perf_counter()
        try:
            model = open_model(wiki.model, store=self.cfg.datasets_store(wiki))
        except Exception as e:  # noqa: BLE001 - any failure to open means "unavailable"
            log.error("model unavailable", extra={"wiki": wiki.name, "error": str(e)})
            raise ModelUnavailable(f"the model of {wiki.name} cannot be opened: "
                                   f"{type(e).__name__}: {e}") from None
        seconds = time.perf_counter() - t0
        MODEL_OPEN.labels(wiki.name).observe(seconds)
        log.info("model opened", extra={"wiki": wiki.name, "seconds": round(seconds, 3)})
        self._open[wiki.name] = model
        return model

    def readiness(self) -> dict[str, str]:
        """wiki -> "ok" or the reason its model does not open."""
        out = {}
        for wiki in self.cfg.wikis.values():
            try:
                self.get(wiki)
                out[wiki.name] = "ok"
            except ModelUnavailable as e:
                out[wiki.name] = str(e)
        return out

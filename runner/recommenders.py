"""Starting the recommend stage: the worker pool that opens the wiki's model once per process,
or calls the recommendation service over HTTP (``recommender.type: service``).

Apart from runner/job.py (which only schedules pages onto the pool) because what a worker
is given, model checksums, thresholds, the service's address, is configuration, and a
failure to start maps to an exit code here: a model that does not open is ``ModelInvalid``,
a service that does not answer ``/readyz`` is ``ServiceUnavailable``.
"""

from __future__ import annotations

import time
from pathlib import Path

from runner.config import Config, WikiConfig
from runner.errors import ModelInvalid, ServiceUnavailable
from runner.preflight import verify_model
from runner.run import RunOptions
from runner.workers import DEFAULT_RECOMMENDER, WorkerError, WorkerPool, available_cpus

SERVICE_RECOMMENDER = "runner.service_client:service_recommender"  # recommender: service


def start_workers(cfg: Config, wiki: WikiConfig, opts: RunOptions) -> tuple[WorkerPool, float]:
    """A started pool for the wiki and the seconds its start took (the model opens)."""
    crit = wiki.criteria
    options: dict = {"threshold": crit.minimum_link_score,
                     "max_recommendations": crit.maximum_links_per_task,
                     "excluded_sections": tuple(crit.excluded_sections)}
    if wiki.model_datasets == "store":
        options["datasets_url"] = cfg.store.datasets_url(wiki.name)
    # The checksums the preflight verified (cached: a stat per file): a worker whose model
    # says otherwise (swapped meanwhile, forged) refuses to start.
    options["expect_checksums"] = verify_model(wiki.model, Path(wiki.source.cache_dir),
                                               in_files=wiki.model_datasets == "files")
    recommender, rec = opts.recommender, cfg.recommender
    if rec.type == "service" and recommender == DEFAULT_RECOMMENDER:
        recommender = SERVICE_RECOMMENDER
        project, domain = wiki.route
        options["service"] = {"url": rec.url, "project": project, "domain": domain,
                              "timeout": rec.timeout, "max_attempts": rec.max_attempts,
                              "backoff": rec.backoff, "user_agent": cfg.runner.user_agent}
    n = opts.workers or cfg.runner.workers or available_cpus()
    pool = WorkerPool(wiki.model, workers=n, page_timeout=cfg.runner.page_timeout,
                      options=options, recommender=recommender)
    t0 = time.monotonic()
    try:
        pool.start()
    except WorkerError as e:
        pool.close()  # the workers that did start
        if recommender == SERVICE_RECOMMENDER:  # the service did not answer /readyz
            raise ServiceUnavailable("the recommendation service", str(e)) from None
        raise ModelInvalid(str(e)) from None
    except BaseException:
        pool.close()
        raise
    return pool, time.monotonic() - t0

"""The recommendation service as the runner's recommender (``recommender: {type: service}``).

The same interface as ``runner.workers.model_recommender`` (the worker pool calls it once
per worker process, then once per page), so the pool keeps its budgets, crash handling and
parallelism: each worker POSTs the wikitext the runner already fetched (SPEC §7) with the
wiki's criteria as query parameters, and gets the same format_version 1 answer the
in-process model gives. It speaks HTTP only: nothing of ``service/`` is imported.

Retries: connection errors, timeouts and 502/503/504 are retried ``max_attempts`` times with
a doubling backoff; any other answer but 200 fails the page at once (the service named the
problem in its JSON body, which becomes the page's error).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import requests

from runner.workers import Task

RETRY_STATUS = {502, 503, 504}


class ServiceError(RuntimeError):
    pass


def service_recommender(model_path: str, options: dict) -> Callable[[Task], dict]:
    """``options["service"]``: url, project, domain, timeout, max_attempts, backoff,
    user_agent; the rest are the ``recommend`` arguments the runner gives every page."""
    options = dict(options)
    svc = options.pop("service")
    options.pop("datasets_url", None)  # the service reads its own datasets
    base = f"{svc['url'].rstrip('/')}/v1/linkrecommendations/{svc['project']}/{svc['domain']}"
    http = requests.Session()
    http.headers["User-Agent"] = svc["user_agent"]
    query = {"threshold": options["threshold"],
             "max_recommendations": options["max_recommendations"]}
    sections = list(options.get("excluded_sections", ()))

    def call(method: str, url: str, **kw) -> requests.Response:
        delay = svc["backoff"]
        for attempt in range(1, svc["max_attempts"] + 1):
            try:
                resp = http.request(method, url, timeout=svc["timeout"], **kw)
                if resp.status_code not in RETRY_STATUS:
                    return resp
                problem = f"HTTP {resp.status_code}: {_message(resp)}"
            except requests.RequestException as e:
                problem = type(e).__name__
            if attempt < svc["max_attempts"]:
                time.sleep(delay)
                delay *= 2
        raise ServiceError(f"recommendation service {svc['url']}: {problem} "
                           f"after {svc['max_attempts']} attempts")

    # Fail at start, as an unopenable model does: the service must be ready for this wiki.
    ready = call("GET", f"{svc['url'].rstrip('/')}/readyz")
    if ready.status_code != 200:
        raise ServiceError(f"recommendation service {svc['url']} not ready: {_message(ready)}")

    def run(task: Task) -> dict:
        body = {"wikitext": task.wikitext, "revid": task.rev_id, "pageid": task.page_id,
                "sections_to_exclude": sections}
        resp = call("POST", f"{base}/{quote(task.title, safe='')}", params=query, json=body)
        if resp.status_code != 200:
            raise ServiceError(f"recommendation service: HTTP {resp.status_code}: "
                               f"{_message(resp)}")
        return resp.json()

    return run


def _message(resp: requests.Response) -> str:
    try:
        data = resp.json()
        return str(data.get("message") or data.get("status") or data)[:300]
    except ValueError:
        return resp.text[:100]

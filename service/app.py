"""The WSGI application: SPEC §7's routes, JSON errors, limits, metrics, one log line per request.

``create_app()`` is gunicorn's app factory (``service.app:create_app()``, config path from
``ADDLINK_CONFIG``). Run it with sync workers (``service/gunicorn_conf.py``): a request is
then handled in the worker's main thread, where the per-request deadline is a ``SIGALRM``
timer that interrupts a long recommendation as the runner's workers do.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import swagger_ui_bundle
from flask import Flask, Response, g, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from model import recommend
from model.titles import InvalidTitle, validate_title
from model.wikis import Wiki
from service.config import ServiceConfig, load_service_config
from service.fetch import ActionApi, BadTitle, PageMissing, UpstreamError, UpstreamTimeout
from service.logs import setup_logging
from service.metrics import LATENCY, LINKS, REQUESTS, render
from service.models import Models, ModelUnavailable
from service.spec import build_spec
from service.titles import MAX_TITLE

log = logging.getLogger("service.request")

ROUTE = "/v1/linkrecommendations/<project>/<domain>/<title:page_title>"
MAX_ID = 2**53 - 1  # exact in every JSON reader
class TitleConverter(PathConverter):
    """Like ``path`` (titles may hold "/"), but any character, so that a title with a line
    break reaches the title check (a 400 naming it) instead of an unmatched-route 404."""

    regex = "[^/][\\s\\S]*?"


class ApiError(Exception):
    """An answer other than 200: status, a stable code, a message naming the problem."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> Response:
        resp = jsonify({"error": self.code, "message": self.message, **self.extra})
        resp.status_code = self.status
        return resp


def bad(parameter: str, message: str) -> ApiError:
    return ApiError(400, "bad_request", f"{parameter}: {message}", parameter=parameter)


class DeadlineExceeded(BaseException):
    """Raised by the deadline timer; a BaseException so no ``except Exception`` eats it."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (main thread only: elsewhere the caller checks
    the clock after each step, which the dev server's threads rely on)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise DeadlineExceeded()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------- parameters


def _float(name: str, default: float, lo: float, hi: float) -> float:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise bad(name, f"expected a number, got {raw[:40]!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise bad(name, f"must be within [{lo:g}, {hi:g}], got {raw[:40]}")
    return value


def _int_arg(name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[+-]?[0-9]{1,20}", raw):  # no blanks: int() and strip() differ
        raise bad(name, f"expected an integer, got {raw[:40]!r}")
    return _range(name, int(raw), lo, hi)


def _range(name: str, value: int, lo: int, hi: int) -> int:
    if not lo <= value <= hi:
        raise bad(name, f"must be within [{lo}, {hi}], got {value}")
    return value


def _sections(values: Any, name: str, limit: int) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise bad(name, "expected a list of section headings (strings)")
    if len(values) > limit:
        raise bad(name, f"at most {limit} sections, got {len(values)}")
    if any(len(v) > MAX_TITLE for v in values):
        raise bad(name, f"a section heading is longer than {MAX_TITLE} characters")
    return tuple(values)


def _body_int(body: dict, name: str) -> int:
    if name not in body:
        raise bad(name, "required in the body")
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(name, f"expected an integer, got {type(value).__name__}")
    return _range(name, value, 0, MAX_ID)


# ---------------------------------------------------------------------------- the app


class Service:
    """Per-process state: the config, the models opened so far, the Action API client."""

    def __init__(self, cfg: ServiceConfig) -> None:
        self.cfg = cfg
        self.models = Models(cfg)
        self.api = ActionApi(cfg)
        self.routes = {w.route: w for w in cfg.wikis.values()}
        self.languages = {w.language for w in cfg.wikis.values()} | {d for _, d in self.routes}
        self.spec = build_spec(cfg)

    def wiki(self, project: str, domain: str) -> Wiki:
        wiki = self.routes.get((project, domain))  # the wiki id is wiki_id(project, domain)
        if wiki is None:
            valid = sorted("/".join(r) for r in self.routes)
            raise ApiError(400, "unknown_wiki",
                           f"unknown project/domain {project[:40]}/{domain[:40]}; valid: "
                           + ", ".join(valid), valid=valid)
        g.wiki = wiki.name
        return wiki

    def recommend(self, project: str, domain: str, page_title: str) -> Response:
        wiki = self.wiki(project, domain)
        limits = self.cfg.service
        title = " ".join(page_title.replace("_", " ").split())
        if not title or len(title) > MAX_TITLE:
            raise bad("page_title", f"must be 1 to {MAX_TITLE} characters")
        try:
            validate_title(title)  # the project's one title rule (model/titles.py)
        except InvalidTitle as e:
            raise bad("page_title", e.rule) from None
        g.title = title
        threshold = _float("threshold", 0.5, 0.0, 1.0)
        max_recs = _int_arg("max_recommendations", 15, 0, limits.max_recommendations)
        language = request.args.get("language_code")
        # Each model tokenizes with the one language it was trained for (its manifest); the
        # parameter is accepted for compatibility and must name a configured language.
        if language is not None and language not in self.languages:
            raise bad("language_code", f"{language[:40]!r} is not a configured language "
                                       f"(known: {', '.join(sorted(self.languages))})")
        sections = _sections(request.args.getlist("sections_to_exclude"),
                             "sections_to_exclude", limits.max_sections_to_exclude)
        if request.method == "POST":
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict):
                raise bad("body", "expected a JSON object {wikitext, revid, pageid}")
            if not isinstance(body.get("wikitext"), str):
                raise bad("wikitext", "required in the body, a string")
            revid, pageid = _body_int(body, "revid"), _body_int(body, "pageid")
            if "sections_to_exclude" in body:
                sections = _sections(body["sections_to_exclude"], "sections_to_exclude",
                                     limits.max_sections_to_exclude)
        else:
            revision = _int_arg("revision", None, 1, MAX_ID)
        t0 = time.monotonic()
        end = t0 + limits.deadline
        try:
            with deadline(limits.deadline):
                model = self.models.get(wiki)
                if request.method == "GET":
                    try:
                        rev = self.api.revision(wiki, title, revision, end - time.monotonic())
                    except BadTitle as e:
                        raise bad("page_title", str(e)) from None
                    title, pageid, revid, wikitext = rev.title, rev.pageid, rev.revid, \
                        rev.wikitext
                    g.title = title
                else:
                    wikitext = body["wikitext"]
                if time.monotonic() > end:
                    raise DeadlineExceeded()
                try:
                    result = recommend(model, wikitext, title=title, pageid=pageid,
                                       revid=revid, threshold=threshold,
                                       max_recommendations=max_recs,
                                       excluded_sections=sections)
                except ValueError as e:
                    raise bad("wikitext", str(e)) from None
                if time.monotonic() > end:
                    raise DeadlineExceeded()
        except DeadlineExceeded:
            raise ApiError(504, "deadline_exceeded",
                           f"not answered within the deadline of {limits.deadline:g} s") from None
        LATENCY.labels(wiki.name, request.method).observe(time.monotonic() - t0)
        LINKS.labels(wiki.name).observe(result["links_count"])
        g.links = result["links_count"]
        return jsonify(result)


def create_app(config: ServiceConfig | str | None = None) -> Flask:
    """The WSGI app; ``config`` is a ServiceConfig, a path, or None for $ADDLINK_CONFIG."""
    cfg = config if isinstance(config, ServiceConfig) else load_service_config(config)
    setup_logging()
    svc = Service(cfg)
    app = Flask("service", static_folder=None)
    app.url_map.converters["title"] = TitleConverter
    app.config["MAX_CONTENT_LENGTH"] = cfg.service.max_body_bytes
    app.json.ensure_ascii = False
    app.extensions["addlink"] = svc
    assets = swagger_ui_bundle.swagger_ui_path

    @app.before_request
    def _start() -> None:
        g.t0 = time.monotonic()
        g.wiki, g.title, g.links = "", None, None

    @app.after_request
    def _finish(resp: Response) -> Response:
        rule = request.endpoint or "unmatched"  # a route's name: linkrecommendations, healthz...
        if rule == "swagger_assets":
            return resp
        REQUESTS.labels(rule, g.get("wiki", ""), str(resp.status_code)).inc()
        log.info("request", extra={
            "method": request.method, "route": rule, "wiki": g.get("wiki", ""),
            "title": g.get("title"), "status": resp.status_code,
            "duration_ms": round((time.monotonic() - g.get("t0", time.monotonic())) * 1000, 1),
            "links": g.get("links")})
        return resp

    @app.errorhandler(ApiError)
    def _api_error(e: ApiError) -> Response:
        return e.response()

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            e.code or 500, "http_error")
        message = e.description or e.name
        if e.code == 413:
            message = f"the request body exceeds {cfg.service.max_body_bytes} bytes"
        resp = ApiError(e.code or 500, code, message).response()
        if e.code == 405 and e.valid_methods:
            resp.headers["Allow"] = ", ".join(e.valid_methods)
        return resp

    @app.errorhandler(Exception)
    def _crash(e: Exception) -> Response:
        log.exception("unhandled error", extra={"wiki": g.get("wiki", ""),
                                                "title": g.get("title")})
        return ApiError(500, "internal_error", f"internal error ({type(e).__name__})").response()

    @app.route(ROUTE, methods=["GET", "POST"])
    def linkrecommendations(project: str, domain: str, page_title: str) -> Response:
        try:
            return svc.recommend(project, domain, page_title)
        except ModelUnavailable as e:
            raise ApiError(503, "model_unavailable", str(e)) from None
        except PageMissing as e:
            raise ApiError(404, "not_found", str(e)) from None
        except UpstreamTimeout as e:
            raise ApiError(504, "deadline_exceeded", str(e)) from None
        except UpstreamError as e:
            raise ApiError(502, "upstream_error", str(e)) from None

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        models = svc.models.readiness()
        ok = all(v == "ok" for v in models.values())
        resp = jsonify({"status": "ok" if ok else "unavailable", "models": models})
        resp.status_code = 200 if ok else 503
        return resp

    @app.get("/openapi.json")
    def spec() -> Response:
        return jsonify(svc.spec)

    @app.get("/metrics")
    def metrics() -> Response:
        text, content_type = render()
        return Response(text, content_type=content_type)

    @app.get("/")
    def docs() -> Response:
        return Response(DOCS_PAGE, content_type="text/html; charset=utf-8")

    @app.get("/static/swagger-ui/<path:name>")
    def swagger_assets(name: str) -> Response:
        return send_from_directory(assets, name, max_age=3600)

    return app


# Swagger UI over /openapi.json; its assets come from the swagger-ui-bundle wheel (no CDN).
# Relative URLs, so the page also works behind a gateway that adds a path prefix.
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>addlink link recommendation service</title>
  <link rel="stylesheet" href="static/swagger-ui/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="static/swagger-ui/swagger-ui-bundle.js"></script>
  <script src="static/swagger-ui/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"});
  </script>
</body>
</html>
"""

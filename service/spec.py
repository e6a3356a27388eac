"""The OpenAPI document (service/openapi.yaml) completed from the configuration.

The path parameters ``project`` and ``domain`` get the configured values as enums (so a
fuzzer mostly reaches real models), and the ``x-amples`` placeholders ``{project}``,
``{domain}`` and ``{title}`` become the monitored wiki's route and page.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from service.config import ServiceConfig
from service.titles import TITLE_PATTERN

SPEC_FILE = Path(__file__).with_name("openapi.yaml")
_TEMPLATE: dict | None = None


def template() -> dict:
    global _TEMPLATE
    if _TEMPLATE is None:
        _TEMPLATE = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    return _TEMPLATE


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, v in values.items():
            value = value.replace("{" + key + "}", v)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def build_spec(cfg: ServiceConfig) -> dict:
    spec = copy.deepcopy(template())
    routes = sorted(w.route for w in cfg.wikis.values())
    params = spec["components"]["parameters"]
    params["project"]["schema"]["enum"] = sorted({p for p, _ in routes})
    params["domain"]["schema"]["enum"] = sorted({d for _, d in routes})
    params["max_recommendations"]["schema"]["maximum"] = cfg.service.max_recommendations
    params["page_title"]["schema"]["pattern"] = TITLE_PATTERN
    params["sections_to_exclude"]["schema"]["maxItems"] = cfg.service.max_sections_to_exclude
    body = spec["components"]["schemas"]["PostBody"]["properties"]
    body["sections_to_exclude"]["maxItems"] = cfg.service.max_sections_to_exclude
    languages = {w.language for w in cfg.wikis.values()} | {d for _, d in routes}
    params["language_code"]["schema"]["enum"] = sorted(languages)
    wiki = cfg.monitor_wiki
    project, domain = wiki.route
    values = {"project": project, "domain": domain, "title": cfg.service.monitor.title}
    for item in spec["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "x-amples" in op:
                op["x-amples"] = _fill(op["x-amples"], values)
    return spec

"""The service's view of the shared YAML file: the wiki list plus a ``service:`` section.

The wiki entries are parsed by ``model/wikis.py``, the same parser the runner uses; the
runner's own fields of an entry (criteria, pool target...) are left to the runner. The
``store:`` section is read only for ``model_datasets: store`` (the MySQL tables of the
datasets); the service never touches the runner's cache tables.

    service:
      api_url: null             # Action API for GET; {domain}/{wiki} filled in; null: each
                                # wiki's source.api_url
      host_header: false        # send "Host: <wiki domain>" (an internal endpoint, as in prod)
      proxy: null               # http(s) proxy URL for the Action API requests
      user_agent: ...
      fetch_timeout: 10         # seconds, one Action API request (also bounded by deadline)
      deadline: 10              # seconds for fetch + recommendation of one request -> 504
      max_body_bytes: 2000000   # POST bodies above -> 413
      max_recommendations: 100  # the cap for callers -> 400 above
      max_sections_to_exclude: 50
      monitor: {wiki: null, title: "Main Page"}   # the page the spec's GET x-ample asks for
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.wikis import (
    ConfigError,
    StoreSection,
    Wiki,
    check_datasets,
    expand,
    parse_wikis,
    positive,
    read_yaml,
    section,
)

CONFIG_ENV = "ADDLINK_CONFIG"


@dataclass(frozen=True)
class MonitorSection:
    wiki: str | None = None  # None: the first configured wiki
    title: str = "Main Page"


@dataclass(frozen=True)
class ServiceSection:
    api_url: str | None = None
    host_header: bool = False
    proxy: str | None = None
    user_agent: str = "addlink-service/0.1 (https://www.mediawiki.org/wiki/Growth)"
    fetch_timeout: float = 10.0
    deadline: float = 10.0
    max_body_bytes: int = 2_000_000
    max_recommendations: int = 100
    max_sections_to_exclude: int = 50
    monitor: MonitorSection = MonitorSection()


@dataclass(frozen=True)
class ServiceConfig:
    wikis: dict[str, Wiki]
    service: ServiceSection = ServiceSection()
    store: StoreSection = StoreSection()
    path: str = "<memory>"

    def api_url(self, wiki: Wiki) -> str | None:
        """The Action API URL of ``wiki`` for GET; None when none is configured."""
        if self.service.api_url:
            return (self.service.api_url.replace("{wiki}", wiki.name)
                    .replace("{domain}", wiki.domain or ""))
        return wiki.source.api_url

    def datasets_store(self, wiki: Wiki) -> str | None:
        """``store=`` of ``model.open_model``: the MySQL URL, or None for the SQLite files."""
        return self.store.datasets_url(wiki.name) if wiki.model_datasets == "store" else None

    @property
    def monitor_wiki(self) -> Wiki:
        name = self.service.monitor.wiki or next(iter(self.wikis))
        return self.wikis[name]


def parse_service_config(raw: Any, path: str = "<memory>",
                         env: typing.Mapping[str, str] | None = None) -> ServiceConfig:
    env = os.environ if env is None else env
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    raw = expand(raw, "config", env)
    wikis = parse_wikis(raw, Wiki, env, strict=False)
    svc = section(ServiceSection, raw.get("service"), "service", env)
    # only the store's location matters here; the runner validates the rest of the section
    store = section(StoreSection, raw.get("store"), "store", env, strict=False)
    cfg = ServiceConfig(wikis=wikis, service=svc, store=store, path=path)
    for name in ("fetch_timeout", "deadline", "max_body_bytes", "max_recommendations",
                 "max_sections_to_exclude"):
        positive(getattr(svc, name), f"service.{name}")
    if svc.monitor.wiki is not None and svc.monitor.wiki not in wikis:
        raise ConfigError(f"service.monitor.wiki: {svc.monitor.wiki} is not a configured wiki")
    if svc.api_url and not svc.api_url.startswith(("http://", "https://")):
        raise ConfigError("service.api_url: expected an http(s) URL of api.php")
    if svc.proxy and not svc.proxy.startswith(("http://", "https://")):
        raise ConfigError("service.proxy: expected an http(s) proxy URL")
    routes: dict[tuple[str, str], str] = {}
    for w in wikis.values():
        if w.route in routes:
            raise ConfigError(f"wikis.{w.name}: same project/domain {'/'.join(w.route)} "
                              f"as {routes[w.route]}")
        routes[w.route] = w.name
    check_datasets(wikis.values(), store)
    return cfg


def load_service_config(path: str | os.PathLike | None = None,
                        env: typing.Mapping[str, str] | None = None) -> ServiceConfig:
    """Read the config file at ``path`` (default: ``$ADDLINK_CONFIG``)."""
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"no config: pass --config FILE or set {CONFIG_ENV}")
    return parse_service_config(read_yaml(Path(path)), str(path), env)

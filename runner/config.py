"""The runner's YAML configuration: typed, validated before any work, secrets kept out of logs.

Layout (see ``runner/sample-config.yaml`` and docs/runner.md)::

    runner:   {workers, page_timeout, batch_size, max_runtime, user_agent}
    store:    {type: sqlite, path} | {type: mysql, url, password_env|password_file, ...}
    events:   {type: jsonlines, path} | {type: eventgate, url, stream, token_env|token_file, ...}
    lock:     {type: file, dir} | {type: zookeeper, hosts, root, timeout}
    metrics:  {type: "off"} | {type: statsd, host, port}
    defaults: {...any wiki field...}     # merged under every wiki
    wikis:
      <dbname>: {language, domain, model, pool_target, source, candidates, criteria, ...}

String values may use ``${VAR}`` or ``${VAR:-default}``. Secrets are only read from
``<name>_env`` (an environment variable's name) or ``<name>_file`` (a file's path) keys; a
literal secret in the file is refused so that configs can be committed and logged safely.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

SAMPLE_CONFIG = Path(__file__).with_name("sample-config.yaml")


class ConfigError(ValueError):
    """A problem in the configuration; the message names the field."""


class Secret:
    """A secret value whose repr/str never shows it."""

    __slots__ = ("_value", "origin")

    def __init__(self, value: str, origin: str) -> None:
        self._value = value
        self.origin = origin  # e.g. "env ADDLINK_DB_PASSWORD", safe to log

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<redacted>, from {self.origin})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _secret(**kw: Any) -> Any:
    return field(metadata={"secret": True}, **kw)


# ---------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class RunnerSection:
    workers: int | None = None  # None: the CPU count
    page_timeout: float = 60.0  # seconds of model time per page before it counts as "other"
    batch_size: int = 500  # candidates per batch (SPEC §5)
    max_runtime: float | None = None  # seconds; the CronJob's deadline minus a margin
    user_agent: str = "addlink-runner/0.1 (https://www.mediawiki.org/wiki/Growth)"


@dataclass(frozen=True)
class StoreSection:
    type: Literal["sqlite", "mysql"] = "sqlite"
    path: str = "var/addlink.sqlite"  # sqlite; may contain {wiki}
    url: str | None = None  # mysql://user@host:port/db; db may contain {wiki}
    password: Secret | None = _secret(default=None)
    create_database: bool = False  # mysql: CREATE DATABASE IF NOT EXISTS (dev, tests)
    connect_timeout: float = 10.0

    def location(self, wiki: str) -> str:
        raw = self.path if self.type == "sqlite" else (self.url or "")
        return raw.replace("{wiki}", wiki)


@dataclass(frozen=True)
class EventsSection:
    type: Literal["jsonlines", "eventgate"] = "jsonlines"
    path: str = "var/events.jsonl"  # jsonlines; may contain {wiki}
    url: str | None = None  # eventgate base URL, e.g. http://eventgate:8192
    stream: str = "mediawiki.cirrussearch.page_weighted_tags_change.rc0"
    schema_uri: str = "/development/cirrussearch/page_weighted_tags_change/1.0.0"
    token: Secret | None = _secret(default=None)  # sent as "Authorization: Bearer"
    batch_size: int = 100
    timeout: float = 10.0
    max_attempts: int = 5  # per publish pass, for 5xx / connection errors
    backoff: float = 0.5  # seconds, doubled after each attempt
    hasty: bool = False  # ?hasty=true: EventGate answers 202 without waiting


@dataclass(frozen=True)
class LockSection:
    type: Literal["file", "zookeeper"] = "file"
    dir: str = "var/locks"
    hosts: str = "127.0.0.1:2181"
    root: str = "/addlink"
    timeout: float = 10.0  # zookeeper connection timeout


@dataclass(frozen=True)
class MetricsSection:
    type: Literal["off", "statsd"] = "off"
    host: str = "127.0.0.1"
    port: int = 8125


@dataclass(frozen=True)
class SourceSection:
    type: Literal["api", "dump"] = "api"
    # api
    api_url: str | None = None
    bot_user: str | None = None
    bot_password: Secret | None = _secret(default=None)
    maxlag: int = 5
    timeout: float = 30.0
    max_retries: int = 5
    # dump
    path: str | None = None
    complete: bool = False  # True only for a whole wiki: then a missing target is a red link
    cache_dir: str = "var/cache"


@dataclass(frozen=True)
class CandidatesSection:
    strategy: Literal["search", "random", "allpages"] = "random"
    topics: tuple[str, ...] = ()  # ORES topics for "search" (CirrusSearch)
    seed: int | None = None  # random order of the dump source; None: a new order each run
    batch_size: int | None = None  # overrides runner.batch_size


@dataclass(frozen=True)
class Criteria:
    """SPEC §5 task-type settings with the production defaults."""

    minimum_links_per_task: int = 2
    minimum_link_score: float = 0.6
    maximum_links_per_task: int = 10  # sent to the model as max_recommendations
    maximum_links_to_show_per_task: int = 3
    minimum_time_since_last_edit: int = 86400  # seconds
    minimum_word_count: int = 0
    maximum_word_count: int | None = None  # None: unlimited
    excluded_templates: tuple[str, ...] = ()
    excluded_categories: tuple[str, ...] = ()
    # Vanilla MediaWiki has no Disambiguator page prop: these templates mark a page as one.
    disambiguation_templates: tuple[str, ...] = ()
    excluded_sections: tuple[str, ...] = ()  # heading names; "%LEAD%" = the lead
    rejection_limit: int = 2  # a target rejected this many times is never suggested again


@dataclass(frozen=True)
class WikiConfig:
    name: str  # the dbname, e.g. "enwiki"
    language: str
    model: str  # model directory (made by `python -m model train`)
    source: SourceSection
    domain: str | None = None  # e.g. "en.wikipedia.org", used in events' meta.domain
    pool_target: int = 500
    candidates: CandidatesSection = CandidatesSection()
    criteria: Criteria = Criteria()
    # Where the model's keyed datasets are read from: "files" (the SQLite files in the model
    # directory) or "store" (the MySQL tables `python -m model load` wrote into the store's
    # database; the directory still gives the classifier, vectors and Bloom filter).
    model_datasets: Literal["files", "store"] = "files"


@dataclass(frozen=True)
class Config:
    wikis: dict[str, WikiConfig]
    runner: RunnerSection = RunnerSection()
    store: StoreSection = StoreSection()
    events: EventsSection = EventsSection()
    lock: LockSection = LockSection()
    metrics: MetricsSection = MetricsSection()
    path: str = "<memory>"

    def wiki(self, name: str) -> WikiConfig:
        try:
            return self.wikis[name]
        except KeyError:
            known = ", ".join(sorted(self.wikis)) or "none"
            raise ConfigError(f"wikis.{name}: unknown wiki (configured: {known})") from None


# ---------------------------------------------------------------------------- loading

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: Any, where: str, env: typing.Mapping[str, str]) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set")

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}", env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", env) for i, v in enumerate(value)]
    return value


def _read_secret(data: dict, name: str, where: str, env: typing.Mapping[str, str]) -> Any:
    """Pop ``name``, ``name_env`` and ``name_file`` from ``data``; return a Secret or None."""
    if name in data:
        raise ConfigError(
            f"{where}.{name}: secrets are not allowed in the config file; "
            f"use {name}_env (an environment variable) or {name}_file (a file path)"
        )
    env_key, file_key = f"{name}_env", f"{name}_file"
    if env_key in data and file_key in data:
        raise ConfigError(f"{where}: give only one of {env_key} and {file_key}")
    if env_key in data:
        var = data.pop(env_key)
        if not isinstance(var, str) or not var:
            raise ConfigError(f"{where}.{env_key}: expected the name of an environment variable")
        if var not in env:
            raise ConfigError(f"{where}.{env_key}: environment variable {var} is not set")
        return Secret(env[var], f"env {var}")
    if file_key in data:
        path = data.pop(file_key)
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{where}.{file_key}: expected a file path")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{where}.{file_key}: cannot read {path}: {e.strerror}") from None
        return Secret(text.rstrip("\r\n"), f"file {path}")
    return None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str, env: typing.Mapping[str, str]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where, env)
    if origin is Literal:
        if value is False and "off" in args:
            value = "off"  # YAML 1.1 reads a bare off as false
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{where}: {value!r} is not one of {choices}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(v, args[0], f"{where}[{i}]", env) for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return _build(tp, value, where, env)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{where}: expected a string, got {type(value).__name__}")
        return str(value)
    raise ConfigError(f"{where}: unsupported type {_type_name(tp)}")  # pragma: no cover


def _build(cls: Any, data: dict, where: str, env: typing.Mapping[str, str] | None = None) -> Any:
    env = os.environ if env is None else env
    data = dict(data)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("secret"):
            kwargs[f.name] = _read_secret(data, f.name, where, env)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names or key in kwargs:
            allowed = ", ".join(sorted(names))
            raise ConfigError(f"{where}.{key}: unknown field (known: {allowed})")
    for f in dataclasses.fields(cls):
        if f.name in kwargs:
            continue
        if f.name in data:
            kwargs[f.name] = _coerce(data[f.name], hints[f.name], f"{where}.{f.name}", env)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{f.name}: required field is missing")
    return cls(**kwargs)


def _positive(value: float | int | None, where: str, zero_ok: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(f"{where}: must be {'>= 0' if zero_ok else '> 0'}, got {value}")


def _check(cfg: Config) -> None:
    """Cross-field rules that the types alone cannot express."""
    r = cfg.runner
    _positive(r.workers, "runner.workers")
    _positive(r.page_timeout, "runner.page_timeout")
    _positive(r.batch_size, "runner.batch_size")
    _positive(r.max_runtime, "runner.max_runtime")
    if cfg.store.type == "mysql" and not (cfg.store.url or "").startswith("mysql://"):
        raise ConfigError("store.url: a mysql store needs url: mysql://user@host[:port]/database")
    if cfg.events.type == "eventgate" and not (cfg.events.url or "").startswith(("http://",
                                                                                  "https://")):
        raise ConfigError("events.url: an eventgate sink needs url: http(s)://host:port")
    _positive(cfg.events.batch_size, "events.batch_size")
    _positive(cfg.events.max_attempts, "events.max_attempts")
    if not cfg.wikis:
        raise ConfigError("wikis: at least one wiki must be configured")
    if len(cfg.wikis) > 1:
        key = "path" if cfg.store.type == "sqlite" else "url"
        if "{wiki}" not in (cfg.store.path if key == "path" else cfg.store.url or ""):
            raise ConfigError(
                f"store.{key}: with several wikis it must contain {{wiki}} "
                "(each wiki has its own GrowthExperiments tables, as in production)"
            )
    for name, w in cfg.wikis.items():
        at = f"wikis.{name}"
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise ConfigError(f"{at}: a wiki key must be a dbname like enwiki")
        _positive(w.pool_target, f"{at}.pool_target", zero_ok=True)
        c = w.criteria
        _positive(c.minimum_links_per_task, f"{at}.criteria.minimum_links_per_task", True)
        _positive(c.maximum_links_per_task, f"{at}.criteria.maximum_links_per_task")
        if not 0.0 <= c.minimum_link_score <= 1.0:
            raise ConfigError(f"{at}.criteria.minimum_link_score: must be within [0, 1]")
        if c.minimum_links_per_task > c.maximum_links_per_task:
            raise ConfigError(
                f"{at}.criteria.minimum_links_per_task: larger than maximum_links_per_task"
            )
        if c.maximum_word_count is not None and c.maximum_word_count < c.minimum_word_count:
            raise ConfigError(f"{at}.criteria.maximum_word_count: below minimum_word_count")
        _positive(c.rejection_limit, f"{at}.criteria.rejection_limit")
        s = w.source
        if s.type == "api" and not (s.api_url or "").startswith(("http://", "https://")):
            raise ConfigError(f"{at}.source.api_url: an api source needs the api.php URL")
        if s.type == "api" and bool(s.bot_user) != bool(s.bot_password):
            raise ConfigError(
                f"{at}.source: bot_user and bot_password_env/_file go together"
            )
        if s.type == "dump":
            if not s.path:
                raise ConfigError(f"{at}.source.path: a dump source needs the dump's path")
            if not Path(s.path).is_file():
                raise ConfigError(f"{at}.source.path: no such file: {s.path}")
            if w.candidates.strategy == "search":
                raise ConfigError(
                    f"{at}.candidates.strategy: 'search' needs an api source "
                    "(a dump source offers random and allpages)"
                )
        _positive(w.candidates.batch_size, f"{at}.candidates.batch_size")
        if not w.model:
            raise ConfigError(f"{at}.model: required")
        if w.model_datasets == "store" and cfg.store.type != "mysql":
            raise ConfigError(f"{at}.model_datasets: 'store' needs store.type mysql")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_config(raw: Any, path: str = "<memory>",
                 env: typing.Mapping[str, str] | None = None) -> Config:
    """Validate a parsed YAML document (a mapping) into a ``Config``."""
    env = os.environ if env is None else env
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    raw = _expand(raw, "config", env)
    top = {k: v for k, v in raw.items() if k not in ("wikis", "defaults")}
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError("defaults: expected a mapping")
    wikis_raw = raw.get("wikis")
    if not isinstance(wikis_raw, dict):
        raise ConfigError("wikis: required mapping of dbname -> settings")
    wikis: dict[str, WikiConfig] = {}
    for name, body in wikis_raw.items():
        if not isinstance(body, dict):
            raise ConfigError(f"wikis.{name}: expected a mapping")
        merged = _merge(defaults, body)
        if "name" in merged:
            raise ConfigError(f"wikis.{name}.name: the wiki's name is its key; remove it")
        wikis[str(name)] = _build(WikiConfig, {"name": str(name), **merged},
                                  f"wikis.{name}", env)
    cfg_fields = {f.name for f in dataclasses.fields(Config)} - {"wikis", "path"}
    for key in top:
        if key not in cfg_fields:
            raise ConfigError(f"{key}: unknown section (known: defaults, wikis, "
                              f"{', '.join(sorted(cfg_fields))})")
    hints = typing.get_type_hints(Config)
    sections = {k: _coerce_section(hints[k], top.get(k), k, env) for k in cfg_fields}
    cfg = Config(wikis=wikis, path=path, **sections)
    _check(cfg)
    return cfg


def _coerce_section(tp: Any, value: Any, where: str, env: typing.Mapping[str, str]) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping")
    return _build(tp, value, where, env)


def load_config(path: str | os.PathLike | None = None,
                env: typing.Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file (default: the embedded sample config)."""
    p = Path(path) if path else SAMPLE_CONFIG
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config: {e.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    return parse_config(raw, str(p), env)

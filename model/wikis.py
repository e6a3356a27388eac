"""The wiki list shared by the refresh job and the recommendation service: ONE parser.

Both ``runner/`` and ``service/`` read the same YAML file (docs/runner.md, docs/service.md).
What they share lives here: the typed-YAML machinery (``${VAR}`` expansion, secrets only
from ``*_env``/``*_file`` keys, dataclass coercion with errors naming the field, the
``defaults:`` merge) and the wiki entry itself (``Wiki``: dbname, language, domain, model
directory, where its datasets are read from, its Action API). The runner extends ``Wiki`` with
its pool and criteria fields; the service reads the base entry and ignores the rest.

It lives in ``model/`` because ``model/`` depends on nothing of ours and both ``runner/`` and
``service/`` already import it (as ``model/exitcodes.py``); it does not import the model.
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
from urllib.parse import quote, urlsplit, urlunsplit

import yaml

Env = typing.Mapping[str, str]


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


def secret_field(**kw: Any) -> Any:
    """A dataclass field read from ``<name>_env`` or ``<name>_file``, never from the file."""
    return field(metadata={"secret": True}, **kw)


# ---------------------------------------------------------------------------- the wiki entry


@dataclass(frozen=True)
class SourceSection:
    """Where a wiki's pages come from: its Action API (the service's GET uses it too) or a
    dump (the runner only)."""

    type: Literal["api", "dump"] = "api"
    # api
    api_url: str | None = None
    bot_user: str | None = None
    bot_password: Secret | None = secret_field(default=None)
    maxlag: int = 5
    timeout: float = 30.0
    max_retries: int = 5
    # Where list=search goes (CirrusSearch; None: api_url). Tests point it at the stand-in
    # of tests/searchindex.py. cirrus: whether that endpoint runs CirrusSearch (None: ask
    # its siteinfo once). search_lag: seconds the index may take to apply a tag (drift leaves
    # pages acknowledged more recently alone).
    search_url: str | None = None
    cirrus: bool | None = None
    search_lag: float = 600.0
    # dump
    path: str | None = None
    complete: bool = False  # True only for a whole wiki: then a missing target is a red link
    cache_dir: str = "var/cache"


@dataclass(frozen=True)
class StoreSection:
    """The runner's store; with ``model_datasets: store`` also where the model's datasets
    are read from (the MySQL tables ``python -m model load`` wrote), hence shared."""

    type: Literal["sqlite", "mysql"] = "sqlite"
    path: str = "var/addlink.sqlite"  # sqlite; may contain {wiki}
    url: str | None = None  # mysql://user@host:port/db; db may contain {wiki}
    password: Secret | None = secret_field(default=None)
    create_database: bool = False  # mysql: CREATE DATABASE IF NOT EXISTS (dev, tests)
    connect_timeout: float = 10.0  # seconds; every MySQL call has a deadline (docs/runner.md)
    read_timeout: float = 30.0  # seconds without an answer to a query: the server is gone
    write_timeout: float = 30.0

    def location(self, wiki: str) -> str:
        raw = self.path if self.type == "sqlite" else (self.url or "")
        return raw.replace("{wiki}", wiki)

    def datasets_url(self, wiki: str) -> str:
        """The MySQL URL with its password, for ``model.open_model(..., store=URL)``.

        It goes to worker processes through their pipe or stays in the process; never logged.
        """
        url = urlsplit(self.location(wiki))
        password = self.password.reveal() if self.password else ""
        if password:
            user = url.username or "root"
            host = url.hostname or "127.0.0.1"
            port = f":{url.port}" if url.port else ""
            url = url._replace(netloc=f"{quote(user)}:{quote(password, safe='')}@{host}{port}")
        return urlunsplit(url)


# Projects whose dbname is {domain}{project} (SPEC §7); "wikipedia" is {domain}wiki.
PROJECTS = ("wikipedia", "wiktionary", "wikibooks", "wikinews", "wikiquote", "wikisource",
            "wikiversity", "wikivoyage")


def wiki_id(project: str, domain: str) -> str:
    """SPEC §7: the wiki id of a route's ``{project}/{domain}`` pair."""
    return f"{domain}wiki" if project == "wikipedia" else f"{domain}{project}"


@dataclass(frozen=True)
class Wiki:
    """One entry of the ``wikis:`` list, the part every consumer needs."""

    name: str  # the dbname, e.g. "enwiki"
    language: str
    model: str  # model directory (made by `python -m model train`)
    source: SourceSection
    domain: str | None = None  # e.g. "en.wikipedia.org", used in events' meta.domain
    # Where the model's keyed datasets are read from: "files" (the SQLite files in the model
    # directory) or "store" (the MySQL tables `python -m model load` wrote into the store's
    # database; the directory still gives the classifier, vectors and Bloom filter).
    model_datasets: Literal["files", "store"] = "files"

    @property
    def route(self) -> tuple[str, str]:
        """(project, domain) of the service's URL: from the host name when configured
        (``en.wikipedia.org`` -> wikipedia/en), else from the dbname (``ltgwiki``)."""
        if self.domain and self.domain.count(".") >= 2:
            sub, project = self.domain.split(".")[:2]
            return project, sub
        for project in PROJECTS[1:]:
            if self.name.endswith(project) and len(self.name) > len(project):
                return project, self.name[: -len(project)]
        return "wikipedia", self.name.removesuffix("wiki")


# ---------------------------------------------------------------------------- typed YAML

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(value: Any, where: str, env: Env) -> Any:
    """``${VAR}`` / ``${VAR:-default}`` in every string of a parsed document."""
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
        return {k: expand(v, f"{where}.{k}", env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, f"{where}[{i}]", env) for i, v in enumerate(value)]
    return value


def _read_secret(data: dict, name: str, where: str, env: Env) -> Any:
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


def _coerce(value: Any, tp: Any, where: str, env: Env) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(value, inner[0], where, env)
        # e.g. float | Literal["auto"]: the first type the value fits, else one line naming all
        for tp_ in inner:
            try:
                return _coerce(value, tp_, where, env)
            except ConfigError:
                pass
        choices = " or ".join(_describe(a) for a in inner)
        raise ConfigError(f"{where}: expected {choices}, got {value!r}")
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
        return build(tp, value, where, env)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # e.g. "${ADDLINK_SCHEDULE_INTERVAL:-3600}" after expansion
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{where}: expected a string, got {type(value).__name__}")
        return str(value)
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"{where}: unsupported type {name}")  # pragma: no cover


def _describe(tp: Any) -> str:
    """How a config error names a type: 'a number', "'auto'"."""
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    return {float: "a number", int: "an integer", bool: "true or false",
            str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


def build(cls: Any, data: dict, where: str, env: Env | None = None,
          strict: bool = True) -> Any:
    """A dataclass from a mapping; unknown keys are an error unless ``strict`` is False
    (the service reads the runner's wiki entries and leaves the runner's fields to it)."""
    env = os.environ if env is None else env
    data = dict(data)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    if not strict:
        data = {k: v for k, v in data.items()
                if k in names or k.removesuffix("_env").removesuffix("_file") in names}
    for f in fields:
        if f.metadata.get("secret"):
            kwargs[f.name] = _read_secret(data, f.name, where, env)
    for key in data:
        if key not in names or key in kwargs:
            allowed = ", ".join(sorted(names))
            raise ConfigError(f"{where}.{key}: unknown field (known: {allowed})")
    for f in fields:
        if f.name in kwargs:
            continue
        if f.name in data:
            kwargs[f.name] = _coerce(data[f.name], hints[f.name], f"{where}.{f.name}", env)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{f.name}: required field is missing")
    return cls(**kwargs)


def section(tp: Any, value: Any, where: str, env: Env, strict: bool = True) -> Any:
    """One top-level section (a mapping, absent = all defaults)."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping")
    return build(tp, value, where, env, strict)


def positive(value: float | int | None, where: str, zero_ok: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(f"{where}: must be {'>= 0' if zero_ok else '> 0'}, got {value}")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------- the document


def read_yaml(path: str | os.PathLike) -> Any:
    """The parsed YAML document at ``path``; errors name the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config: {e.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None


W = typing.TypeVar("W", bound=Wiki)


def parse_wikis(raw: dict, cls: type[W], env: Env, strict: bool = True) -> dict[str, W]:
    """The ``wikis:`` mapping of an expanded document, ``defaults:`` merged under each."""
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError("defaults: expected a mapping")
    wikis_raw = raw.get("wikis")
    if not isinstance(wikis_raw, dict):
        raise ConfigError("wikis: required mapping of dbname -> settings")
    wikis: dict[str, W] = {}
    for name, body in wikis_raw.items():
        if not isinstance(body, dict):
            raise ConfigError(f"wikis.{name}: expected a mapping")
        merged = _merge(defaults, body)
        if "name" in merged:
            raise ConfigError(f"wikis.{name}.name: the wiki's name is its key; remove it")
        wikis[str(name)] = build(cls, {"name": str(name), **merged}, f"wikis.{name}", env,
                                 strict)
    if not wikis:
        raise ConfigError("wikis: at least one wiki must be configured")
    for w in wikis.values():
        check_wiki(w)
    return wikis


def check_wiki(w: Wiki) -> None:
    """The rules of the shared part of an entry (the runner adds its own)."""
    at = f"wikis.{w.name}"
    if not re.fullmatch(r"[a-z0-9_]+", w.name):
        raise ConfigError(f"{at}: a wiki key must be a dbname like enwiki")
    s = w.source
    if s.type == "api" and not (s.api_url or "").startswith(("http://", "https://")):
        raise ConfigError(f"{at}.source.api_url: an api source needs the api.php URL")
    if not w.model:
        raise ConfigError(f"{at}.model: required")


def check_datasets(wikis: typing.Iterable[Wiki], store: StoreSection) -> None:
    for w in wikis:
        if w.model_datasets == "store" and store.type != "mysql":
            raise ConfigError(f"wikis.{w.name}.model_datasets: 'store' needs store.type mysql")

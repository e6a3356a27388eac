"""The runner's YAML configuration: typed, validated before any work, secrets kept out of logs.

Layout (see ``runner/sample-config.yaml`` and docs/runner.md)::

    runner:   {workers, page_timeout, batch_size, max_runtime, user_agent}
    store:    {type: sqlite, path} | {type: mysql, url, password_env|password_file, ...}
    events:   {type: jsonlines, path} | {type: eventgate, url, stream, token_env|token_file, ...}
    lock:     {type: file, dir} | {type: zookeeper, hosts, root, timeout}
    metrics:  {type: "off"} | {type: pushgateway, url, job, interval} | {type: statsd, host, port}
    recommender: {type: process} | {type: service, url, timeout, max_attempts, backoff}
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
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# The wiki entry and the typed-YAML machinery are shared with the service: model/wikis.py.
from model.wikis import (  # noqa: F401 - re-exported for the runner's modules
    ConfigError,
    Secret,
    SourceSection,
    StoreSection,
    Wiki,
    check_datasets,
    parse_wikis,
    positive,
    read_yaml,
    secret_field,
)
from model.wikis import expand as _expand
from model.wikis import section as _section

SAMPLE_CONFIG = Path(__file__).with_name("sample-config.yaml")
# Top-level sections other programs read from the same file (the service's own settings).
FOREIGN_SECTIONS = ("service",)


# ---------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class RunnerSection:
    workers: int | None = None  # None: the CPU count
    page_timeout: float = 60.0  # seconds of model time per page before it counts as "other"
    batch_size: int = 500  # candidates per batch (SPEC §5)
    max_runtime: float | None = None  # seconds; the CronJob's deadline minus a margin
    user_agent: str = "addlink-runner/0.1 (https://www.mediawiki.org/wiki/Growth)"


@dataclass(frozen=True)
class EventsSection:
    type: Literal["jsonlines", "eventgate"] = "jsonlines"
    path: str = "var/events.jsonl"  # jsonlines; may contain {wiki}
    url: str | None = None  # eventgate base URL, e.g. http://eventgate:8192
    stream: str = "mediawiki.cirrussearch.page_weighted_tags_change.v1"
    schema_uri: str = "/development/cirrussearch/page_weighted_tags_change/1.0.0"
    token: Secret | None = secret_field(default=None)  # sent as "Authorization: Bearer"
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
    timeout: float = 10.0  # zookeeper session timeout, also the deadline of each operation


@dataclass(frozen=True)
class MetricsSection:
    type: Literal["off", "pushgateway", "statsd"] = "off"
    # pushgateway: labelled metrics pushed during the run and at its end (docs/runner.md)
    url: str | None = None  # the Pushgateway, e.g. http://prometheus-pushgateway:9091
    job: str = "addlink_refresh"  # the "job" of the pushed groups
    interval: float = 30.0  # seconds between pushes while a run goes on
    timeout: float = 5.0  # seconds per push; a failed push is logged, never fails the run
    # statsd: dotted names (a statsd-exporter turns them into the same labelled metrics)
    host: str = "127.0.0.1"
    port: int = 8125


@dataclass(frozen=True)
class RecommenderSection:
    """Who computes recommendations: the in-process worker pool (default) or the
    recommendation service over HTTP (runner/service_client.py)."""

    type: Literal["process", "service"] = "process"
    url: str | None = None  # the service's base URL, e.g. http://addlink-service:8000
    timeout: float = 30.0  # seconds per request
    max_attempts: int = 3  # per page, for connection errors, timeouts, 502/503/504
    backoff: float = 0.5  # seconds, doubled after each attempt


@dataclass(frozen=True)
class CandidatesSection:
    strategy: Literal["search", "random", "allpages"] = "random"
    topics: tuple[str, ...] = ()  # ORES topics for "search" (CirrusSearch): one pool each
    minimum_tasks_per_topic: int = 500  # each topic's target (SPEC §5 minimumTasksPerTopic)
    # How far a topic may go over its target through pages found for another topic (a page
    # counts for each of its topics). None: one batch; 0: never over (runner/topics.py).
    topic_overshoot: int | None = None
    seed: int | None = None  # random order of the dump source; None: a new order each run
    batch_size: int | None = None  # overrides runner.batch_size


AUTO = "auto"  # criteria.minimum_link_score: the model's own suggestion
# The shipped minimumLinkScore, 0.75 rather than SPEC §5's 0.6. Pooled over 24 backtest
# splits, links kept at 0.7 were right 79.5 % of the time on ltgwiki, under the 80 % goal,
# and 82 % at 0.75; the other dumps, but the 106-article English sample, are at 83 % or more
# at either (docs/model.md, "The default minimum link score raised where the calibrated
# scores call for it": a rule fixed before seeds 13-24 were measured). It costs about a
# fifth of the tasks (yield_bench, whole dumps: 1,317 -> 1,072 over seven) and keeps 5x
# today's on ltgwiki. Configure 0.6 for SPEC's behaviour, 0.7 for the default before
# (docs/runner.md).
DEFAULT_MINIMUM_LINK_SCORE = 0.75
# What ``auto`` means for a model trained before models suggested a score: the default.
AUTO_FALLBACK = DEFAULT_MINIMUM_LINK_SCORE


@dataclass(frozen=True)
class Criteria:
    """SPEC §5 task-type settings with the production defaults."""

    minimum_links_per_task: int = 2
    # Scores are calibrated probabilities (docs/model.md), so links kept at >= t are right
    # about as often as their mean score, on a weak wiki little more than t: hence not SPEC's
    # 0.6 (kept at >= 0.6: 73 % right on ltgwiki), nor 0.7 (79 %). ``auto``: the score the
    # wiki's model suggests from its held-out precision (``resolve_criteria``); a number
    # overrides it.
    minimum_link_score: float | Literal["auto"] = DEFAULT_MINIMUM_LINK_SCORE
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
class WikiConfig(Wiki):
    """A wiki entry (model/wikis.py) plus what only the refresh job needs."""

    pool_target: int = 500
    candidates: CandidatesSection = CandidatesSection()
    criteria: Criteria = Criteria()
    # Seconds between two scheduled refreshes (the period of the CronJob running this wiki,
    # set once per group in `defaults`): exported so that "no successful run for 2
    # intervals" can be alerted on (manifests/prometheus/). None: not exported.
    schedule_interval: float | None = None


@dataclass(frozen=True)
class Config:
    wikis: dict[str, WikiConfig]
    runner: RunnerSection = RunnerSection()
    store: StoreSection = StoreSection()
    events: EventsSection = EventsSection()
    lock: LockSection = LockSection()
    metrics: MetricsSection = MetricsSection()
    recommender: RecommenderSection = RecommenderSection()
    path: str = "<memory>"

    def wiki(self, name: str) -> WikiConfig:
        try:
            return self.wikis[name]
        except KeyError:
            known = ", ".join(sorted(self.wikis)) or "none"
            raise ConfigError(f"wikis.{name}: unknown wiki (configured: {known})") from None


def resolve_criteria(wiki: WikiConfig, manifest: dict) -> tuple[WikiConfig, str]:
    """The wiki with ``minimum_link_score: auto`` replaced by its model's suggestion, and
    where the number came from (for the run's log).

    The rule that makes the suggestion lives with the model (model/calibration.py,
    ``suggest_minimum_link_score``, stored at training as
    ``training.suggested_minimum_link_score``); a model without one gets ``AUTO_FALLBACK``.
    A number in the config is kept as it is.
    """
    score = wiki.criteria.minimum_link_score
    if score != AUTO:
        return wiki, "config"
    training = manifest.get("training") or {}
    suggested = training.get("suggested_minimum_link_score")
    if isinstance(suggested, int | float) and not isinstance(suggested, bool) \
            and 0.0 <= suggested <= 1.0:
        value, origin = float(suggested), "model"
    else:
        value, origin = AUTO_FALLBACK, "fallback (the model suggests none)"
    criteria = dataclasses.replace(wiki.criteria, minimum_link_score=value)
    return dataclasses.replace(wiki, criteria=criteria), origin


# ---------------------------------------------------------------------------- loading

def _check(cfg: Config) -> None:
    """Cross-field rules that the types alone cannot express."""
    r = cfg.runner
    positive(r.workers, "runner.workers")
    positive(r.page_timeout, "runner.page_timeout")
    positive(r.batch_size, "runner.batch_size")
    positive(r.max_runtime, "runner.max_runtime")
    if cfg.store.type == "mysql" and not (cfg.store.url or "").startswith("mysql://"):
        raise ConfigError("store.url: a mysql store needs url: mysql://user@host[:port]/database")
    if cfg.events.type == "eventgate" and not (cfg.events.url or "").startswith(("http://",
                                                                                  "https://")):
        raise ConfigError("events.url: an eventgate sink needs url: http(s)://host:port")
    if cfg.metrics.type == "pushgateway" and not (cfg.metrics.url or "").startswith(
            ("http://", "https://")):
        raise ConfigError("metrics.url: a pushgateway needs url: http(s)://host:port")
    positive(cfg.metrics.interval, "metrics.interval")
    positive(cfg.metrics.timeout, "metrics.timeout")
    for key in ("connect_timeout", "read_timeout", "write_timeout"):
        positive(getattr(cfg.store, key), f"store.{key}")
    positive(cfg.events.timeout, "events.timeout")
    positive(cfg.lock.timeout, "lock.timeout")
    rec = cfg.recommender
    if rec.type == "service" and not (rec.url or "").startswith(("http://", "https://")):
        raise ConfigError("recommender.url: a service recommender needs url: http(s)://host:port")
    positive(rec.timeout, "recommender.timeout")
    positive(rec.max_attempts, "recommender.max_attempts")
    positive(cfg.events.batch_size, "events.batch_size")
    positive(cfg.events.max_attempts, "events.max_attempts")
    if len(cfg.wikis) > 1:
        key = "path" if cfg.store.type == "sqlite" else "url"
        if "{wiki}" not in (cfg.store.path if key == "path" else cfg.store.url or ""):
            raise ConfigError(
                f"store.{key}: with several wikis it must contain {{wiki}} "
                "(each wiki has its own GrowthExperiments tables, as in production)"
            )
    for name, w in cfg.wikis.items():
        at = f"wikis.{name}"
        positive(w.pool_target, f"{at}.pool_target", zero_ok=True)
        positive(w.schedule_interval, f"{at}.schedule_interval")
        c = w.criteria
        positive(c.minimum_links_per_task, f"{at}.criteria.minimum_links_per_task", True)
        positive(c.maximum_links_per_task, f"{at}.criteria.maximum_links_per_task")
        if c.minimum_link_score != AUTO and not 0.0 <= c.minimum_link_score <= 1.0:
            raise ConfigError(f"{at}.criteria.minimum_link_score: must be within [0, 1] "
                              f"or '{AUTO}'")
        if c.minimum_links_per_task > c.maximum_links_per_task:
            raise ConfigError(
                f"{at}.criteria.minimum_links_per_task: larger than maximum_links_per_task"
            )
        if c.maximum_word_count is not None and c.maximum_word_count < c.minimum_word_count:
            raise ConfigError(f"{at}.criteria.maximum_word_count: below minimum_word_count")
        positive(c.rejection_limit, f"{at}.criteria.rejection_limit")
        s = w.source
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
        positive(w.candidates.batch_size, f"{at}.candidates.batch_size")
        positive(w.candidates.minimum_tasks_per_topic,
                 f"{at}.candidates.minimum_tasks_per_topic", zero_ok=True)
        positive(w.candidates.topic_overshoot, f"{at}.candidates.topic_overshoot",
                 zero_ok=True)
        if w.candidates.topics and s.type == "dump":
            raise ConfigError(f"{at}.candidates.topics: per-topic pools need an api source "
                              "(topics come from the search index)")
        if s.search_url and not s.search_url.startswith(("http://", "https://")):
            raise ConfigError(f"{at}.source.search_url: must be an http(s) URL of api.php")
    check_datasets(cfg.wikis.values(), cfg.store)


def parse_config(raw: Any, path: str = "<memory>",
                 env: typing.Mapping[str, str] | None = None) -> Config:
    """Validate a parsed YAML document (a mapping) into a ``Config``."""
    env = os.environ if env is None else env
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    raw = _expand(raw, "config", env)
    top = {k: v for k, v in raw.items()
           if k not in ("wikis", "defaults", *FOREIGN_SECTIONS)}
    wikis = parse_wikis(raw, WikiConfig, env)
    cfg_fields = {f.name for f in dataclasses.fields(Config)} - {"wikis", "path"}
    for key in top:
        if key not in cfg_fields:
            known = ", ".join(sorted({*cfg_fields, *FOREIGN_SECTIONS}))
            raise ConfigError(f"{key}: unknown section (known: defaults, wikis, {known})")
    hints = typing.get_type_hints(Config)
    sections = {k: _section(hints[k], top.get(k), k, env) for k in cfg_fields}
    cfg = Config(wikis=wikis, path=path, **sections)
    _check(cfg)
    return cfg


def load_config(path: str | os.PathLike,
                env: typing.Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file. There is no default: a forgotten ``--config`` must
    not run on the bundled sample (``SAMPLE_CONFIG``, given by ``make run``)."""
    p = Path(path)
    return parse_config(read_yaml(p), str(p), env)

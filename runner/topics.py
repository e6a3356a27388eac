"""Pools per topic (SPEC §5, §8): a target per ORES topic, counted where newcomers look.

Newcomers filter tasks by topic, so a wiki at its total target can still show an empty
topic. When a wiki configures ``candidates.topics``, each topic is its own pool: its target
is ``candidates.minimum_tasks_per_topic`` (``--target`` overrides it), its candidates come
from ``-hasrecommendation:link articletopic:<t>`` (strategy ``search``; the backfill's
``allpages`` walk takes every page, each counting for its topics), and its count is
``hasrecommendation:link articletopic:<t>`` in the search index (runner/search.py); the
table (``addlink_page_topics``) stands in where the wiki has no CirrusSearch.

A page counts for each of its topics (the index says which: one query per topic for the
pages about to be stored). The index applies tags asynchronously, so a run's view of a
topic is its count at the run's start plus the tasks stored since (``view()``); the wiki's
``pool_size`` stays the number of distinct pages.

Claim rule: a page is stored when the topic it was found for still has room and each of its
other topics is below its target plus ``slack`` (``candidates.topic_overshoot``, default one
batch): so no topic goes more than one batch over its target, and with ``topic_overshoot:
0`` none goes over at all, also across shards. A strict cap leaves small topics empty where
most of their pages are also in a full big one (measured: docs/runner-benchmarks.md), hence
the one-batch default. A success refused by the rule is counted (``dropped_topic_full``).
A topic stops when it is full, or after a whole batch without a success ("topic exhausted,
N still needed").

Shards (``lock.type: zookeeper``) share the targets as runner/coordination.py shares the
wiki's: one EPHEMERAL_SEQUENTIAL claim per page under ``<root>/<wiki>/topic-claims/``,
holding the page's topics, so a page is claimed once and counted for each of its topics.
A claim is granted when, for each of its topics, the shared view plus the claims ahead
holding that topic stay below the target (list the claims, read their topics, THEN read
the view: the recipe's ordering argument holds per topic). One global sequence orders every
claim, so two claims with topics in common cannot wait on each other. The shared view is
the baseline (search count and table count per topic) of the first shard to start, kept in
an ephemeral ``topic-baseline`` node, plus what the table gained since: every shard reads
the same numbers, and rows committed by any shard count at once, whatever the index lags.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runner import metric_names as M
from runner import search
from runner.config import ConfigError, WikiConfig
from runner.coordination import ZK_ERRORS, PoolTarget, Slot, _seq, delete_claim
from runner.errors import ServiceUnavailable

if TYPE_CHECKING:
    from runner.config import Config
    from runner.metrics import Metrics
    from runner.run import RunOptions
    from runner.store import Store

log = logging.getLogger("runner.topics")


# ---------------------------------------------------------------------------- which topics

def check_topic(wiki: WikiConfig, topic: str | None) -> None:
    """``--topic`` must be one of the wiki's configured topics (a one-line usage error)."""
    if topic is None:
        return
    c = wiki.candidates
    if c.strategy != "search" or not c.topics:
        raise ConfigError(f"--topic {topic}: {wiki.name} has no per-topic pools "
                          "(candidates.strategy search with candidates.topics)")
    if topic not in c.topics:
        raise ConfigError(f"--topic {topic}: not a topic of {wiki.name} "
                          f"(configured: {', '.join(c.topics)})")


def enabled(wiki: WikiConfig, options: RunOptions) -> bool:
    """Whether this run fills per-topic pools: a refresh of a wiki with topics (candidates
    per topic with strategy search; a sharded backfill walks ``allpages`` instead, and each
    page then counts for the topics the index files it under)."""
    return (options.titles is None and options.command == "refresh"
            and bool(wiki.candidates.topics))


def counts(wiki: WikiConfig, source: Any, store: Store) -> tuple[dict[str, int], str]:
    """Each configured topic's pool size and where it was read: "search" (the index,
    what newcomers see) or "table" (``addlink_page_topics``: no CirrusSearch here)."""
    topics = list(wiki.candidates.topics)
    if search.has_index(source):
        return search.topic_counts(source, topics), "search"
    table = store.topic_counts()
    return {t: table.get(t, 0) for t in topics}, "table"


@dataclass
class Plan:
    """A run's per-topic targets and the counts it started from."""

    targets: dict[str, int]  # every configured topic: a page must fit all of its topics
    fill: list[str]  # the topics this run takes candidates for (--topic: one)
    at_start: dict[str, int]  # the index's (or table's) count at the start
    counted_by: str  # "search" | "table"
    table_at_start: dict[str, int]  # the table's count at the start (the shared view's base)
    slack: int = 0  # how far a topic may go over through pages found for another topic
    exhausted: dict[str, int] = field(default_factory=dict)  # topic -> still needed
    dropped: Counter = field(default_factory=Counter)  # successes refused: a topic was full


def plan(wiki: WikiConfig, options: RunOptions, source: Any, store: Store,
         batch_size: int) -> Plan:
    c = wiki.candidates
    target = c.minimum_tasks_per_topic if options.target is None else options.target
    slack = batch_size if c.topic_overshoot is None else c.topic_overshoot
    at_start, by = counts(wiki, source, store)
    if by == "table" and c.strategy != "search":
        raise ConfigError(f"wikis.{wiki.name}.candidates.topics: with strategy {c.strategy} "
                          "the topics of a page come from the search index, and this wiki "
                          "has no CirrusSearch (use strategy search)")
    table = store.topic_counts()
    topics = list(wiki.candidates.topics)
    return Plan({t: target for t in topics}, [options.topic] if options.topic else topics,
                at_start, by, {t: table.get(t, 0) for t in topics}, slack)


# ---------------------------------------------------------------------------- targets

class _Targets:
    """The claim rule over a ``view()`` of each topic's count (shared by both targets)."""

    plan: Plan

    def view(self) -> dict[str, int]:
        raise NotImplementedError

    def _left(self, view: dict[str, int], extra: Counter | None = None) -> dict[str, int]:
        extra = extra or Counter()
        return {t: n - view.get(t, 0) - extra[t] for t, n in self.plan.targets.items()}

    def _mine(self, topics: Iterable[str], primary: str | None) -> tuple[str, ...]:
        return tuple(sorted((set(topics) | ({primary} if primary else set()))
                            & set(self.plan.targets)))

    def _fits(self, left: dict[str, int], mine: tuple[str, ...], primary: str | None) -> bool:
        """Room in the topic the page was found for (without one, as in the allpages walk:
        in one of its topics), and none of its topics past target + slack."""
        slack = self.plan.slack
        room = left[primary] > 0 if primary in left else any(left[t] > 0 for t in mine)
        return bool(mine) and room and all(left[t] > -slack for t in mine)


class LocalTopicTarget(_Targets):
    """One process: each topic's count at the start plus the pages this run stored."""

    def __init__(self, p: Plan) -> None:
        self.plan = p
        self.stored: Counter = Counter()
        self._held: Counter = Counter()  # claimed, not yet confirmed or released
        self._mutex = threading.Lock()

    def view(self) -> dict[str, int]:
        return {t: self.plan.at_start.get(t, 0) + self.stored[t] for t in self.plan.targets}

    def remaining(self, topic: str | None = None) -> int:
        left = self._left(self.view(), self._held)
        if topic is not None:
            return left.get(topic, 0)
        return sum(max(0, left[t]) for t in self.plan.fill)

    def claim(self, topics: Iterable[str] = (), primary: str | None = None) -> Slot | None:
        mine = self._mine(topics, primary)
        with self._mutex:
            if not self._fits(self._left(self.view(), self._held), mine, primary):
                self.plan.dropped.update(mine or ("(no topic)",))
                return None
            self._held.update(mine)
            return Slot("local", mine)

    def confirm(self, slot: Slot) -> None:
        with self._mutex:
            self._held.subtract(slot.topics)
            self.stored.update(slot.topics)

    def release(self, slot: Slot) -> None:
        with self._mutex:
            self._held.subtract(slot.topics)

    def close(self) -> None:
        pass


class ZooKeeperTopicTarget(_Targets):
    """Per-topic targets shared by every process filling the wiki (module docstring)."""

    PREFIX = "claim-"

    def __init__(self, client: Any, path: str, p: Plan, table: Callable[[], dict[str, int]],
                 *, refresh: float = 2.0, wait: float = 30.0,
                 owns_client: bool = False) -> None:
        self.client, self.path, self.plan, self.table = client, path.rstrip("/"), p, table
        self.refresh, self.wait, self._owns_client = refresh, wait, owns_client
        timeout = getattr(client, "_session_timeout", 10000) / 1000.0
        self.op_timeout = max(1.0, min(timeout, 30.0))
        self._claimed: dict[str, tuple[str, ...]] = {}  # my claim nodes not yet confirmed
        self._topics: dict[str, tuple[str, ...]] = {}  # claim node -> topics (immutable)
        self._cached: tuple[float, dict[str, int]] | None = None
        self._op(self.client.ensure_path_async(f"{self.path}/topic-claims"))
        self._share_baseline()

    def _op(self, async_result: Any) -> Any:
        return async_result.get(timeout=self.op_timeout)

    def _share_baseline(self) -> None:
        """Adopt the first running shard's start counts, or publish ours."""
        from kazoo.exceptions import NodeExistsError, NoNodeError

        node = f"{self.path}/topic-baseline"
        mine = json.dumps({"search": self.plan.at_start, "table": self.plan.table_at_start,
                           "by": self.plan.counted_by}).encode()
        try:
            self._op(self.client.create_async(node, mine, ephemeral=True))
            return
        except NodeExistsError:
            pass
        try:
            data, _ = self._op(self.client.get_async(node))
        except NoNodeError:  # its shard just ended: our own start counts then
            return
        theirs = json.loads(data.decode())
        for t in self.plan.targets:
            if t in theirs["search"] and t in theirs["table"]:
                self.plan.at_start[t] = int(theirs["search"][t])
                self.plan.table_at_start[t] = int(theirs["table"][t])
        self.plan.counted_by = theirs.get("by", self.plan.counted_by)

    def view(self) -> dict[str, int]:
        """Start count plus what the table gained since (rows of every shard)."""
        now = self.table()
        p = self.plan
        return {t: p.at_start.get(t, 0) + now.get(t, 0) - p.table_at_start.get(t, 0)
                for t in p.targets}

    def _claims(self, watch: Callable[[Any], None] | None = None) -> list[tuple[str, tuple]]:
        """(name, topics) of the claims in flight, oldest first; gone ones left out."""
        from kazoo.exceptions import NoNodeError

        names = self._op(self.client.get_children_async(f"{self.path}/topic-claims",
                                                        watch=watch))
        out = []
        for name in sorted((n for n in names if n.startswith(self.PREFIX)), key=_seq):
            if name not in self._topics:
                try:
                    data, _ = self._op(self.client.get_async(
                        f"{self.path}/topic-claims/{name}"))
                except NoNodeError:  # committed (counted in the table) or released
                    continue
                self._topics[name] = tuple(json.loads(data.decode()))
            out.append((name, self._topics[name]))
        return out

    def remaining(self, topic: str | None = None) -> int:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] >= self.refresh:
            try:
                others = Counter(t for n, ts in self._claims() if n not in self._claimed
                                 for t in ts)
            except ZK_ERRORS as e:
                log.warning("topic targets: cannot list claims: %s", e)
                return 0
            view = self.view()
            left = self._left(view, others)
            for t, n in left.items():
                if n <= 0 and view[t] < self.plan.targets[t]:
                    left[t] = 1  # claims in flight may still be released
            self._cached = (now, left)
        left = self._cached[1]
        if topic is not None:
            return left.get(topic, 0)
        return sum(max(0, left[t]) for t in self.plan.fill)

    def claim(self, topics: Iterable[str] = (), primary: str | None = None) -> Slot | None:

        mine = self._mine(topics, primary)
        if not mine or not self.client.connected:
            self.plan.dropped.update(mine or ("(no topic)",))
            return None
        try:
            node = self._op(self.client.create_async(
                f"{self.path}/topic-claims/{self.PREFIX}", json.dumps(mine).encode(),
                ephemeral=True, sequence=True))
        except ZK_ERRORS as e:
            log.warning("topic targets: cannot create a claim: %s", e)
            return None
        name = node.rsplit("/", 1)[-1]
        self._topics[name] = mine
        deadline = time.monotonic() + self.wait
        try:
            while True:
                changed = threading.Event()
                claims = self._claims(watch=lambda _e, ev=changed: ev.set())
                ahead = Counter(t for n, ts in claims if _seq(n) < _seq(name) for t in ts)
                view = self.view()  # read AFTER listing: a race only counts twice
                if self._fits(self._left(view, ahead), mine, primary):
                    self._claimed[name] = mine
                    self._cached = None
                    return Slot(name, mine)
                if not self._fits(self._left(view), mine, primary):  # full without the rest
                    self.plan.dropped.update(mine)
                    break
                if time.monotonic() >= deadline:
                    log.warning("topic targets: claims ahead undecided after %.0f s; refused",
                                self.wait)
                    break
                changed.wait(min(0.5, max(0.0, deadline - time.monotonic())))
        except ZK_ERRORS as e:
            log.warning("topic targets: claim failed: %s", e)
        delete_claim(self.client, node, self.op_timeout, "topic targets (refused)")
        return None

    def _drop(self, slot: Slot) -> None:
        if self._claimed.pop(slot.name, None) is None:
            return
        self._cached = None
        delete_claim(self.client, f"{self.path}/topic-claims/{slot.name}", self.op_timeout,
                     "topic targets")

    def confirm(self, slot: Slot) -> None:
        self._drop(slot)  # after the commit: the table counts the row now

    def release(self, slot: Slot) -> None:
        self._drop(slot)

    def close(self) -> None:
        for name, topics in list(self._claimed.items()):
            self._drop(Slot(name, topics))
        if self._owns_client:
            try:
                self.client.stop()
            finally:
                self.client.close()


def target_factory(cfg: Config, wiki: str, options: RunOptions, store: Store,
                   client: Any = None) -> Callable[[Plan], PoolTarget]:
    """``factory(plan) -> target``: shared through ZooKeeper where the lock is (production,
    shards), local to the process otherwise and for dry runs."""
    lock = cfg.lock
    if options.dry_run or lock.type != "zookeeper":
        return LocalTopicTarget
    path = f"{lock.root.rstrip('/')}/{wiki}"
    wait = max(30.0, 2 * lock.timeout)

    def make(p: Plan) -> PoolTarget:
        try:
            if client is not None:
                return ZooKeeperTopicTarget(client, path, p, store.topic_counts, wait=wait)
            from kazoo.client import KazooClient

            own = KazooClient(hosts=lock.hosts, timeout=lock.timeout)
            own.start(timeout=lock.timeout)
            return ZooKeeperTopicTarget(own, path, p, store.topic_counts, wait=wait,
                                        owns_client=True)
        except ZK_ERRORS as e:
            raise ServiceUnavailable("ZooKeeper", f"{path}: {type(e).__name__}: {e}") \
                from None

    return make


# ---------------------------------------------------------------------------- reporting

def exhausted(p: Plan, target: PoolTarget, topic: str, wiki: str) -> None:
    """A whole batch of the topic without success: stop it, say how many it still needs."""
    needed = max(0, target.remaining(topic))
    p.exhausted[topic] = needed
    log.info("topic exhausted, %d still needed", needed,
             extra={"wiki": wiki, "topic": topic, "still_needed": needed})


def figures(p: Plan, target: PoolTarget) -> dict[str, dict]:
    """Per topic: target, count at start, the run's view at its end, what happened."""
    view = target.view() if hasattr(target, "view") else {}
    stored = getattr(target, "stored", Counter())
    out = {}
    for t, n in p.targets.items():
        now = view.get(t, p.at_start.get(t, 0))
        state = "full" if now >= n else "exhausted" if t in p.exhausted \
            else "not_filled" if t in p.fill else "not_asked"
        out[t] = {"target": n, "count_at_start": p.at_start.get(t, 0), "count": now,
                  "stored": stored.get(t, now - p.at_start.get(t, 0)), "state": state,
                  "still_needed": max(0, n - now), "dropped_topic_full": p.dropped[t]}
    return out


def report(metrics: Metrics, wiki: str, topics: dict[str, dict], at: str) -> None:
    """Per-topic pool size (``at``: "start" or "end" of the run) and target, labelled."""
    for t, f in topics.items():
        metrics.gauge(M.POOL_SIZE, f["count_at_start"] if at == "start" else f["count"],
                      wiki=wiki, topic=t)
        metrics.gauge(M.POOL_TARGET, f["target"], wiki=wiki, topic=t)


def status_rows(wiki: WikiConfig, store: Store, user_agent: str) -> list[dict]:
    """``status``: topic x count x target (from the index where there is one)."""
    if not wiki.candidates.topics:
        return []
    source = None
    try:
        if wiki.source.type == "api":
            from runner.sources import open_source

            source = open_source(wiki, user_agent)
        found, by = counts(wiki, source, store)
    except Exception as e:  # noqa: BLE001 - status shows what it can; the table then
        log.warning("status: search counts unavailable (%s); the table's instead", e,
                    extra={"wiki": wiki.name})
        table = store.topic_counts()
        found, by = {t: table.get(t, 0) for t in wiki.candidates.topics}, "table"
    finally:
        if source is not None:
            source.close()
    n = wiki.candidates.minimum_tasks_per_topic
    return [{"topic": t, "count": found.get(t, 0), "target": n, "counted_by": by}
            for t in wiki.candidates.topics]


def table(rows: list[dict]) -> str:
    """The ``status`` table's topic part ("" when no wiki has per-topic pools)."""
    lines = [(r["wiki"], t["topic"], str(t["count"]), str(t["target"]), t["counted_by"])
             for r in rows for t in r.get("topics") or []]
    if not lines:
        return ""
    lines.insert(0, ("wiki", "topic", "count", "target", "counted by"))
    widths = [max(len(x[i]) for x in lines) for i in range(len(lines[0]))]
    return "\n\npools per topic\n" + "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)).rstrip() for x in lines)

"""Shared helpers of the runner tests.

- model directories come from the session fixtures ``en_model`` / ``ltg_model``
  (tests/model_fixtures.py, via conftest).
- ``misbehaving``: a recommender for the worker pool that wraps the real model but, for a few
  named pages, raises, crashes the process, overruns its time budget, or hangs where no
  signal can interrupt it: the failure paths of the worker pool on purpose.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from runner.workers import Task, model_recommender

DUMPS = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "dumps")
EN_DUMP = f"{DUMPS}/enwiki-20160501-sample.xml.bz2"
LTG_DUMP = f"{DUMPS}/ltgwiki-20170901-pages-articles.xml.bz2"

RAISE, CRASH, SLOW, STUCK = "Raise", "Crash", "Slow", "Stuck"


def misbehaving(model_path: str, options: dict):
    real = model_recommender(model_path, options)

    def run(task: Task) -> dict:
        if task.title.startswith(RAISE):
            raise ValueError(f"cannot handle {task.title}")
        if task.title.startswith(CRASH):
            os._exit(3)
        if task.title.startswith(SLOW):
            time.sleep(120)  # interrupted by the soft budget (SIGALRM)
        if task.title.startswith(STUCK):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(120)  # nothing interrupts this: the parent must kill the worker
        return real(task)

    return run


def crash_some(model_path: str, options: dict):
    """The real model, except that the process dies on pages whose id ends in 0."""
    real = model_recommender(model_path, options)

    def run(task: Task) -> dict:
        if task.page_id % 10 == 0:
            os._exit(5)
        return real(task)

    return run


def crash_once(model_path: str, options: dict):
    """The real model, except that the first task of a run kills its process: exactly one
    worker crash whatever the timing (a refresh to a target may stop before it reaches a
    page ``crash_some`` would crash on). The run's marker file: ``$ADDLINK_TEST_CRASH_MARKER``,
    set for the whole session (tests/conftest.py) because workers start from a forkserver,
    which keeps the environment of the moment the session's first pool started it; a test
    removes the marker before its run.
    """
    real = model_recommender(model_path, options)
    marker = os.environ["ADDLINK_TEST_CRASH_MARKER"]

    def run(task: Task) -> dict:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return real(task)
        os._exit(5)

    return run


def dump_slice(path, pages: int, source: str = LTG_DUMP) -> str:
    """The first ``pages`` pages of a dump (.bz2, .xz or plain) as a plain XML dump (a slice
    of the wiki)."""
    import io

    from model.dump import open_file

    out = []
    with io.TextIOWrapper(open_file(source), encoding="utf-8") as f:
        n = 0
        for line in f:
            out.append(line)
            if line.strip() == "</page>":
                n += 1
                if n >= pages:
                    break
    out.append("</mediawiki>\n")
    path.write_text("".join(out), encoding="utf-8")
    return str(path)


def drop_database(url: str) -> None:
    import pymysql

    from runner.store.mysql import parse_mysql_url

    kw = parse_mysql_url(url)
    conn = pymysql.connect(host=kw["host"], port=kw["port"], user=kw["user"], autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{kw['database']}`")
    finally:
        conn.close()


def broken(model_path: str, options: dict):
    """A model that fails on every page (e.g. a model directory from another code version)."""
    def run(task: Task) -> dict:
        raise ValueError("Feature shape mismatch, expected: 15, got 14")

    return run


def migrated(config, store_url: str | None = None):
    """``config`` (a Config, or a config file's path) with every wiki's store created the one
    way a deployment creates it: the ``migrate`` command's code (stores never run DDL when
    they open). ``store_url``: migrate through this MySQL URL instead of the configured one
    (a test whose config points through a fault proxy). Returns ``config`` unchanged."""
    from dataclasses import replace

    from runner import migrate
    from runner.config import Config, load_config

    cfg = config if isinstance(config, Config) else load_config(config)
    if store_url:
        cfg = replace(cfg, store=replace(cfg.store, url=store_url, create_database=True))
    migrate.run(cfg, None, print_only=False)
    return config


def migrated_store(cls, location: str, wiki: str, **kw):
    """A SqliteStore/MysqlStore at ``location`` migrated to the current schema, then opened
    the ordinary (checking) way; ``kw`` goes to that open (timeouts)."""
    kw.pop("create_database", None)
    fresh = cls.open(location, wiki, migrating=True,
                     **({"create_database": True} if cls.service == "MySQL" else {}))
    try:
        fresh.migrate()
    finally:
        fresh.close()
    return cls.open(location, wiki, **kw)

"""Command line of the refresh job: ``python -m runner --config FILE COMMAND ...``.

Commands: migrate, refresh, backfill, status, revalidate, drift (see ``--help`` and docs/runner.md).

Exit codes (model/exitcodes.py, docs/runner.md "Exit codes"):
  0  ok (also: --max-runtime reached before the target, a clean stop)
  1  failure not listed below
  2  bad usage, configuration or input (also: backfill of a page that does not exist,
     a store whose schema is missing or old: run migrate)
  3  the lock of a wiki is held by another run (that wiki was skipped at once)
  4  the ZooKeeper lock was lost mid-run (work done so far is committed)
  5  stopped by SIGTERM/SIGINT (finished pages committed, exit within 10 s)
  6  a service is unreachable or partitioned (the message names it)
  7  events still pending or dead-lettered after the retries (see status, drift)
  8  the model is missing, unreadable, fails its checksums or fails on most pages
With several wikis the most severe code wins (model/exitcodes.py SEVERITY).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from model.cli import CommandLine, Option, log_level, on_terminal, positive
from model.exitcodes import ExitCode, most_severe
from runner.config import Config, ConfigError, load_config
from runner.logs import setup_logging
from runner.metrics import Metrics, open_metrics
from runner.run import RunOptions, RunResult, StopFlag
from runner.store import SchemaError, StoreError

log = logging.getLogger("runner")


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/N such as 0/3, got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"shard {text}: need 0 <= i < N")
    return i, n


CONFIG_ENV = "ADDLINK_CONFIG"
GLOBAL_OPTIONS = (
    Option(("--config",), {"metavar": "FILE",
                           "help": f"the YAML configuration (docs/runner.md); required unless "
                                   f"${CONFIG_ENV} names it (default: ${CONFIG_ENV})"}),
)


def build_parser() -> argparse.ArgumentParser:
    cli = CommandLine("python -m runner", __doc__.split("\n\n")[0],
                      epilog=__doc__.split("\n\n", 2)[2], options=GLOBAL_OPTIONS)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--dry-run", action="store_true",
                        help="evaluate and recommend, write nothing (no rows, events, run "
                             "log, lock, resume point, metrics)")
        sp.add_argument("--workers", type=positive(int), metavar="N",
                        help="worker processes (default: runner.workers, else usable CPUs)")

    r = cli.command("refresh", help="fill each wiki's pool up to its target")
    r.add_argument("--wiki", action="append", help="only this wiki (repeatable; default: "
                   "every configured wiki)")
    r.add_argument("--target", type=int, metavar="N",
                   help="pool target instead of the configured one "
                        "(default: wikis.<db>.pool_target)")
    r.add_argument("--max-runtime", type=positive(float), metavar="SECONDS",
                   help="then stop cleanly (default: runner.max_runtime, else none)")
    r.add_argument("--shard", type=_shard, metavar="i/N",
                   help="this pod's share of the candidates (page_id %% N == i; default: all)")
    r.add_argument("--batch-size", type=positive(int), metavar="N",
                   help="candidates per batch "
                        "(default: candidates.batch_size, else runner.batch_size)")
    r.add_argument("--limit", type=positive(int), metavar="N",
                   help="evaluate at most N candidates")
    r.add_argument("--topic", help="only this topic (search strategy)")
    common(r)

    b = cli.command("backfill", help="evaluate given pages now")
    b.add_argument("--wiki", required=True, help="the wiki of the pages")
    g = b.add_mutually_exclusive_group(required=True)
    g.add_argument("--page", action="append", help="a title (repeatable)")
    g.add_argument("--titles-file", metavar="FILE", help="one title per line")
    b.add_argument("--force", action="store_true", help="skip the criteria that may be skipped")
    common(b)

    s = cli.command("status", help="pool size, rows, outbox, last refresh and last command "
                    "per wiki")
    s.add_argument("--wiki", action="append", help="only this wiki (repeatable; default: "
                   "every configured wiki)")
    s.add_argument("--format", choices=("table", "json"), default="table",
                   help="a table for people, JSON for programs")

    v = cli.command("revalidate", help="re-evaluate stored rows that fail a check")
    v.add_argument("--wiki", required=True, help="the wiki whose rows are checked")
    v.add_argument("--older-than", metavar="WHEN",
                   help="made before: 2024-05-01, unix time, or age (30d)")
    v.add_argument("--checksum-mismatch", action="store_true",
                   help="made with other dataset checksums than the current model's")
    v.add_argument("--score-below", type=float, metavar="X", help="any link scoring below this")
    v.add_argument("--all", action="store_true", help="every row")
    v.add_argument("--delete-null-rows", action="store_true",
                   help="also forget 'nothing usable' rows (criteria became more permissive)")
    v.add_argument("--limit", type=positive(int), metavar="N", help="at most N rows")
    v.add_argument("--force", action="store_true",
                   help="re-evaluate skipping the criteria that may be skipped "
                        "(as backfill --force)")
    common(v)

    m = cli.command("migrate", help="apply pending schema migrations to each wiki's store")
    m.add_argument("--wiki", action="append", help="only this wiki's store (repeatable)")
    m.add_argument("--print", action="store_true", dest="print_only",
                   help="print the SQL a DBA would run instead of applying it")

    d = cli.command("drift", help="reconcile the table with the search index's tags")
    d.add_argument("--wiki", required=True, help="the wiki to reconcile")
    d.add_argument("--resend", action="store_true", help="announce every pooled page again")
    d.add_argument("--clear", action="store_true",
                   help="remove rows the index does not hold (instead of announcing them)")
    d.add_argument("--source", choices=("search", "record"),
                   help="compare with the search index or the acknowledged events (default: "
                        "search where the wiki has CirrusSearch)")
    d.add_argument("--dry-run", action="store_true",
                   help="count what would be sent, send and write nothing")
    return cli.parser


def _exit_code(results: list[RunResult], stop: StopFlag) -> int:
    codes = [r.exit_code for r in results]
    if stop.by_signal:
        codes.append(ExitCode.SIGNAL)  # also when the signal came between two wikis
    return int(most_severe(codes))


def _install_signals(stop: StopFlag) -> None:
    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        first = not stop.reason
        stop.set(name)
        if first:
            log.warning("signal received: finishing the pages in flight for a few seconds, "
                        "then committing and exiting", extra={"signal": name})

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _titles(args: argparse.Namespace) -> tuple[str, ...]:
    """The pages to backfill; an invalid title (model.titles) is a usage error naming it."""
    from model.titles import validate_title

    if args.page:
        return tuple(t for t in args.page if validate_title(t))
    try:
        text = Path(args.titles_file).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"--titles-file: cannot read {args.titles_file}: {e.strerror}") \
            from None
    titles = tuple(t.strip() for t in text.splitlines() if t.strip() and validate_title(t))
    if not titles:
        raise ConfigError(f"--titles-file: {args.titles_file} has no titles")
    return titles


def _run(cfg: Config, args: argparse.Namespace) -> int:
    from runner import repair, status
    from runner.app import run_wiki

    if args.command == "migrate":
        from runner import migrate

        for text in migrate.run(cfg, args.wiki, args.print_only):
            print(text)
        return ExitCode.OK

    if args.command == "status":
        rows = status.collect(cfg, args.wiki)
        print(json.dumps({"wikis": rows}, indent=2) if args.format == "json"
              else status.table(rows))
        return ExitCode.OK

    wikis = getattr(args, "wiki", None) or []
    for w in [wikis] if isinstance(wikis, str) else wikis:
        cfg.wiki(w)  # unknown wiki: a config error before any work
    shard = getattr(args, "shard", None)
    progress = on_terminal(args)
    # A dry run pushes nothing: its group would replace the real run's on the Pushgateway.
    metrics = Metrics() if getattr(args, "dry_run", False) else \
        open_metrics(cfg.metrics, shard=f"{shard[0]}/{shard[1]}" if shard else "")
    stop = StopFlag()
    _install_signals(stop)
    results: list[RunResult] = []
    try:
        if args.command == "refresh":
            from runner.topics import check_topic

            for w in args.wiki or sorted(cfg.wikis):
                check_topic(cfg.wiki(w), args.topic)  # a one-line usage error, exit 2
            opts = RunOptions(command="refresh", target=args.target, dry_run=args.dry_run,
                              workers=args.workers, max_runtime=args.max_runtime,
                              shard=args.shard, batch_size=args.batch_size, limit=args.limit,
                              topic=args.topic, progress=progress)
            for w in args.wiki or sorted(cfg.wikis):
                if stop:
                    break
                results.append(run_wiki(cfg, w, opts, metrics, stop))
        elif args.command == "backfill":
            opts = RunOptions(command="backfill", dry_run=args.dry_run, workers=args.workers,
                              force=args.force, titles=_titles(args), progress=progress)
            results.append(run_wiki(cfg, args.wiki, opts, metrics, stop))
        elif args.command == "revalidate":
            if not (args.older_than or args.checksum_mismatch or args.score_below is not None
                    or args.all or args.delete_null_rows):
                raise ConfigError("revalidate: give at least one of --older-than, "
                                  "--checksum-mismatch, --score-below, --all, "
                                  "--delete-null-rows")
            checksums = None
            if args.checksum_mismatch:
                from model import open_model

                checksums = dict(open_model(cfg.wiki(args.wiki).model).checksums)
            spec = repair.RevalidateSpec(
                older_than=repair.parse_when(args.older_than) if args.older_than else None,
                checksums=checksums, score_below=args.score_below, all=args.all,
                delete_null=args.delete_null_rows, limit=args.limit)
            opts = RunOptions(command="revalidate", dry_run=args.dry_run, workers=args.workers,
                              force=args.force, progress=progress)
            results.append(repair.revalidate(cfg, args.wiki, spec, opts, metrics, stop))
        elif args.command == "drift":
            opts = RunOptions(command="drift", dry_run=args.dry_run)
            if args.resend and args.clear:
                raise ConfigError("drift: --resend and --clear exclude each other")
            results.append(repair.drift(cfg, args.wiki, resend=args.resend, options=opts,
                                        metrics=metrics, source=args.source,
                                        clear=args.clear))
    finally:
        metrics.close()
    for r in results:
        log.info("run finished", extra=r.as_dict())
    if on_terminal(args, sys.stdout):
        print(status.summary([r.as_dict() for r in results]))
    for r in results:  # the one line of each wiki that failed, whatever the log's format
        if r.error and r.exit_code != ExitCode.OK:
            print(f"error: {r.wiki}: {r.error}", file=sys.stderr)
    return _exit_code(results, stop)


def config_path(args: argparse.Namespace) -> str:
    """``--config``, else ``$ADDLINK_CONFIG``: never a silent default (the bundled sample
    would refresh a sample wiki in place of the one meant)."""
    path = args.config or os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"no configuration: pass --config FILE or set {CONFIG_ENV} "
                          "(runner/sample-config.yaml is the offline sample of make run)")
    return path


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_format, log_level(args))
    try:
        cfg = load_config(config_path(args))
        return _run(cfg, args)
    except (ConfigError, ValueError, SchemaError) as e:
        return _error(e, "bad usage or configuration", ExitCode.USAGE)
    except StoreError as e:
        from runner.errors import ServiceUnavailable

        if isinstance(e, ServiceUnavailable):
            return _error(e, "failed", ExitCode.UNAVAILABLE)
        return _error(e, "bad usage or configuration", ExitCode.USAGE)
    except Exception as e:  # noqa: BLE001 - no traceback reaches a user; the log has it
        from runner.errors import STATUS_CODES, status_of

        code = STATUS_CODES[status_of(e)]
        return _error(e, "failed", code, traceback=status_of(e) == "failed")


def _error(e: BaseException, what: str, code: int, traceback: bool = False) -> int:
    """Log the error, print its one line on stderr, return its exit code."""
    from runner.errors import one_line

    ours = isinstance(e, ConfigError | ValueError | StoreError)  # their message says it all
    line = " ".join(str(e).split()) if ours else one_line(e)
    log.error("%s: %s", what, line, extra={"error": line}, exc_info=traceback)
    print(f"error: {line}", file=sys.stderr)
    return int(code)


def _exit(code: int) -> None:
    """Exit, without waiting for a thread stuck in a request to a partitioned service
    (the interpreter would join it): everything committed is committed already."""
    stuck = [t for t in threading.enumerate()
             if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if not stuck:
        sys.exit(code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit(int(main()))

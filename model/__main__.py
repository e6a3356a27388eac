"""Command line: ``python -m model train|load|recommend|backtest|publish|fetch``.

Exit codes (the project's one table, model/exitcodes.py): 0 done; 1 the work failed;
2 bad usage or input (a dump that is not readable XML, a truncated archive, a wrong database
password or name, an invalid title, a dump of another wiki than --wiki); 5 interrupted
(Ctrl-C); 6 the database server or a published model's server
cannot be reached; 8 the model directory is missing or broken, or a fetched file failed its
checksum (nothing switched). Each error is one line naming the file, title or database, no
traceback.
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

from model.cli import CommandLine, fail, log_level, on_terminal
from model.exitcodes import ExitCode
from model.parallel import INTERRUPTS, stop_background
from model.progress import setup_logging
from model.stems import METHODS
from model.titles import InvalidTitle, validate_title

log = logging.getLogger("addlink.model")


def _settings(args: argparse.Namespace):
    from model.parallel import available_cpus
    from model.train import Settings

    complete = {"complete": True, "slice": False, "auto": None}[args.mode]
    workers = args.workers if args.workers is not None else available_cpus()
    return Settings(complete=complete, features=args.features, seed=args.seed,
                    workers=workers, stemmer=args.stemmer, prior=_prior(args.prior))


def _prior(given: list[str]) -> tuple[str, ...]:
    """``--prior`` as ``Settings.prior``: the shipped rows when none is given, nothing for
    ``--prior none``, else exactly the models given."""
    from model import prior as priors

    if not given:
        return priors.DEFAULT
    if priors.NONE in given:
        if len(given) > 1:
            raise UsageError(f"--prior {priors.NONE} cannot be given with other priors")
        return ()
    return tuple(given)


def cmd_train(args: argparse.Namespace) -> int:
    from model.train import train_model

    manifest = train_model(args.dump, args.out, _settings(args), wiki=args.wiki)
    print(
        json.dumps({k: manifest[k] for k in ("wiki", "counts", "checksums", "training")}, indent=2)
    )
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from model.load import load

    print(json.dumps(load(getattr(args, "from"), args.to, wiki=args.wiki), indent=2))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from model.datasets import open_model
    from model.recommend import recommend

    validate_title(args.title)  # before opening the model: a bad title is a usage error
    model = open_model(args.model, store=args.store)
    if args.wiki and args.wiki != model.wiki:
        raise UsageError(f"--wiki {args.wiki} but the model {args.model} is of {model.wiki}")
    pageid = revid = 0
    if args.wikitext_file:
        wikitext = Path(args.wikitext_file).read_text(encoding="utf-8")
    else:
        from model.dump import pages
        from model.text import normalize_title

        wanted = normalize_title(args.title)
        page = next((p for p in pages(args.dump) if p.title == wanted), None)
        if page is None:
            raise UsageError(f"no page titled {wanted!r} in {args.dump}")
        wikitext, pageid, revid = page.text, page.page_id, page.rev_id
    result = recommend(
        model,
        wikitext,
        title=args.title,
        pageid=pageid,
        revid=revid,
        threshold=args.threshold,
        max_recommendations=args.max_recommendations,
        excluded_sections=args.exclude_section,
    )
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from model.backtest import backtest, plot, table
    from model.dump import site_info
    from model.features import ablated_columns

    ablate = tuple(dict.fromkeys(n.strip() for n in (args.ablate or "").split(",") if n.strip()))
    try:
        ablated_columns(args.features, ablate)
    except ValueError as e:
        raise UsageError(f"--ablate: {e}") from None
    # Everything that can be checked is checked before the training, which takes minutes.
    if args.wiki:
        dbname = site_info(args.dump).dbname
        if args.wiki != dbname:
            raise UsageError(f"--wiki {args.wiki} but {args.dump} is a dump of {dbname}")
    if args.plot and not Path(args.plot).resolve().parent.is_dir():
        raise UsageError(f"--plot {args.plot}: no such directory")
    result = backtest(args.dump, replace(_settings(args), ablate=ablate))
    if args.plot:
        plot(result, args.plot)
    print(json.dumps(result, indent=2) if args.format == "json" else table(result))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from model.publish import publish

    print(json.dumps(publish(args.model, args.to), indent=2))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from model.publish import fetch

    print(json.dumps(fetch(getattr(args, "from"), args.wiki, args.to, args.version), indent=2))
    return 0


class UsageError(Exception):
    """A command line that cannot be carried out as given (exit 2, its one line)."""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of workers")
    return value


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not within [0, 1]")
    return value


def parser() -> argparse.ArgumentParser:
    cli = CommandLine("python -m model", __doc__.split("\n\n")[0],
                      epilog=__doc__.split("\n\n", 1)[1])

    def training_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--mode",
            choices=("auto", "complete", "slice"),
            default="auto",
            help="complete: a link to a title not in the dump is a red link; slice: unknown; "
            "auto: decided from how many links resolve inside the dump",
        )
        sp.add_argument("--features", choices=("full", "reference"), default="full",
                        help="full: every feature; reference: the reference's feature set")
        sp.add_argument("--seed", type=int, default=1,
                        help="cross-fitting folds, train/test split and classifier seed")
        sp.add_argument(
            "--workers",
            type=_positive,
            metavar="N",
            help="processes for the per-article stages (default: the CPUs available); "
            "the model is the same for any N",
        )
        sp.add_argument(
            "--stemmer",
            choices=METHODS,
            default="auto",
            help="stem classes of anchors: auto = Snowball where the language has one, else "
            "endings learnt from the wiki's text; none = exact anchors only",
        )
        sp.add_argument(
            "--prior", action="append", default=[], metavar="MODEL",
            help="another wiki's model directory (repeatable): its training rows join this "
            "wiki's as a prior, at a weight the folds choose (0 among them); default: the "
            "shipped rows of the shared dumps (model/prior_rows, the wiki's own left out); "
            "'none': this wiki's rows alone",
        )

    t = cli.command("train", help="train one wiki's model from its dump")
    t.add_argument("--wiki", required=True, help="the dump's wiki (its dbname, e.g. ltgwiki)")
    t.add_argument(
        "--dump", required=True, action="append", metavar="FILE",
        help="pages-articles XML dump (.xml, .bz2, .xz); repeat it for a dump in part files "
        "(enwiki's numbered parts, in any order: read in page order, one part per worker "
        "at a time, the same model as the one file)",
    )
    t.add_argument("--out", required=True, metavar="DIR",
                   help="the model directory (replaced atomically; may be a symlink)")
    training_options(t)
    t.set_defaults(func=cmd_train)

    ld = cli.command("load", help="copy a model's datasets into MySQL")
    ld.add_argument("--wiki", help="the model's wiki, checked against its manifest "
                    "(default: the manifest's)")
    ld.add_argument("--from", required=True, metavar="DIR", help="the model directory")
    ld.add_argument("--to", required=True, metavar="mysql://user@host/db",
                    help="the database (a password goes in the URL)")
    ld.set_defaults(func=cmd_load)

    r = cli.command("recommend", help="link suggestions for one article (JSON)")
    r.add_argument("--wiki", help="the model's wiki, checked against it (default: the model's)")
    r.add_argument("--model", required=True, metavar="DIR", help="the model directory")
    r.add_argument("--store", metavar="mysql://user@host/db", help="read datasets from MySQL")
    source = r.add_mutually_exclusive_group(required=True)
    source.add_argument("--wikitext-file", metavar="FILE", help="the article's wikitext")
    source.add_argument("--dump", help="a dump holding the article")
    r.add_argument("--title", required=True, help="the article's title")
    r.add_argument("--threshold", type=_threshold, default=0.5,
                   help="minimum link score, within [0, 1]")
    r.add_argument("--max-recommendations", type=int, default=15, metavar="N",
                   help="links suggested at most")
    r.add_argument("--exclude-section", action="append", default=[], metavar="HEADING",
                   help="no links in this section (repeatable)")
    r.set_defaults(func=cmd_recommend)

    b = cli.command("backtest", help="precision/recall per threshold (SPEC §2 protocol)")
    b.add_argument("--wiki", help="the wiki the dump must be of, checked before training")
    b.add_argument("--dump", required=True, help="pages-articles XML dump (.xml, .bz2, .xz)")
    b.add_argument("--format", choices=("table", "json"), default="table",
                   help="a table for people, JSON for programs")
    b.add_argument("--plot", metavar="PNG", help="draw P/R/F1 by threshold and reliability")
    b.add_argument(
        "--ablate",
        metavar="FEATURE[,FEATURE]",
        help="train and recommend without these features (set missing): their contribution",
    )
    training_options(b)
    b.set_defaults(func=cmd_backtest)

    pb = cli.command("publish", help="publish a model: each file, its .checksum, the index")
    pb.add_argument("--model", required=True, metavar="DIR", help="the trained model directory")
    pb.add_argument("--to", required=True, metavar="DIR_OR_URL",
                    help="a directory served over HTTP, or an http(s) URL that takes PUT")
    pb.set_defaults(func=cmd_publish)

    f = cli.command("fetch", help="download what changed, verify, switch <to>/<wiki>")
    f.add_argument("--from", required=True, metavar="URL_OR_DIR", help="where it was published")
    f.add_argument("--wiki", required=True, help="the wiki whose model is fetched")
    f.add_argument("--to", required=True, metavar="DIR",
                   help="the models directory: <DIR>/<wiki> becomes a symlink to the version")
    f.add_argument("--version", help="a published version (default: the latest); to roll back")
    f.set_defaults(func=cmd_fetch)
    return cli.parser


# MySQL client error codes: wrong user/password or database (the command line's fault)
# and a server that cannot be reached.
_MYSQL_USAGE = frozenset({1044, 1045, 1049})
_MYSQL_UNAVAILABLE = frozenset({2003, 2005, 2006, 2013})


def _failure(args: argparse.Namespace, e: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one line for an error of a command."""
    import bz2  # noqa: F401 - bz2 errors are OSError/EOFError
    import lzma
    from xml.etree.ElementTree import ParseError

    import pymysql

    from model.datasets import DatasetError
    from model.train import TrainingError

    dump = getattr(args, "dump", None)
    if isinstance(dump, list):  # train's parts
        dump = " ".join(dump)
    text = " ".join(str(e).split())
    if isinstance(e, ParseError | EOFError | lzma.LZMAError) and dump:
        return ExitCode.USAGE, f"{dump}: not a readable XML dump ({type(e).__name__}: {text})"
    if isinstance(e, pymysql.MySQLError):
        code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
        where = _safe_url(getattr(args, "to", None) or getattr(args, "store", None) or "")
        msg = f"{where}: {e.args[-1] if e.args else text}"
        if code in _MYSQL_UNAVAILABLE:
            return ExitCode.UNAVAILABLE, f"MySQL unavailable: {msg}"
        return (ExitCode.USAGE if code in _MYSQL_USAGE else ExitCode.FAILURE), msg
    if isinstance(e, DatasetError):
        return ExitCode.MODEL_INVALID, text
    if isinstance(e, TrainingError | ValueError | OSError):
        if isinstance(e, OSError) and dump and not isinstance(e, FileNotFoundError):
            return ExitCode.USAGE, f"{dump}: not a readable dump ({text})"
        return ExitCode.USAGE, text
    return ExitCode.FAILURE, f"{type(e).__name__}: {text}"


def _safe_url(url: str) -> str:
    """A mysql:// URL without its password."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    if u.password is None:
        return url
    return u._replace(netloc=u.netloc.replace(f":{u.password}@", "@", 1)).geturl()


def _interrupted(signum, frame) -> None:
    """Ctrl-C: KeyboardInterrupt once; every later SIGINT is ignored.

    A second SIGINT (a terminal's second Ctrl-C, or one more reaching the process group)
    arriving before the first is handled ran Python's handler again at some later point,
    in the cleanup or at exit, where the KeyboardInterrupt escapes and the process ends
    killed by the signal (exit -2) instead of with its one line and exit 5. Each SIGINT is
    recorded in ``INTERRUPTS``, where ``model.parallel.checkpoint`` finds one whose
    KeyboardInterrupt was swallowed."""
    INTERRUPTS.append(signum)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if len(INTERRUPTS) == 1:
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(log_level(args), args.log_format, bars=on_terminal(args))
    previous = signal.getsignal(signal.SIGINT)
    # Python's own handler only (not replaced when embedded), and only where it may be set.
    ours = (previous is signal.default_int_handler
            and threading.current_thread() is threading.main_thread())
    unraisable = sys.unraisablehook
    if ours:
        INTERRUPTS.clear()
        signal.signal(signal.SIGINT, _interrupted)
        sys.unraisablehook = _unraisable
    try:
        return _run(args)
    finally:
        sys.unraisablehook = unraisable
        if ours and not INTERRUPTS:  # interrupted: SIGINT stays ignored to the end
            signal.signal(signal.SIGINT, previous)


def _unraisable(info) -> None:
    """Python's report of an exception it could not raise, minus a lost Ctrl-C's.

    Where the handler's KeyboardInterrupt lands in a hook that cannot raise (an after-fork
    callback, a ``__del__``), Python prints "Exception ignored" and a traceback. That one
    is not lost: ``INTERRUPTS`` holds it and the next ``checkpoint`` raises it, so the user
    sees the command's one line only. Every other report goes to Python's hook."""
    if issubclass(info.exc_type, KeyboardInterrupt) and INTERRUPTS:
        return
    sys.__unraisablehook__(info)


def _run(args: argparse.Namespace) -> int:
    """The command, each way it can end turned into its one line and exit code."""
    from model.publish import ChecksumError, PublishError

    try:
        try:
            return args.func(args)
        except BaseException:
            stop_background()  # before the one-line ending: no child may talk after it
            raise
    except ChecksumError as e:
        return fail(str(e), ExitCode.MODEL_INVALID)
    except PublishError as e:
        return fail(str(e), ExitCode.UNAVAILABLE)
    except (InvalidTitle, UsageError) as e:
        return fail(str(e), ExitCode.USAGE)
    except KeyboardInterrupt:  # Ctrl-C: one line, as every other ending, not a traceback
        return fail(f"{args.command}: interrupted (SIGINT)", ExitCode.SIGNAL)
    except Exception as e:  # noqa: BLE001 - no traceback ever reaches a user
        code, message = _failure(args, e)
        log.error("failed", extra={"command": args.command, "error": message})
        return fail(message, code)


if __name__ == "__main__":
    code = main()
    if INTERRUPTS:
        # Interrupted: the command has cleaned up and printed its line. Leave without the
        # interpreter's finalization, where a SIGINT still pending in the C signal layer
        # (1 to 4 runs in 6 on the loaded host) raised KeyboardInterrupt in an atexit hook
        # and the process ended killed by SIGINT (-2) instead of with exit 5.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)

"""Command line: ``python -m model train|load|recommend|backtest|publish|fetch``.

Exit codes: the project's table (model/exitcodes.py, docs/runner.md): 0 done; 1 the work
failed (bad dump, too little data, database error); 2 bad usage (argparse, an invalid
title); 6 a published model could not be read or written (a server, a directory); 8 a
fetched file failed its checksum (nothing switched).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from model.exitcodes import ExitCode
from model.progress import setup_logging
from model.titles import InvalidTitle, validate_title

log = logging.getLogger("addlink.model")


def _settings(args: argparse.Namespace):
    from model.train import Settings

    complete = {"complete": True, "slice": False, "auto": None}[args.mode]
    return Settings(complete=complete, features=args.features, seed=args.seed)


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
        raise SystemExit(f"error: --wiki {args.wiki} but the model is {model.wiki}")
    pageid = revid = 0
    if args.wikitext_file:
        wikitext = Path(args.wikitext_file).read_text(encoding="utf-8")
    else:
        from model.dump import pages
        from model.text import normalize_title

        wanted = normalize_title(args.title)
        page = next((p for p in pages(args.dump) if p.title == wanted), None)
        if page is None:
            raise SystemExit(f"error: no page titled {wanted!r} in {args.dump}")
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
    from model.features import ablated_columns

    ablate = tuple(dict.fromkeys(n.strip() for n in (args.ablate or "").split(",") if n.strip()))
    try:
        ablated_columns(args.features, ablate)
    except ValueError as e:
        print(f"error: --ablate: {e}", file=sys.stderr)
        return ExitCode.USAGE
    result = backtest(args.dump, replace(_settings(args), ablate=ablate))
    if args.wiki and args.wiki != result["wiki"]:
        raise SystemExit(f"error: --wiki {args.wiki} but the dump is of {result['wiki']}")
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


def _threshold(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not within [0, 1]")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    p.add_argument("--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    def training_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--mode",
            choices=("auto", "complete", "slice"),
            default="auto",
            help="complete: a link to a title not in the dump is a red link; slice: unknown; "
            "auto: decided from how many links resolve inside the dump",
        )
        sp.add_argument("--features", choices=("full", "reference"), default="full")
        sp.add_argument("--seed", type=int, default=1)

    t = sub.add_parser("train", help="train one wiki's model from its dump")
    t.add_argument("--wiki", required=True)
    t.add_argument("--dump", required=True)
    t.add_argument("--out", required=True)
    training_options(t)
    t.set_defaults(func=cmd_train)

    ld = sub.add_parser("load", help="copy a model's datasets into MySQL")
    ld.add_argument("--wiki")
    ld.add_argument("--from", required=True, metavar="DIR")
    ld.add_argument("--to", required=True, metavar="mysql://user@host/db")
    ld.set_defaults(func=cmd_load)

    r = sub.add_parser("recommend", help="link suggestions for one article (JSON)")
    r.add_argument("--wiki")
    r.add_argument("--model", required=True, metavar="DIR")
    r.add_argument("--store", metavar="mysql://user@host/db", help="read datasets from MySQL")
    source = r.add_mutually_exclusive_group(required=True)
    source.add_argument("--wikitext-file")
    source.add_argument("--dump")
    r.add_argument("--title", required=True)
    r.add_argument("--threshold", type=_threshold, default=0.5)
    r.add_argument("--max-recommendations", type=int, default=15)
    r.add_argument("--exclude-section", action="append", default=[], metavar="HEADING")
    r.set_defaults(func=cmd_recommend)

    b = sub.add_parser("backtest", help="precision/recall per threshold (SPEC §2 protocol)")
    b.add_argument("--wiki")
    b.add_argument("--dump", required=True)
    b.add_argument("--format", choices=("table", "json"), default="table")
    b.add_argument("--plot", metavar="PNG", help="draw P/R/F1 by threshold and reliability")
    b.add_argument(
        "--ablate",
        metavar="FEATURE[,FEATURE]",
        help="train and recommend without these features (set missing): their contribution",
    )
    training_options(b)
    b.set_defaults(func=cmd_backtest)

    pb = sub.add_parser("publish", help="publish a model: each file, its .checksum, the index")
    pb.add_argument("--model", required=True, metavar="DIR", help="the trained model directory")
    pb.add_argument("--to", required=True, metavar="DIR_OR_URL",
                    help="a directory served over HTTP, or an http(s) URL that takes PUT")
    pb.set_defaults(func=cmd_publish)

    f = sub.add_parser("fetch", help="download what changed, verify, switch <to>/<wiki>")
    f.add_argument("--from", required=True, metavar="URL_OR_DIR", help="where it was published")
    f.add_argument("--wiki", required=True)
    f.add_argument("--to", required=True, metavar="DIR",
                   help="the models directory: <DIR>/<wiki> becomes a symlink to the version")
    f.add_argument("--version", help="a published version (default: the latest); to roll back")
    f.set_defaults(func=cmd_fetch)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    from model.publish import ChecksumError, PublishError

    try:
        return args.func(args)
    except ChecksumError as e:
        print(f"error: {e}", file=sys.stderr)
        return ExitCode.MODEL_INVALID
    except PublishError as e:
        print(f"error: {e}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    except InvalidTitle as e:
        print(f"error: {e}", file=sys.stderr)
        return ExitCode.USAGE
    except (OSError, ValueError, RuntimeError) as e:
        log.error("failed", extra={"command": args.command, "error": str(e)})
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

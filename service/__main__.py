"""``python -m service serve --config FILE`` (a local dev server) and
``python -m service check URL`` (the x-amples checker). Production runs gunicorn with
``service.app:create_app()`` (docs/service.md). Exit codes: model/exitcodes.py."""

from __future__ import annotations

import argparse
import sys

from model.cli import CommandLine, fail, log_level, positive
from model.exitcodes import ExitCode
from model.wikis import ConfigError
from service.config import CONFIG_ENV


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1-65535)")
    return port


def build_parser() -> argparse.ArgumentParser:
    cli = CommandLine("python -m service", __doc__)
    serve = cli.command("serve", help="run the development server (one process)")
    serve.add_argument("--config", metavar="FILE",
                       help=f"the YAML configuration (default: ${CONFIG_ENV}; one is required)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8000, help="TCP port to listen on")
    chk = cli.command("check", help="run the spec's x-amples against a running server")
    chk.add_argument("url", help="base URL, e.g. http://127.0.0.1:8000")
    chk.add_argument("--timeout", type=positive(float, "seconds"), default=30.0,
                     help="seconds per request")
    return cli.parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from service.logs import setup_logging

    setup_logging(log_level(args), args.log_format)
    if args.command == "check":
        from service.check import main as check_main

        return check_main(args.url, args.timeout)
    try:
        from service.app import create_app

        app = create_app(args.config)
    except ConfigError as e:
        return fail(str(e), ExitCode.USAGE)
    # One thread: the per-request deadline is a SIGALRM timer of the main thread.
    app.run(host=args.host, port=args.port, threaded=False)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())

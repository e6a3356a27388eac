"""``python -m service serve --config FILE`` (a local dev server) and
``python -m service check URL`` (the x-amples checker). Production runs gunicorn with
``service.app:create_app()`` (docs/service.md). Exit codes: model/exitcodes.py."""

from __future__ import annotations

import argparse
import sys

from model.exitcodes import ExitCode
from model.wikis import ConfigError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the development server (one process)")
    serve.add_argument("--config", help="YAML config (default: $ADDLINK_CONFIG)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    chk = sub.add_parser("check", help="run the spec's x-amples against a running server")
    chk.add_argument("url", help="base URL, e.g. http://127.0.0.1:8000")
    chk.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    if args.command == "check":
        from service.check import main as check_main

        return check_main(args.url, args.timeout)
    try:
        from service.app import create_app

        app = create_app(args.config)
    except ConfigError as e:
        print(f"service: {e}", file=sys.stderr)
        return ExitCode.USAGE
    # One thread: the per-request deadline is a SIGALRM timer of the main thread.
    app.run(host=args.host, port=args.port, threaded=False)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())

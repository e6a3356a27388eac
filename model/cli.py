"""The command-line scaffolding shared by ``python -m model``, ``runner`` and ``service``.

One behaviour for the three programs, so an operator learns it once:

- global options (``--log-level``, ``--log-format``, ``--quiet``, a program's own such as
  the runner's ``--config``) are accepted before *or* after the command: each command's
  parser carries a copy whose default is ``SUPPRESS``, so a copy that was not given never
  overwrites the value parsed before the command;
- every option's help shows its default (``HelpFormatter``), and ``--version`` prints the
  application version that ``model train`` records in each manifest (``code_version``);
- a usage error is one line on stderr and exit 2 (``ExitCode.USAGE``), not argparse's usage
  block.

A program adds a command with ``CommandLine.command(name, help)`` and then options to the
parser it returns, as with plain argparse (``add_argument``): options of a command need
nothing else to get their default shown.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO

from model.exitcodes import ExitCode
from model.jsonlog import FORMATS, configure
from model.version import APPLICATION_VERSION

LEVELS = ("debug", "info", "warning", "error")


def _shown(default: Any) -> bool:
    """A default worth showing: not absent, not the 'off' of a flag, not an empty list."""
    return default is not argparse.SUPPRESS and default is not None and default is not False \
        and default != []


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                    argparse.RawDescriptionHelpFormatter):
    """argparse's defaults formatter without its noise ("(default: None)" on an option with
    no default, "(default: False)" on a flag), keeping the descriptions' line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or "(default:" in text or not action.option_strings \
                or not _shown(action.default):
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit ``ExitCode.USAGE``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see --help)\n")


@dataclass(frozen=True)
class Option:
    """A global option: ``add_argument``'s arguments, added to the program and each command."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def add_to(self, parser: argparse._ActionsContainer, after_command: bool) -> None:
        kwargs = dict(self.kwargs)
        if after_command:  # the value parsed before the command stays unless given again
            default = kwargs.get("default")
            kwargs["default"] = argparse.SUPPRESS
            if _shown(default) and "(default:" not in kwargs.get("help", ""):
                kwargs["help"] = f"{kwargs.get('help', '')} (default: {default})"
        parser.add_argument(*self.flags, **kwargs)


LOGGING = (
    Option(("--log-level",), {"type": str.lower, "choices": LEVELS, "default": "info",
                              "help": "the least severe log records written"}),
    Option(("--log-format",), {"choices": FORMATS, "default": "auto",
                               "help": "auto: text on a terminal, JSON lines otherwise"}),
    Option(("-q", "--quiet"), {"action": "store_true",
                               "help": "log warnings and errors only; no progress line and "
                                       "no summary on a terminal"}),
)


class CommandLine:
    """A program with commands, its global options accepted anywhere on the line."""

    def __init__(self, prog: str, description: str, epilog: str | None = None,
                 options: Sequence[Option] = ()) -> None:
        self.prog = prog
        self.options = (*options, *LOGGING)
        self.parser = Parser(prog=prog, description=description, epilog=epilog)
        self._globals(self.parser, after_command=False)
        self._commands = self.parser.add_subparsers(dest="command", required=True,
                                                    metavar="COMMAND")

    def _globals(self, parser: argparse.ArgumentParser, after_command: bool) -> None:
        group = parser.add_argument_group(
            "global options (before or after the command)" if after_command else
            "global options (also accepted after the command)")
        group.add_argument("--version", action="version",
                           version=f"{self.prog} {APPLICATION_VERSION}",
                           help="print the application version and exit")
        for option in self.options:
            option.add_to(group, after_command)

    def command(self, name: str, help: str, description: str | None = None
                ) -> argparse.ArgumentParser:
        """A new command's parser; add its options with ``add_argument``."""
        # "resolve": an option of the command's own wins over a global one of the same name
        # (model fetch --version is the model's version, not the program's).
        sp = self._commands.add_parser(name, help=help, description=description or help,
                                       conflict_handler="resolve")
        self._globals(sp, after_command=True)
        return sp

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        return self.parser.parse_args(argv)


def positive(kind: type, what: str = "a number") -> Any:
    """An argparse ``type`` for a number > 0 of ``kind``: one message shape for every
    program's counts and durations ("expected seconds, got 'x'", "must be > 0, got 0")."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return convert


def log_level(args: argparse.Namespace) -> int:
    """The logging level of ``--log-level``, at least WARNING with ``--quiet``."""
    level = getattr(logging, str(getattr(args, "log_level", "info")).upper())
    return max(level, logging.WARNING) if getattr(args, "quiet", False) else level


def setup_logging(args: argparse.Namespace, stream: TextIO, logger: str = "",
                  quiet_loggers: tuple[str, ...] = ()) -> logging.Handler:
    """Logging as the global options say: format (auto: by ``stream``), level, quiet."""
    return configure(getattr(args, "log_format", "auto"), log_level(args), stream,
                     logger=logger, quiet_loggers=quiet_loggers)


def on_terminal(args: argparse.Namespace, stream: TextIO | None = None) -> bool:
    """A person watches ``stream`` (stderr) and did not ask for quiet: progress, summary."""
    stream = sys.stderr if stream is None else stream
    return stream.isatty() and not getattr(args, "quiet", False)


def fail(message: str, code: int = ExitCode.USAGE) -> int:
    """Print the one-line error of a command and return its exit code."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return int(code)

"""The three command lines as an operator meets them (``python -m model|runner|service``):
global options anywhere, help with defaults, --version, one-line usage errors and exit 2,
``model train`` on a terminal, ``backtest --wiki`` checked before any training."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from model.cli import HelpFormatter
from model.exitcodes import ExitCode
from model.version import APPLICATION_VERSION
from tests.cli_support import REPO, TEXT_RECORD, bar_states, in_terminal, piped
from tests.model_fixtures import LTG_DUMP
from tests.runner_support import dump_slice

PROGRAMS = ("runner", "model", "service")


def parsers() -> dict[str, argparse.ArgumentParser]:
    from model.__main__ import parser as model_parser
    from runner.__main__ import build_parser as runner_parser
    from service.__main__ import build_parser as service_parser

    return {"runner": runner_parser(), "model": model_parser(), "service": service_parser()}


def commands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_option_has_help_and_shows_its_default():
    for program, p in parsers().items():
        for name, sp in {"": p, **commands(p)}.items():
            text = sp.format_help()
            for action in sp._actions:
                if not action.option_strings or isinstance(action, argparse._HelpAction):
                    continue
                where = f"python -m {program} {name} {action.option_strings[-1]}"
                assert action.help, f"{where}: no help text"
                formatted = HelpFormatter("x")._get_help_string(action)
                if action.default not in (None, False, [], argparse.SUPPRESS):
                    assert "(default: " in formatted, f"{where}: default not shown"
            assert isinstance(sp.formatter_class, type) and \
                issubclass(sp.formatter_class, HelpFormatter), (program, name)
            assert "(default: info)" in text, (program, name)  # --log-level, before or after


# A minimal valid command line for each command (options before the command are global).
MINIMAL = {
    "runner": {"refresh": [], "backfill": ["--wiki", "w", "--page", "P"], "status": [],
               "revalidate": ["--wiki", "w", "--all"], "migrate": [],
               "drift": ["--wiki", "w"]},
    "model": {"train": ["--wiki", "w", "--dump", "d", "--out", "o"],
              "load": ["--from", "d", "--to", "mysql://u@h/db"],
              "recommend": ["--model", "m", "--dump", "d", "--title", "T"],
              "backtest": ["--dump", "d"], "publish": ["--model", "m", "--to", "t"],
              "fetch": ["--from", "u", "--wiki", "w", "--to", "d"]},
    "service": {"serve": [], "check": ["http://127.0.0.1:1"]},
}


@pytest.mark.parametrize("program", PROGRAMS)
def test_global_options_parse_before_or_after_every_command(program):
    p = parsers()[program]
    assert set(commands(p)) == set(MINIMAL[program])
    for name, args in MINIMAL[program].items():
        default = p.parse_args([name, *args])
        before = p.parse_args(["--log-level", "error", "--log-format", "text", "-q", name, *args])
        after = p.parse_args([name, *args, "--log-level", "error", "--log-format", "text", "-q"])
        assert (default.log_level, default.log_format, default.quiet) == ("info", "auto", False)
        for ns in (before, after):
            assert (ns.log_level, ns.log_format, ns.quiet) == ("error", "text", True), name
        # Given before and not after: the command's copy does not reset it to its default.
        mixed = p.parse_args(["--log-level", "debug", name, *args, "--log-format", "json"])
        assert (mixed.log_level, mixed.log_format) == ("debug", "json"), name
        if program == "runner":
            assert p.parse_args([name, *args, "--config", "c.yaml"]).config == "c.yaml"
            assert p.parse_args(["--config", "c.yaml", name, *args]).config == "c.yaml"


@pytest.mark.parametrize("program", PROGRAMS)
def test_version_before_or_after_the_command(program):
    for args in (("--version",), (next(iter(MINIMAL[program])), "--version")):
        r = piped("-m", program, *args)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"python -m {program} {APPLICATION_VERSION}"


@pytest.mark.parametrize("program, args, message", [
    ("runner", ("refresh", "--bogus"), "unrecognized arguments: --bogus"),
    ("runner", ("refresh", "--workers", "0"), "argument --workers: must be > 0, got 0"),
    ("runner", ("nosuch",), "argument COMMAND: invalid choice: 'nosuch'"),
    ("runner", ("backfill", "--wiki", "w"), "one of the arguments --page --titles-file"),
    ("runner", ("--log-level", "loud", "status"), "argument --log-level: invalid choice"),
    ("runner", (), "the following arguments are required: COMMAND"),
    ("model", ("train", "--wiki", "w"), "the following arguments are required: --dump, --out"),
    ("model", ("recommend", "--model", "m", "--dump", "d", "--title", "T", "--threshold",
               "x"), "argument --threshold: expected a number, got 'x'"),
    ("model", ("backtest", "--dump", "d", "--format", "csv"), "argument --format"),
    ("service", ("serve", "--port", "70000"), "70000 is not a TCP port"),
    ("service", ("check", "http://x", "--timeout", "-1"), "must be > 0"),
])
def test_usage_errors_are_one_line_and_exit_2(program, args, message):
    r = piped("-m", program, *args)
    assert r.returncode == ExitCode.USAGE
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"python -m {program}") and message in line, line
    assert line.endswith("(see --help)") and r.stdout == ""


def test_backtest_of_another_wikis_dump_fails_before_training(tmp_path):
    """One line, exit 2, and no stage ran (nothing was parsed, let alone trained)."""
    r = piped("-m", "model", "backtest", "--wiki", "enwiki", "--dump", str(LTG_DUMP),
              "--log-format", "json")
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.strip() == f"error: --wiki enwiki but {LTG_DUMP} is a dump of ltgwiki"
    r = piped("-m", "model", "backtest", "--wiki", "ltgwiki", "--dump", str(LTG_DUMP),
              "--plot", str(tmp_path / "missing" / "bt.png"))
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.strip() == f"error: --plot {tmp_path / 'missing' / 'bt.png'}: no such " \
                               "directory"


def test_recommend_errors_are_usage_errors(tmp_path, ltg_model):
    page = tmp_path / "page.wiki"
    page.write_text("Latgola ir [[Latveja|Latvejis]] regions.", encoding="utf-8")
    base = ("-m", "model", "recommend", "--model", str(ltg_model), "--title", "Latgola")
    r = piped(*base, "--wikitext-file", str(page), "--wiki", "enwiki")
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.strip() == f"error: --wiki enwiki but the model {ltg_model} is of ltgwiki"
    r = piped(*base[:-1], "No such page here", "--dump", str(LTG_DUMP))
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.strip() == f"error: no page titled 'No such page here' in {LTG_DUMP}"


def test_train_on_a_terminal_names_every_stage_and_counts_articles(tmp_path):
    """The issue saw 'stage done' without names and a parse bar at 2004 of '903'."""
    from model.dump import pages

    dump = dump_slice(tmp_path / "slice.xml", 400)
    articles = sum(1 for p in pages(dump) if p.namespace == 0 and not p.redirect)
    assert articles < sum(1 for _ in pages(dump))  # the slice has redirects, other namespaces
    code, out = in_terminal("-m", "model", "train", "--wiki", "ltgwiki", "--dump", dump,
                            "--out", str(tmp_path / "model"))
    assert code == 0, out[-3000:]
    assert '{"time"' not in out.split('{\n')[0]  # the log is text on a terminal
    done = re.findall(r"Z INFO stage (.+?) done", out)
    for name in ("parse", "abbreviations", "anchors", "link probability", "link graph",
                 "fold models and pairs"):
        assert name in done, (name, done)  # the log record names its stage
        assert bar_states(out, name), name  # and so does its bar
    assert re.search(rf"Z INFO stage parse done: {articles} \w+ in ", out)  # articles only
    # The parse bar counts articles and, where it shows a total, it is their number.
    parse = bar_states(out, "parse")
    totals = [tuple(map(int, m.groups())) for s in parse
              if (m := re.search(r"\| *(\d+)/(\d+) ", s))]
    assert all(total == articles and n <= total for n, total in totals), parse
    assert re.search(rf"[| ]{articles}(/{articles})? ", parse[-1]), parse[-1]  # the end
    assert json.loads(out[out.index("{\n"):])["wiki"] == "ltgwiki"  # the result on stdout


def test_train_without_a_terminal_logs_json_stages_and_draws_no_bar(tmp_path):
    dump = dump_slice(tmp_path / "slice.xml", 150)
    r = piped("-m", "model", "train", "--wiki", "ltgwiki", "--dump", dump, "--out",
              str(tmp_path / "model"))
    assert r.returncode == 0, r.stderr[-3000:]
    records = [json.loads(x) for x in r.stderr.splitlines()]
    stages = [x["stage"] for x in records if x["message"].startswith("stage ")]
    assert "parse" in stages and "fold models and pairs" in stages
    assert "\r" not in r.stderr and not TEXT_RECORD.search(r.stderr)
    assert json.loads(r.stdout)["wiki"] == "ltgwiki"


def test_service_serve_without_a_config_is_one_line_on_a_terminal():
    """No --config and no ADDLINK_CONFIG: one line, exit 2 (no traceback, no usage block)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "ADDLINK_CONFIG"}
    code, out = in_terminal("-m", "service", "serve", env=env, cwd=REPO)
    assert code == ExitCode.USAGE
    assert out.strip() == "error: no config: pass --config FILE or set ADDLINK_CONFIG"


@pytest.mark.parametrize("presses", [1, 3])
def test_ctrl_c_in_model_train_is_one_line_and_exit_5(tmp_path, presses):
    """Ctrl-C once, or pressed again while the first is being handled: the later ones are
    ignored, and none may end the process killed by SIGINT (-2) after its one line."""
    import signal
    import subprocess
    import sys
    import time

    dump = dump_slice(tmp_path / "slice.xml", 400)
    # SIGINT at its default in the child, as a terminal's process has it: a suite started in
    # the background by a shell without job control inherits SIGINT ignored, Python then
    # installs no handler, and the press would rightly go unnoticed (seen: exit 0).
    proc = subprocess.Popen([sys.executable, "-m", "model", "train", "--wiki", "ltgwiki",
                             "--dump", dump, "--out", str(tmp_path / "model")], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stderr.readline()  # the first stage's record: training is under way
    assert json.loads(first)["stage"]
    time.sleep(0.5)
    for press in range(presses):
        if press:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.SIGNAL, err[-2000:]
    assert err.strip().splitlines()[-1] == "error: train: interrupted (SIGINT)"
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "model").exists()


# A Ctrl-C whose KeyboardInterrupt is swallowed where it lands: the signal is sent from a
# __del__ (CI saw it land in logging's after-fork hook), where Python prints "Exception
# ignored" and goes on. The command runs through its own main(), in its own process; a log
# filter drops the object when the first stage's record is written.
SWALLOWED = """
import logging, os, signal, sys
import model.__main__ as cli

class Lost:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))  # the handler runs here, and its exception goes nowhere

class AtFirstStage(logging.Filter):
    fired = False
    def filter(self, record):
        if getattr(record, "stage", None) and not AtFirstStage.fired:
            AtFirstStage.fired = True
            Lost()
        return True

_setup = cli.setup_logging
def setup(*args, **kwargs):
    _setup(*args, **kwargs)
    for handler in logging.getLogger("addlink").handlers:
        handler.addFilter(AtFirstStage())
cli.setup_logging = setup
signal.signal(signal.SIGINT, signal.default_int_handler)  # as on a terminal
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_ctrl_c_whose_exception_was_swallowed_still_stops_train(tmp_path):
    """The SIGINT is recorded; the next stage boundary raises it, so training ends with its
    one line and exit 5 and installs no model, instead of carrying on to exit 0, and
    Python's "Exception ignored" report of it is not shown."""
    import subprocess
    import sys

    dump = dump_slice(tmp_path / "slice.xml", 120)
    proc = subprocess.run([sys.executable, "-c", SWALLOWED, "train", "--wiki", "ltgwiki",
                           "--dump", dump, "--out", str(tmp_path / "model")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == ExitCode.SIGNAL, proc.stderr[-2000:]  # (before the fix: 0)
    assert proc.stderr.strip().splitlines()[-1] == "error: train: interrupted (SIGINT)"
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert not (tmp_path / "model").exists()

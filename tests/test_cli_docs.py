"""The issue's acceptance line: "Every command and option in README/docs appears in
``--help`` with its default".

Every ``python -m runner|model|service ...`` command line of README.md and docs/*.md (code
blocks, with their continuation lines, and inline code), every inline ``refresh --dry-run``
style mention of a command, and every option named on its own (``--max-runtime``) is
checked against the real ``--help`` output of that program and command (subprocesses):
the command exists, each option is listed in its help or the program's global help, and an
option with a default shows it there.
"""

from __future__ import annotations

import argparse
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_support import REPO, piped

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PROGRAMS = ("runner", "model", "service")
OPTION = re.compile(r"--[a-z][a-z0-9-]*")


@functools.cache
def parsers() -> dict[str, argparse.ArgumentParser]:
    from model.__main__ import parser as model_parser
    from runner.__main__ import build_parser as runner_parser
    from service.__main__ import build_parser as service_parser

    return {"runner": runner_parser(), "model": model_parser(), "service": service_parser()}


def commands(program: str) -> dict[str, argparse.ArgumentParser]:
    p = parsers()[program]
    (sub,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@functools.cache
def help_entries(program: str, command: str) -> dict[str, str]:
    """``python -m PROGRAM [COMMAND] --help``, as {option: its help entry's text}."""
    r = piped("-m", program, *([command] if command else []), "--help", timeout=120)
    assert r.returncode == 0, r.stderr
    entries: dict[str, str] = {}
    current: list[str] = []
    for line in r.stdout.splitlines():
        m = re.match(r"^  (?:-\w, )?(--[a-z][a-z0-9-]*)", line)
        if m:
            current = [line]
            entries[m[1]] = ""
            key = m[1]
        elif current and line.startswith("    "):
            current.append(line)
        else:
            current = []
        if current:
            entries[key] = " ".join(x.strip() for x in current)
    return entries


@dataclass(frozen=True)
class Mention:
    where: str  # file:line
    text: str  # the command line or span as written
    program: str | None  # None: an option named on its own
    commands: tuple[str, ...]  # () : the program's global options only
    options: tuple[str, ...]


def _options(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(OPTION.findall(text)))


def _command_words(program: str, words: list[str]) -> tuple[str, ...]:
    names = commands(program)
    found = [w for word in words for w in word.split("|") if w in names]
    return tuple(dict.fromkeys(found))


def _cut(text: str) -> str:
    """A command line up to a comment, a pipe, a redirection or the next command (a " | "
    before an option is a usage line's alternative, not a pipe)."""
    return re.split(r"\s#\s|\s\|\s(?!-)|\s>\s|&&|;", text + " ")[0]


def mentions() -> list[Mention]:
    out: list[Mention] = []
    invocation = re.compile(r"python -m (runner|model|service)\b(.*)")
    for doc in DOCS:
        rel = doc.relative_to(REPO)
        lines = doc.read_text(encoding="utf-8").splitlines()
        in_block, program, prose = False, None, []
        i = 0
        while i < len(lines):
            line, at = lines[i], f"{rel}:{i + 1}"
            if line.strip().startswith("```"):
                in_block, program = not in_block, None
                i += 1
                continue
            if in_block:
                while line.endswith("\\") and i + 1 < len(lines):  # shell continuation
                    i += 1
                    line = line[:-1] + " " + lines[i].strip()
                m = invocation.search(line)
                if m:
                    program, rest = m[1], _cut(m[2])
                    out.append(Mention(at, line.strip(), program,
                                       _command_words(program, rest.split()), _options(rest)))
                elif program and line.startswith(" ") and line.split() and \
                        line.split()[0] in commands(program):  # a usage block's next command
                    rest = _cut(line)
                    out.append(Mention(at, line.strip(), program, (line.split()[0],),
                                       _options(rest)))
                elif program and line.startswith("  ") and out and out[-1].program == program:
                    last = out[-1]  # that command's usage, continued on an indented line
                    out[-1] = Mention(last.where, f"{last.text} {line.strip()}", program,
                                      last.commands, last.options + _options(_cut(line)))
                else:
                    program = None
            else:
                prose.append((at, line))
            i += 1
        # Inline code, also where a span wraps onto the next line.
        text = "\n".join(f"\x00{at}\x00{line}" for at, line in prose)
        for found in re.finditer(r"`([^`]+)`", text):
            marker = text.rfind("\x00", 0, found.start())  # the end of the line's marker
            where = text[text.rfind("\x00", 0, marker) + 1:marker]
            span = re.sub(r"\x00[^\x00]+\x00", " ", found[1]).strip()
            m = invocation.search(span)
            words = span.split()
            if m:
                rest = _cut(m[2])
                out.append(Mention(where, span, m[1], _command_words(m[1], rest.split()),
                                   _options(rest)))
                continue
            owners = [p for p in PROGRAMS if words and words[0] in commands(p)]
            if words and words[0] in PROGRAMS and len(words) > 1 \
                    and words[1] in commands(words[0]):  # `model load`, `runner migrate`
                owners, words = [words[0]], words[1:]
            if len(owners) == 1 and OPTION.search(span):
                out.append(Mention(where, span, owners[0], (words[0],), _options(_cut(span))))
            elif span.startswith("--"):
                out.append(Mention(where, span, None, (), _options(span.split()[0])))
    return out


def _foreign(option: str) -> bool:
    """An option of another script of the repository (benchmarks/, scripts/)."""
    sources = [*REPO.glob("benchmarks/*.py"), *REPO.glob("scripts/*")]
    return any(f'"{option}"' in p.read_text(errors="replace") for p in sources if p.is_file())


def _action(program: str, command: str, option: str) -> argparse.Action | None:
    parser = commands(program)[command] if command else parsers()[program]
    return next((a for a in parser._actions if option in a.option_strings), None)


def _shown(action: argparse.Action) -> bool:
    return action.default not in (None, False, [], argparse.SUPPRESS) \
        and not action.required


def test_the_docs_name_commands_and_options_of_the_three_programs():
    found = mentions()
    # The extraction itself: the README's entry points and runner.md's usage block.
    assert sum(m.program == "runner" for m in found) >= 10
    assert {c for m in found if m.program == "model" for c in m.commands} >= {
        "train", "recommend", "backtest", "load", "publish", "fetch"}
    assert {c for m in found if m.program == "runner" for c in m.commands} >= {
        "migrate", "refresh", "backfill", "status", "revalidate", "drift"}
    assert {c for m in found if m.program == "service" for c in m.commands} >= {"serve", "check"}
    assert any(m.program is None and m.options == ("--max-runtime",) for m in found)


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_documented_command_and_option_is_in_help_with_its_default(program):
    problems = []
    for m in mentions():
        if m.program is not None and m.program != program:
            continue
        if m.program is None:  # an option on its own: any program's, or another script's
            for option in m.options:
                if program == "runner" and not any(
                        option in help_entries(p, c) for p in PROGRAMS
                        for c in ("", *commands(p))) and not _foreign(option):
                    problems.append(f"{m.where}: `{m.text}`: {option} is in no --help")
            continue
        where = m.commands or ("",)
        for option in m.options:
            owners = [c for c in where if option in help_entries(program, c)]
            if not owners:
                shown = " or ".join(f"python -m {program} {c} --help".replace("  ", " ")
                                    for c in where)
                problems.append(f"{m.where}: `{m.text}`: {option} not in {shown}")
                continue
            for c in owners:
                action = _action(program, c, option)
                if action is not None and _shown(action) and \
                        "(default: " not in help_entries(program, c)[option]:
                    problems.append(f"{m.where}: {option} of {program} {c}: default "
                                    f"{action.default!r} not shown in --help")
    assert not problems, "\n".join(problems)


def test_every_command_of_each_program_is_documented():
    """The other way round: no command only --help knows about."""
    documented = {(m.program, c) for m in mentions() for c in m.commands}
    missing = [f"python -m {p} {c}" for p in PROGRAMS for c in commands(p)
               if (p, c) not in documented]
    assert not missing, missing


def test_runner_md_reference_lists_every_option_of_every_command():
    """docs/runner.md's CLI reference is complete: each option of each runner command."""
    reference = [m for m in mentions() if m.where.startswith("docs/runner.md")
                 and m.program == "runner"]
    listed = {(c, o) for m in reference for c in m.commands for o in m.options}
    global_listed = {o for m in reference if not m.commands for o in m.options}
    missing = []
    for name, sp in commands("runner").items():
        for action in sp._actions:
            for option in action.option_strings:
                if not option.startswith("--") or option == "--help":
                    continue
                if (name, option) not in listed and option not in global_listed:
                    missing.append(f"runner {name} {option}")
    assert not missing, missing


def test_the_extractor_reads_a_wrapped_span_and_a_continued_line(tmp_path):
    """Two shapes the docs use: an inline span broken across lines, a command continued
    with a backslash (both were missed by a line-by-line grep)."""
    ops = Path(REPO / "docs" / "operations.md").read_text()
    assert "\\\n" in ops
    found = [m for m in mentions() if m.where.startswith("docs/operations.md")]
    assert any(m.program == "model" and m.commands == ("backtest",) and "--wiki" in m.options
               for m in found)

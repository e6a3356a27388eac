"""The Dockerfile checked against the repository, without a Docker engine.

What a broken image definition looks like in production — a COPY of a moved file, an unpinned
or extra package, a root user, an entrypoint that does not import with the installed set — is
caught here by reading the Dockerfile and .dockerignore, rebuilding the image's /app tree from
the build context, and importing the entrypoint in a venv made from requirements.txt alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
REQUIREMENTS = REPO / "requirements.txt"
# Files that would mean models or data were baked into the image.
DATA_SUFFIXES = {".bz2", ".xz", ".gz", ".xml", ".sqlite", ".db", ".ubj", ".bin", ".npy", ".npz",
                 ".pkl", ".parquet", ".kv"}


@dataclass(frozen=True)
class Instruction:
    stage: int  # index of the FROM this instruction belongs to; -1 before the first FROM
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip()))
    assert not pending, "Dockerfile ends with a line continuation"
    return out


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    args = {}
    for ins in instructions:
        if ins.keyword == "ARG" and ins.stage == -1 and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            args[name.strip()] = value.strip().strip('"')
    return args


def substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), value)


@dataclass(frozen=True)
class Copy:
    stage: int
    sources: tuple[str, ...]
    dest: str
    from_stage: str | None


def copies(instructions: list[Instruction]) -> list[Copy]:
    out = []
    for ins in instructions:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        words = shlex.split(ins.args)
        flags = [w for w in words if w.startswith("--")]
        rest = [w for w in words if not w.startswith("--")]
        if rest and rest[0].startswith("["):
            rest = json.loads(" ".join(rest))
        from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        out.append(Copy(ins.stage, tuple(rest[:-1]), rest[-1], from_stage))
    return out


def workdir_at(instructions: list[Instruction], stage: int, index: int) -> str:
    workdir = "/"
    for ins in instructions[:index]:
        if ins.stage == stage and ins.keyword == "WORKDIR":
            workdir = str(Path(workdir) / ins.args)
    return workdir


# --- .dockerignore, with Docker's rules: last matching pattern wins, `!` re-includes, a
# pattern that matches a directory matches everything below it.

def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def ignore_rules(path: Path = DOCKERIGNORE) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negated, _pattern_regex(os.path.normpath(pattern))))
    return rules


def is_ignored(relpath: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.match(p) for p in prefixes):
            ignored = not negated
    return ignored


def context_files(source: str, rules) -> list[Path]:
    """Files of the build context that a COPY source brings in (after .dockerignore)."""
    matches = sorted(REPO.glob(source.rstrip("/"))) if source not in (".", "./") else [REPO]
    files = []
    for match in matches:
        candidates = [match] if match.is_file() else [p for p in match.rglob("*") if p.is_file()]
        for path in candidates:
            rel = path.relative_to(REPO).as_posix()
            if not is_ignored(rel, rules):
                files.append(path)
    return files


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    assert DOCKERFILE.is_file(), "no Dockerfile at the repository root"
    return parse_dockerfile(DOCKERFILE.read_text())


def final_stage(instructions: list[Instruction]) -> int:
    return max(ins.stage for ins in instructions)


def test_two_stages_on_one_slim_python_base(dockerfile):
    args = global_args(dockerfile)
    bases = [substitute(i.args.split()[0], args) for i in dockerfile if i.keyword == "FROM"]
    assert len(bases) >= 2, "expected a builder stage and a runtime stage"
    assert len(set(bases)) == 1, f"stages use different bases: {bases}"
    assert re.match(r"python:3\.11(\.\d+)?-slim", bases[0]), bases[0]
    # The clean-venv test below builds with this interpreter: it must be the image's Python.
    assert sys.version_info[:2] == (3, 11), "run the tests with the image's Python (3.11)"


def test_every_copy_source_exists_in_the_build_context(dockerfile):
    rules = ignore_rules()
    context = [c for c in copies(dockerfile) if c.from_stage is None]
    assert context, "no COPY from the build context"
    for copy in context:
        for source in copy.sources:
            assert not Path(source).is_absolute() and ".." not in Path(source).parts, source
            assert list(REPO.glob(source.rstrip("/"))), f"COPY source {source!r} is not in the repo"
            assert any(p.is_file() for m in REPO.glob(source.rstrip("/"))
                       for p in [m, *m.rglob("*")]), f"COPY source {source!r} has no files"
            assert context_files(source, rules), (
                f"COPY source {source!r} is excluded by .dockerignore (nothing would be copied)")
    assert not any(i.keyword == "ADD" for i in dockerfile), "use COPY, not ADD"


def test_copy_from_names_an_earlier_stage(dockerfile):
    names = [i.args.split()[-1] for i in dockerfile
             if i.keyword == "FROM" and " as " in i.args.lower()]
    for copy in copies(dockerfile):
        if copy.from_stage is not None:
            assert copy.from_stage in names[: copy.stage], copy


def test_pip_installs_exactly_the_pinned_requirements(dockerfile):
    req_copies = [c for c in copies(dockerfile)
                  if c.from_stage is None and "requirements.txt" in c.sources]
    assert len(req_copies) == 1 and req_copies[0].sources == ("requirements.txt",), req_copies
    req_dest = req_copies[0].dest
    installs = [i for i in dockerfile if i.keyword == "RUN" and "pip install" in i.args]
    assert len(installs) == 1, f"expected one pip install, got {[i.args for i in installs]}"
    install = installs[0]
    assert install.stage == req_copies[0].stage, "pip install runs in another stage than the COPY"
    for command in re.split(r"&&|;", install.args):
        words = shlex.split(command)
        if "install" not in words:
            continue
        after = words[words.index("install") + 1:]
        requirement_files, positional = [], []
        while after:
            word = after.pop(0)
            if word in ("-r", "--requirement"):
                requirement_files.append(after.pop(0))
            elif word in ("-e", "--editable", "-c", "--constraint", "-U", "--upgrade"):
                pytest.fail(f"pip install uses {word}: only the pinned requirements.txt may go in")
            elif word.startswith("-"):
                continue  # flags such as --no-cache-dir take no value here
            else:
                positional.append(word)
        assert not positional, f"pip install names packages directly: {positional}"
        assert requirement_files == [req_dest], requirement_files


def test_every_requirement_is_pinned():
    pinned = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!-]+$")
    lines = [ln.split("#", 1)[0].strip() for ln in REQUIREMENTS.read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    assert lines, "requirements.txt is empty"
    bad = [ln for ln in lines if not pinned.match(ln)]
    assert not bad, f"not pinned with ==: {bad}"


def test_final_user_is_numeric_and_not_root(dockerfile):
    last = final_stage(dockerfile)
    users = [i.args for i in dockerfile if i.keyword == "USER" and i.stage == last]
    assert users, "the runtime stage never switches away from root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]!r}: want a numeric non-zero uid"
    assert not gid or (gid.isdigit() and int(gid) != 0), f"USER {users[-1]!r}: bad group"


def test_entrypoint_is_the_runner_and_no_healthcheck(dockerfile):
    last = final_stage(dockerfile)
    entrypoints = [i.args for i in dockerfile if i.keyword == "ENTRYPOINT" and i.stage == last]
    assert entrypoints, "no ENTRYPOINT in the runtime stage"
    assert json.loads(entrypoints[-1]) == ["python", "-m", "runner"]
    assert not any(i.keyword == "HEALTHCHECK" for i in dockerfile), "a batch job needs none"


def test_no_models_or_data_in_the_build_context(dockerfile):
    rules = ignore_rules()
    for name in ("var/models/x/manifest.json", ".venv/bin/python", "tests/test_x.py",
                 "docs/operations.md", ".git/HEAD", "var/sample/enwiki.xml.bz2", ".env"):
        assert is_ignored(name, rules), f".dockerignore lets {name} into the build context"
    for copy in copies(dockerfile):
        if copy.from_stage is not None:
            continue
        for source in copy.sources:
            for path in context_files(source, rules):
                assert path.suffix not in DATA_SUFFIXES, f"data file in the image: {path}"
                assert path.stat().st_size < 2_000_000, f"large file in the image: {path}"


def test_dockerignore_semantics():
    rules = [(False, _pattern_regex("*")), (True, _pattern_regex("runner")),
             (False, _pattern_regex("**/__pycache__"))]
    assert is_ignored("var/x", rules)
    assert not is_ignored("runner/job.py", rules)
    assert is_ignored("runner/__pycache__/job.cpython-311.pyc", rules)
    assert not is_ignored("runner/sources/api.py", rules)


# --- the entrypoint in a clean venv -------------------------------------------------------

@pytest.fixture(scope="session")
def clean_venv() -> Path:
    """A venv with requirements.txt alone, built once and cached under var/ by its hash.

    The first build takes a minute or two (pip install); later runs reuse it.
    """
    key = hashlib.sha256(REQUIREMENTS.read_bytes()
                         + sys.version.encode()).hexdigest()[:16]
    root = REPO / "var" / "cache"
    venv = root / f"clean-venv-{key}"
    if (venv / ".complete").is_file():
        return venv
    tmp = root / f"clean-venv-{key}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
    result = subprocess.run(
        [str(tmp / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        capture_output=True, text=True)
    assert result.returncode == 0, f"pip install -r requirements.txt failed:\n{result.stderr}"
    (tmp / ".complete").write_text(REQUIREMENTS.read_text())
    shutil.rmtree(venv, ignore_errors=True)
    tmp.rename(venv)
    # venvs hard-code their own path in scripts; the python binary itself is unaffected.
    return venv


@pytest.fixture(scope="module")
def image_app(dockerfile, tmp_path_factory) -> Path:
    """The runtime stage's /app, rebuilt from the build context by its COPY instructions."""
    rules = ignore_rules()
    last = final_stage(dockerfile)
    root = tmp_path_factory.mktemp("image")
    for index, ins in enumerate(dockerfile):
        if ins.keyword != "COPY" or ins.stage != last:
            continue
        (copy,) = copies([ins])
        if copy.from_stage is not None:
            continue
        dest = Path(workdir_at(dockerfile, last, index)) / copy.dest
        for source in copy.sources:
            base = REPO / source.rstrip("/")
            for path in context_files(source, rules):
                rel = path.relative_to(base) if base.is_dir() else Path(path.name)
                target = root / dest.relative_to("/") / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    env_python_path = [i.args for i in dockerfile if i.keyword == "ENV" and i.stage == last
                       and "PYTHONPATH=" in i.args]
    assert env_python_path, "the runtime stage does not set PYTHONPATH to the app directory"
    app = re.search(r"PYTHONPATH=(\S+)", env_python_path[-1])[1]
    return root / app.lstrip("/")


def _run_in_image(clean_venv: Path, app: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{clean_venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(app),
           "HOME": str(app.parent), "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    return subprocess.run([str(clean_venv / "bin" / "python"), *args], cwd=app.parent, env=env,
                          capture_output=True, text=True, timeout=120)


def test_entrypoint_imports_in_a_clean_venv(clean_venv, image_app):
    assert (image_app / "runner" / "__main__.py").is_file(), (
        "runner/__main__.py is not in the image: the ENTRYPOINT module is missing")
    result = _run_in_image(clean_venv, image_app, "-c", "import runner.__main__")
    assert result.returncode == 0, f"import runner.__main__ failed:\n{result.stderr}"


def test_entrypoint_help_runs_in_a_clean_venv(clean_venv, image_app):
    result = _run_in_image(clean_venv, image_app, "-m", "runner", "--help")
    assert result.returncode == 0, result.stderr
    assert "refresh" in result.stdout


# --- the image at work: config, store, model and workers from the copied tree alone --------

LTG_DUMP = REPO.parent / "shared" / "data" / "dumps" / "ltgwiki-20170901-pages-articles.xml.bz2"


@pytest.fixture(scope="module")
def ltg_model_dir(ltg_model) -> Path:
    """The session's ltgwiki model (tests/model_fixtures.py)."""
    return Path(ltg_model)


def test_image_runs_a_dry_refresh_with_a_mounted_model(clean_venv, image_app, ltg_model_dir,
                                                      tmp_path):
    """A real (dry) refresh from the image's tree: SQL from queries/, model, worker processes."""
    config = tmp_path / "config.yaml"
    config.write_text(f"""
store: {{type: sqlite, path: "{tmp_path}/{{wiki}}.sqlite"}}
events: {{type: jsonlines, path: "{tmp_path}/events.jsonl"}}
lock: {{type: file, dir: "{tmp_path}/locks"}}
wikis:
  ltgwiki:
    language: ltg
    model: "{ltg_model_dir}"
    source: {{type: dump, path: "{LTG_DUMP}", complete: true, cache_dir: "{tmp_path}/cache"}}
""")
    result = _run_in_image(clean_venv, image_app, "-m", "runner", "--config", str(config),
                           "--log-format=json", "refresh", "--wiki=ltgwiki", "--dry-run",
                           "--workers=2", "--limit=30")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (summary,) = [r for r in records if r.get("message") == "run finished"]
    assert summary["status"] == "ok" and 0 < summary["evaluated"] <= 30, summary
    assert "other" not in summary["outcomes"], (
        f"pages failed in the workers (a dependency missing from requirements.txt?): {summary}")
    status = _run_in_image(clean_venv, image_app, "-m", "runner", "--config", str(config),
                           "status", "--format", "json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["wikis"][0]["wiki"] == "ltgwiki"

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
import time
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
                 "docs/operations.md", ".git/HEAD", "var/sample/enwiki.xml.bz2", ".env",
                 "model/prior_rows/ltgwiki.npz"):
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
    migrate = _run_in_image(clean_venv, image_app, "-m", "runner", "--config", str(config),
                            "migrate")  # the image ships queries/migrations
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
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


def test_image_serves_the_recommendation_service_with_gunicorn(clean_venv, image_app,
                                                               ltg_model_dir, tmp_path):
    """The same image runs the service: gunicorn (from requirements.txt) on the app factory,
    config from ADDLINK_CONFIG, a POST answered by the mounted model."""
    import requests

    from tests.service_support import free_port

    config = tmp_path / "config.yaml"
    config.write_text(f"""
wikis:
  ltgwiki:
    language: ltg
    model: "{ltg_model_dir}"
    source: {{type: dump, path: "{LTG_DUMP}"}}
""")
    port = free_port()
    (tmp_path / "prom").mkdir()
    env = {"PATH": f"{clean_venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(image_app),
           "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8",
           "ADDLINK_CONFIG": str(config), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1"}
    proc = subprocess.Popen(
        [str(clean_venv / "bin" / "python"), "-m", "gunicorn", "-c",
         str(image_app / "service" / "gunicorn_conf.py"), "service.app:create_app()"],
        cwd=image_app.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(150):
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        resp = requests.post(f"http://127.0.0.1:{port}/v1/linkrecommendations/wikipedia/ltg/"
                             "Latgola", json={"wikitext": "Latgola ir Latvejis regions.",
                                              "revid": 1, "pageid": 1}, timeout=30)
        assert resp.status_code == 200 and resp.json()["meta"]["format_version"] == 1
        docs = requests.get(f"http://127.0.0.1:{port}/static/swagger-ui/swagger-ui-bundle.js",
                            timeout=10)
        assert docs.status_code == 200 and len(docs.content) > 100_000  # shipped, no CDN
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- requirements.txt and the code agree ----------------------------------------------------

# Pinned for a program the image runs rather than a module the code imports.
RUN_AS_PROGRAM = {"gunicorn": "the service's server (manifests/base/service-deployment.yaml)"}


def _imported_modules() -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in model/, runner/, service/."""
    import ast

    found: dict[str, set[str]] = {}
    for package in ("model", "runner", "service"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in (
                            "model", "runner", "service", "__future__"):
                        found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_requirements_pin_every_import_and_nothing_unused(clean_venv, image_app):
    """In a venv of requirements.txt alone: every module the code imports (also the lazy
    ones: matplotlib for backtest --plot, tqdm, kazoo, statsd) comes from a pinned
    distribution, not from another's dependencies; every pinned distribution is imported
    (or run as a program)."""
    imported = _imported_modules()
    pinned = [ln.split("#", 1)[0].strip().split("==")[0]
              for ln in REQUIREMENTS.read_text().splitlines() if ln.split("#", 1)[0].strip()]
    script = f"""
import importlib.metadata as m, importlib.util, json, re
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()
by_dist = {{}}
for module, dists in m.packages_distributions().items():
    for d in dists:
        by_dist.setdefault(canon(d), set()).add(module)
provides = {{}}
for name in {pinned!r}:
    mods = set(by_dist.get(canon(name), ()))
    if not mods:  # a metapackage (python-Levenshtein): its own requirements' modules
        for req in m.distribution(name).requires or ():
            mods |= by_dist.get(canon(re.split(r"[ ;<>=!~\\[]", req)[0]), set())
    provides[name] = sorted(mods)
found = {{mod: importlib.util.find_spec(mod) is not None for mod in {sorted(imported)!r}}}
print(json.dumps({{"provides": provides, "found": found}}))
"""
    r = _run_in_image(clean_venv, image_app, "-c", script)
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    missing = [m for m, ok in answer["found"].items() if not ok]
    assert not missing, f"imported but not installed by requirements.txt: {missing}"
    provided = {mod for mods in answer["provides"].values() for mod in mods}
    unpinned = {m: sorted(imported[m]) for m in imported if m not in provided}
    assert not unpinned, f"imported but only pulled in by another package: {unpinned}"
    unused = [d for d, mods in answer["provides"].items()
              if d not in RUN_AS_PROGRAM and not set(mods) & set(imported)]
    assert not unused, f"pinned but never imported: {unused}"
    deployment = (REPO / "manifests" / "base" / "service-deployment.yaml").read_text()
    assert all(program in deployment for program in RUN_AS_PROGRAM)


def test_backtest_plot_runs_in_a_clean_venv(clean_venv, image_app, tmp_path):
    """backtest --plot with the runtime requirements alone (matplotlib was dev-only)."""
    from tests.runner_support import dump_slice

    dump = dump_slice(tmp_path / "slice.xml", 150)
    png = tmp_path / "bt.png"
    r = _run_in_image(clean_venv, image_app, "-m", "model", "backtest", "--dump", dump,
                      "--plot", str(png), "--format", "json")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["wiki"] == "ltgwiki"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

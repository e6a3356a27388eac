"""Model hand-over: publish -> fetch (over real HTTP on loopback) -> refresh, two versions.

The published tree is served by a real ``http.server`` on 127.0.0.1 (GET, and PUT for
publishing to a URL); the runner is the real CLI in a subprocess, reading the model through
the ``<models>/<wiki>`` symlink that ``fetch`` switches.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from model.exitcodes import ExitCode
from model.publish import fetch, publish, versions
from model.train import Settings, train_model
from tests.model_fixtures import LTG_DUMP, OWN_ROWS
from tests.runner_support import dump_slice

REPO = Path(__file__).resolve().parent.parent


class _Handler(SimpleHTTPRequestHandler):
    """Static files, plus PUT (what a publishing endpoint takes) and a switch to fail GETs."""

    failing: set[str] = set()

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        if any(self.path.endswith(name) for name in self.failing):
            self.send_error(503, "unavailable")
            return
        super().do_GET()

    def do_PUT(self) -> None:
        path = Path(self.translate_path(self.path))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "published"
    root.mkdir()
    _Handler.failing = set()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=root))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def second_model(tmp_path_factory) -> Path:
    """ltgwiki again with another seed: a second version with other vectors and classifier."""
    out = tmp_path_factory.mktemp("models2") / "ltgwiki"
    train_model(LTG_DUMP, out, Settings(seed=2, prior=OWN_ROWS))
    return out


def cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def rows_checksums(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        data = [r[0] for r in conn.execute(
            "SELECT gelr_data FROM growthexperiments_link_recommendations "
            "WHERE gelr_data IS NOT NULL")]
    finally:
        conn.close()
    return {json.loads(d)["meta"]["dataset_checksums"]["model"] for d in data}


def test_publish_fetch_refresh_across_two_versions(tmp_path, server, ltg_model, second_model):
    url, root = server
    models = tmp_path / "models"
    # Version 1: published to a URL (PUT), fetched over HTTP, used by a real refresh.
    r = cli("model", "publish", "--model", str(ltg_model), "--to", url)
    assert r.returncode == 0, r.stderr
    v1 = json.loads(r.stdout)["version"]
    published = root / "ltgwiki" / v1
    assert (published / "manifest.json.checksum").read_text().split()[1] == "manifest.json"
    index = json.loads((root / "index.json").read_text())
    assert index["wikis"]["ltgwiki"]["latest"] == v1

    r = cli("model", "fetch", "--from", url, "--wiki", "ltgwiki", "--to", str(models))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["switched"] is True
    assert os.readlink(models / "ltgwiki") == f"ltgwiki.{v1}"
    assert mode(models / f"ltgwiki.{v1}") == 0o755
    assert {mode(p) for p in (models / f"ltgwiki.{v1}").iterdir()} == {0o644}

    config = tmp_path / "config.yaml"
    db = tmp_path / "a.sqlite"
    config.write_text(yaml.safe_dump({
        "runner": {"workers": 1},
        "store": {"type": "sqlite", "path": str(db)},
        "events": {"type": "jsonlines", "path": str(tmp_path / "events.jsonl")},
        "lock": {"type": "file", "dir": str(tmp_path / "locks")},
        "wikis": {"ltgwiki": {
            "language": "ltg", "model": str(models / "ltgwiki"), "pool_target": 2,
            "source": {"type": "dump", "path": dump_slice(tmp_path / "ltg.xml", 300),
                       "cache_dir": str(tmp_path / "cache")},
            "candidates": {"strategy": "allpages"},
            "criteria": {"minimum_link_score": 0.3}}}}))
    r = cli("runner", "--config", str(config), "migrate")
    assert r.returncode == 0, r.stderr
    r = cli("runner", "--config", str(config), "refresh")
    assert r.returncode == 0, r.stderr
    m1 = json.loads((ltg_model / "manifest.json").read_text())["checksums"]["model"]
    assert rows_checksums(db) == {m1}

    # Version 2 to a directory; fetch reuses the files that did not change.
    r = cli("model", "publish", "--model", str(second_model), "--to", str(root))
    assert r.returncode == 0, r.stderr
    v2 = json.loads(r.stdout)["version"]
    assert v2 != v1
    result = fetch(url, "ltgwiki", models)
    unchanged = {f.name for f in second_model.iterdir()} & {f.name for f in ltg_model.iterdir()}
    same = {n for n in unchanged
            if (second_model / n).read_bytes() == (ltg_model / n).read_bytes()}
    assert same, "the redirects and page ids do not depend on the seed"
    assert result["reused"] == len(same) and result["downloaded"] == \
        len(list(second_model.iterdir())) - len(same)
    assert os.readlink(models / "ltgwiki") == f"ltgwiki.{v2}"
    assert versions(models, "ltgwiki") == [v1, v2]  # the previous one kept for a rollback

    r = cli("runner", "--config", str(config), "revalidate", "--wiki", "ltgwiki",
            "--checksum-mismatch")
    assert r.returncode == 0, r.stderr
    r = cli("runner", "--config", str(config), "refresh")
    assert r.returncode == 0, r.stderr
    m2 = json.loads((second_model / "manifest.json").read_text())["checksums"]["model"]
    assert rows_checksums(db) == {m2}

    # Rollback: fetch the old version by name; nothing to download, the link flips back.
    again = fetch(url, "ltgwiki", models, version=v1)
    assert again["downloaded"] == 0 and os.readlink(models / "ltgwiki") == f"ltgwiki.{v1}"


def test_corrupt_or_missing_file_never_switches(tmp_path, server, ltg_model, second_model):
    url, root = server
    models = tmp_path / "models"
    v1 = publish(ltg_model, str(root))["version"]
    fetch(url, "ltgwiki", models)
    v2 = publish(second_model, str(root))["version"]
    before = sorted(p.name for p in models.iterdir())

    # A forged file (its bytes changed after publishing): refused, exit 8, old model kept.
    target = root / "ltgwiki" / v2 / "model.json"
    good = target.read_bytes()
    target.write_bytes(good.replace(b"0", b"1", 1))
    r = cli("model", "fetch", "--from", url, "--wiki", "ltgwiki", "--to", str(models))
    assert r.returncode == ExitCode.MODEL_INVALID, r.stderr
    assert "model.json" in r.stderr and "nothing switched" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert os.readlink(models / "ltgwiki") == f"ltgwiki.{v1}"
    assert sorted(p.name for p in models.iterdir()) == before  # no half-written leftovers

    # A server that fails mid-fetch: exit 6 naming the URL, old model kept.
    target.write_bytes(good)
    _Handler.failing = {"/vectors.npy"}
    r = cli("model", "fetch", "--from", url, "--wiki", "ltgwiki", "--to", str(models))
    assert r.returncode == ExitCode.UNAVAILABLE, r.stderr
    assert "vectors.npy" in r.stderr and "503" in r.stderr
    assert os.readlink(models / "ltgwiki") == f"ltgwiki.{v1}"
    assert sorted(p.name for p in models.iterdir()) == before

    _Handler.failing = set()
    assert fetch(url, "ltgwiki", models)["switched"]
    assert os.readlink(models / "ltgwiki") == f"ltgwiki.{v2}"


def test_training_into_a_symlinked_layout_is_readable(tmp_path, ltg_model):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(ltg_model, models / "ltgwiki.old")
    (models / "ltgwiki").symlink_to("ltgwiki.old")
    old_mask = os.umask(0o077)  # as a training pod with a strict umask
    try:
        train_model(dump_slice(tmp_path / "ltg.xml", 600), models / "ltgwiki",
                    Settings(seed=1, prior=OWN_ROWS))
    finally:
        os.umask(old_mask)
    current = models / os.readlink(models / "ltgwiki")
    assert current.name.startswith("ltgwiki.") and current.name != "ltgwiki.old"
    assert (models / "ltgwiki.old" / "manifest.json").is_file()  # kept for a rollback
    assert mode(current) == 0o755 and {mode(p) for p in current.iterdir()} == {0o644}
    # A plain directory is still replaced whole, and readable too.
    plain = tmp_path / "plain"
    os.umask(0o077)
    try:
        train_model(dump_slice(tmp_path / "ltg2.xml", 600), plain,
                    Settings(seed=1, prior=OWN_ROWS))
    finally:
        os.umask(old_mask)
    assert mode(plain) == 0o755 and {mode(p) for p in plain.iterdir()} == {0o644}


def test_fetch_errors_are_one_line(tmp_path, server):
    url, _ = server
    r = cli("model", "fetch", "--from", url, "--wiki", "nosuchwiki", "--to", str(tmp_path))
    assert r.returncode == ExitCode.UNAVAILABLE
    assert r.stderr.strip() == f"error: {url}: no published model for nosuchwiki"
    r = cli("model", "publish", "--model", str(tmp_path / "none"), "--to", str(tmp_path / "x"))
    assert r.returncode == ExitCode.UNAVAILABLE and "manifest.json missing" in r.stderr


def test_fetch_cronjob_commands_parse_with_the_model_cli():
    """The fetch CronJob's script runs `model fetch` then `model load` with accepted flags."""
    import re
    import shlex

    from model.__main__ import parser

    doc = yaml.safe_load((REPO / "manifests" / "models" / "cronjob-fetch-models.yaml").read_text())
    pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    script = c["args"][0].replace("\\\n", " ")
    declared = {e["name"] for e in c["env"]} | {"wiki"}  # the loop variable
    assert set(re.findall(r"\$\{?(\w+)", script)) <= declared
    commands = [shlex.split(line.strip()) for line in script.splitlines()
                if line.strip().startswith("python -m model")]
    assert [cmd[3] for cmd in commands] == ["fetch", "load"]
    for cmd in commands:
        parser().parse_args([re.sub(r"\$\w+", "x", a) for a in cmd[3:]])
    policy = doc["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]
    assert ExitCode.MODEL_INVALID in policy["values"] and ExitCode.USAGE in policy["values"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert not mounts["models"].get("readOnly") and c["securityContext"]["readOnlyRootFilesystem"]

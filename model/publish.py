"""Hand a trained model from the training side to the pods: publish, fetch, switch.

The reference publishes one file per dataset plus a ``.checksum`` (the file's sha256) and a
scheduled job downloads what changed and checks every checksum before loading. Here:

- ``publish(model_dir, dest)`` writes ``<dest>/<wiki>/<version>/<file>`` and
  ``<file>.checksum`` for every file of the model, then ``<dest>/index.json`` (the wikis, their
  versions and files) last, so a reader never sees an index naming files not yet written.
  ``dest`` is a directory (served by any static web server) or an http(s) URL taking PUT.
- ``fetch(source, wiki, models_dir)`` installs a version as ``<models_dir>/<wiki>.<version>``
  and switches the symlink ``<models_dir>/<wiki>`` to it in one ``rename``: a run that has the
  old model open keeps it, the next run opens the new one, and on any failure (a download
  cut, a checksum that does not match) the old model stays in place, untouched.
- ``install(built, out)`` is how training puts a freshly built directory at ``out``: a plain
  directory is replaced whole; a symlink (the versioned layout) gets a new sibling version
  and is switched, the previous version kept for a rollback.

Files are world-readable (0644, directories 0755): the pods' user is not the one that trained.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlparse

from model.datasets import file_checksum

INDEX = "index.json"
MANIFEST = "manifest.json"
FILE_MODE, DIR_MODE = 0o644, 0o755
KEEP_VERSIONS = 2  # installed versions kept per wiki: the current one and one to roll back to
TIMEOUT = 60.0  # seconds per HTTP request


class PublishError(RuntimeError):
    """A model could not be published or fetched; nothing was switched."""


class ChecksumError(PublishError):
    """A file's sha256 is not the one published with it: the copy is corrupt or forged."""


@dataclass(frozen=True)
class PublishedFile:
    name: str
    sha256: str
    size: int


def model_version(model_dir: Path) -> str:
    """A version id: the dump date and the manifest's own hash (same model, same id)."""
    manifest = json.loads((model_dir / MANIFEST).read_text())
    date = str(manifest.get("dump_date") or "").replace("-", "") or "undated"
    return f"{date}-{file_checksum(model_dir / MANIFEST)[:10]}"


def model_files(model_dir: Path) -> list[PublishedFile]:
    """Every regular file of a model directory, with its sha256, manifest last."""
    names = sorted(p.name for p in model_dir.iterdir() if p.is_file() and p.name != MANIFEST)
    names.append(MANIFEST)
    return [
        PublishedFile(n, file_checksum(model_dir / n), (model_dir / n).stat().st_size)
        for n in names
    ]


def make_readable(path: Path) -> None:
    """0755 for directories, 0644 for files, below and including ``path``."""
    path.chmod(DIR_MODE)
    for root, dirs, files in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), DIR_MODE)
        for f in files:
            os.chmod(os.path.join(root, f), FILE_MODE)


def checksum_line(name: str, sha256: str) -> str:
    """The ``.checksum`` file's content, in ``sha256sum`` format so it can be checked by hand."""
    return f"{sha256}  {name}\n"


def parse_checksum(text: str, name: str) -> str:
    digest = text.split()[0] if text.split() else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ChecksumError(f"{name}.checksum: not a sha256 checksum")
    return digest


# ---------------------------------------------------------------------------- switching


def switch_link(link: Path, target_name: str) -> None:
    """Point the symlink ``link`` at ``target_name`` (a sibling) atomically."""
    tmp = link.with_name(f".{link.name}.switch-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target_name)
    os.replace(tmp, link)


def versions(models_dir: Path, wiki: str) -> list[str]:
    """Installed versions of a wiki (``<wiki>.<version>`` directories), oldest first."""
    found = [p for p in models_dir.glob(f"{wiki}.*") if p.is_dir() and not p.is_symlink()]
    return [p.name[len(wiki) + 1 :] for p in sorted(found, key=lambda p: p.stat().st_mtime)]


def _prune(models_dir: Path, wiki: str, keep: int = KEEP_VERSIONS) -> None:
    current = os.readlink(models_dir / wiki) if (models_dir / wiki).is_symlink() else None
    old = [v for v in versions(models_dir, wiki) if f"{wiki}.{v}" != current]
    for v in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(models_dir / f"{wiki}.{v}", ignore_errors=True)


def install(built: Path, out: Path) -> Path:
    """Put a freshly built model directory at ``out``; the directory it now lives in.

    ``out`` a symlink (``wiki -> wiki.20250101-...``): the model becomes a new sibling version
    and the link is switched to it. Otherwise ``out`` is replaced whole, as a directory.
    """
    make_readable(built)
    if out.is_symlink():
        name = f"{out.name}.{model_version(built)}"
        target = out.with_name(name)
        if target.exists():
            shutil.rmtree(built)  # the very same model is installed already
        else:
            built.rename(target)
        switch_link(out, name)
        _prune(out.parent, out.name)
        return target
    if out.exists():
        shutil.rmtree(out)
    built.rename(out)
    return out


# ---------------------------------------------------------------------------- publishing


def _is_http(location: str) -> bool:
    return urlparse(location).scheme in ("http", "https")


def _local(location: str) -> Path:
    parsed = urlparse(location)
    return Path(parsed.path) if parsed.scheme == "file" else Path(location)


def _put(url: str, data: bytes) -> None:
    import requests

    try:
        resp = requests.put(url, data=data, timeout=TIMEOUT)
    except requests.RequestException as e:
        raise PublishError(f"PUT {url}: {e}") from None
    if resp.status_code not in (200, 201, 204):
        raise PublishError(f"PUT {url}: HTTP {resp.status_code}")


def _get(url: str) -> Iterator[bytes]:
    import requests

    try:
        resp = requests.get(url, stream=True, timeout=TIMEOUT)
    except requests.RequestException as e:
        raise PublishError(f"GET {url}: {e}") from None
    if resp.status_code != 200:
        resp.close()
        raise PublishError(f"GET {url}: HTTP {resp.status_code}")
    with resp:
        try:
            yield from resp.iter_content(1 << 20)
        except requests.RequestException as e:
            raise PublishError(f"GET {url}: {e}") from None


def _read(location: str, name: str) -> bytes:
    if _is_http(location):
        return b"".join(_get(urljoin(location.rstrip("/") + "/", name)))
    path = _local(location) / name
    try:
        return path.read_bytes()
    except OSError as e:
        raise PublishError(f"{path}: {e.strerror}") from None


def _write(location: str, name: str, data: bytes) -> None:
    if _is_http(location):
        _put(urljoin(location.rstrip("/") + "/", name), data)
        return
    path = _local(location) / name
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.chmod(FILE_MODE)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


def read_index(location: str) -> dict:
    """The published index (``{"wikis": {}}`` where nothing was published yet)."""
    try:
        raw = _read(location, INDEX)
    except PublishError:
        if _is_http(location) or not (_local(location) / INDEX).exists():
            return {"wikis": {}}
        raise
    try:
        return json.loads(raw)
    except ValueError:
        raise PublishError(f"{location}/{INDEX}: not JSON") from None


def publish(model_dir: str | Path, dest: str) -> dict:
    """Publish one model: each file, its ``.checksum``, then the index (latest = this one)."""
    model_dir = Path(model_dir).resolve()
    if not (model_dir / MANIFEST).is_file():
        raise PublishError(f"no model at {model_dir} ({MANIFEST} missing)")
    manifest = json.loads((model_dir / MANIFEST).read_text())
    wiki, version = manifest["wiki"], model_version(model_dir)
    files = model_files(model_dir)
    for f in files:
        data = (model_dir / f.name).read_bytes()
        if hashlib.sha256(data).hexdigest() != f.sha256:
            raise PublishError(f"{model_dir / f.name} changed while it was being published")
        _write(dest, f"{wiki}/{version}/{f.name}", data)
        checksum = checksum_line(f.name, f.sha256).encode()
        _write(dest, f"{wiki}/{version}/{f.name}.checksum", checksum)
    index = read_index(dest)
    entry = index["wikis"].setdefault(wiki, {"versions": {}})
    entry["versions"][version] = {
        "published": int(time.time()),
        "dump_date": manifest.get("dump_date", ""),
        "checksums": manifest.get("checksums", {}),
        "files": [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in files],
    }
    entry["latest"] = version
    _write(dest, INDEX, json.dumps(index, indent=1, sort_keys=True).encode())
    return {"wiki": wiki, "version": version, "files": len(files), "to": dest}


# ---------------------------------------------------------------------------- fetching


def _download(url_or_dir: str, name: str, dest: Path) -> str:
    """Copy one published file to ``dest``; its sha256, computed while writing."""
    h = hashlib.sha256()
    with open(dest, "wb") as out:
        if _is_http(url_or_dir):
            for block in _get(urljoin(url_or_dir.rstrip("/") + "/", name)):
                h.update(block)
                out.write(block)
        else:
            src = _local(url_or_dir) / name
            try:
                with open(src, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                        out.write(block)
            except OSError as e:
                raise PublishError(f"{src}: {e.strerror}") from None
    return h.hexdigest()


def _local_file(models_dir: Path, wiki: str, name: str, sha256: str) -> Path | None:
    """An installed copy of a file with this checksum (so only what changed is downloaded)."""
    for v in reversed(versions(models_dir, wiki)):
        candidate = models_dir / f"{wiki}.{v}" / name
        if candidate.is_file() and file_checksum(candidate) == sha256:
            return candidate
    return None


def fetch(source: str, wiki: str, models_dir: str | Path, version: str | None = None) -> dict:
    """Install a published version (default: the latest) and switch ``<models_dir>/<wiki>``.

    Every file is checked against its ``.checksum`` before anything is switched; unchanged
    files are copied from an installed version instead of downloaded. Idempotent: fetching the
    version already installed downloads nothing and switches nothing.
    """
    models_dir = Path(models_dir)
    entry = read_index(source)["wikis"].get(wiki)
    if entry is None:
        raise PublishError(f"{source}: no published model for {wiki}")
    version = version or entry["latest"]
    if version not in entry["versions"]:
        known = ", ".join(sorted(entry["versions"]))
        raise PublishError(f"{source}: {wiki} has no version {version} (published: {known})")
    link, name = models_dir / wiki, f"{wiki}.{version}"
    if link.is_symlink() and os.readlink(link) == name and (models_dir / name).is_dir():
        return {"wiki": wiki, "version": version, "downloaded": 0, "reused": 0, "switched": False}
    if link.exists() and not link.is_symlink():
        raise PublishError(f"{link} is a directory, not a symlink: move it to {name} first")
    models_dir.mkdir(parents=True, exist_ok=True)
    remote = f"{source.rstrip('/')}/{wiki}/{version}"
    work = Path(tempfile.mkdtemp(prefix=f".fetch-{wiki}-", dir=models_dir))
    downloaded = reused = 0
    try:
        for f in entry["versions"][version]["files"]:
            expected = parse_checksum(_read(remote, f"{f['name']}.checksum").decode(), f["name"])
            if expected != f["sha256"]:
                raise ChecksumError(f"{wiki}/{version}/{f['name']}: .checksum differs from index")
            have = _local_file(models_dir, wiki, f["name"], expected)
            if have is not None:
                shutil.copyfile(have, work / f["name"])
                reused += 1
                continue
            got = _download(remote, f["name"], work / f["name"])
            downloaded += 1
            if got != expected:
                raise ChecksumError(
                    f"{wiki}/{version}/{f['name']}: sha256 {got[:12]}... is not the published "
                    f"{expected[:12]}...; nothing switched"
                )
        make_readable(work)
        if (models_dir / name).exists():  # a half-installed copy of a failed earlier fetch
            shutil.rmtree(models_dir / name)
        work.rename(models_dir / name)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    switch_link(link, name)
    _prune(models_dir, wiki)
    return {"wiki": wiki, "version": version, "downloaded": downloaded, "reused": reused,
            "switched": True}

"""Training at scale: a corpus grown from real articles, trained with 1 and 2 workers.

    nice -n 5 .venv/bin/python benchmarks/train_scale.py [--sizes 10000 100000] \
        [--workers 1 2] [--parts 8] [--json docs/train-scale.json]

The corpus is SYNTHETIC, built from a real wiki: ltgwiki (../shared/data, the one complete
wiki, 903 articles, 147 redirects) copied as often as needed. Copy c renames every article and
redirect ("Rēzekne" -> "Rēzekne Qab", letters only so no title looks like a date) and
rewrites every link to an article or redirect to the same copy's title, or, for one link in
ten (seeded), to another copy's, so the copies form one linked wiki rather than islands.
Page and revision ids are offset per copy; text is otherwise the real articles'. Written
as a bz2 XML dump (like the real ones) under --corpus-dir and reused by later runs; with
``--parts N`` (N > 1) it is also cut into N part files at page boundaries (as enwiki publishes
its pages-articles; ``model.dump.write_parts``) and the trainings read the parts.

Each training is ``python -m model train --workers N`` in a child process: its wall time,
its CPU time and peak RSS with its workers (wait4), and the manifest's per-stage timing
(wall, CPU of the main process, CPU of the workers, peak RSS of the main process, peak
private memory of one worker). Before each training, and after the last one of a size,
the host's own 2-process speed-up is measured: the same CPU-bound work (parsing real
articles with mwparserfromhell) done by one process, then twice by two processes at once;
speed-up = 2 * t(one) / t(two at once). Per size, ``speedup`` compares the trainings' wall
times (1 worker / N workers) with the mean of the host speed-ups measured around them (the
probes before, between and after: the host is shared, its load changes under the runs).
The English sample is trained once with 1 worker for per-character costs of long articles.
"""

from __future__ import annotations

import argparse
import bz2
import json
import multiprocessing as mp
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DUMPS = REPO.parent / "shared" / "data" / "dumps"
BASE = DUMPS / "ltgwiki-20170901-pages-articles.xml.bz2"
EN = DUMPS / "enwiki-20160501-sample.xml.bz2"
CROSS_COPY = 0.1  # share of links pointing into another copy
_LINK = re.compile(r"\[\[([^\[\]|#]*)(#[^\[\]|]*)?(\|[^\[\]]*)?\]\]")


def _suffix(copy: int) -> str:
    if copy == 0:
        return ""
    letters = ""
    while copy:
        copy, r = divmod(copy, 26)
        letters = "abcdefghijklmnopqrstuvwxyz"[r] + letters
    return " Q" + letters


def grow(articles: int, out: Path, base: Path = BASE) -> dict:
    """Write a synthetic dump of ``articles`` articles grown from ``base`` (see module doc)."""
    from model.dump import open_file, pages
    from model.text import normalize_title

    head = open_file(base).read(1 << 16).decode("utf-8")
    header = head[: head.index("</siteinfo>") + len("</siteinfo>")] + "\n"
    source = [p for p in pages(base) if p.namespace == 0]
    names = {p.title for p in source}
    real = [p for p in source if not p.redirect]
    copies = -(-articles // len(real))
    rng = random.Random(1)
    written = chars = 0
    tmp = out.with_suffix(".partial")
    with bz2.open(tmp, "wt", encoding="utf-8", compresslevel=6) as f:
        f.write(header)
        for c in range(copies):
            def rewrite(m: re.Match, c: int = c) -> str:
                target = normalize_title(m.group(1))
                if target not in names:
                    return m.group(0)
                to = c if rng.random() >= CROSS_COPY else rng.randrange(copies)
                return f"[[{target}{_suffix(to)}{m.group(2) or ''}{m.group(3) or ''}]]"

            for p in source:
                if not p.redirect:
                    if written >= articles:
                        continue
                    written += 1
                text = _LINK.sub(rewrite, p.text)
                chars += len(text) if not p.redirect else 0
                redirect = (
                    f"<redirect title={quoteattr(p.redirect + _suffix(c))} />"
                    if p.redirect else ""
                )
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(p.timestamp))
                f.write(
                    f"<page><title>{escape(p.title + _suffix(c))}</title><ns>0</ns>"
                    f"<id>{p.page_id + c * 10_000_000}</id>{redirect}<revision>"
                    f"<id>{p.rev_id + c * 10_000_000}</id><timestamp>{stamp}</timestamp>"
                    f'<text xml:space="preserve">{escape(text)}</text></revision></page>\n'
                )
        f.write("</mediawiki>\n")
    tmp.rename(out)
    return {"articles": written, "copies": copies, "chars": chars, "bytes": out.stat().st_size}


# ----------------------------------------------------------------- host speed-up probe


def _probe_work(texts: list[str]) -> None:
    import mwparserfromhell

    for text in texts:
        mwparserfromhell.parse(text)


def host_speedup(texts: list[str]) -> dict:
    """The host's own 2-process speed-up on CPU-bound parsing, measured now."""
    ctx = mp.get_context("fork")
    start = time.monotonic()
    one = ctx.Process(target=_probe_work, args=(texts,))
    one.start()
    one.join()
    t1 = time.monotonic() - start
    start = time.monotonic()
    two = [ctx.Process(target=_probe_work, args=(texts,)) for _ in range(2)]
    for p in two:
        p.start()
    for p in two:
        p.join()
    t2 = time.monotonic() - start
    return {"one_s": round(t1, 2), "two_at_once_s": round(t2, 2), "speedup": round(2 * t1 / t2, 3)}


# ---------------------------------------------------------------------------- training


def train(dump: Path | list[Path], workers: int, wiki: str) -> dict:
    parts = dump if isinstance(dump, list) else [dump]
    with tempfile.TemporaryDirectory(prefix="train-scale-") as work:
        out = Path(work) / "model"
        cmd = [sys.executable, "-m", "model", "train", "--wiki", wiki,
               *(a for part in parts for a in ("--dump", str(part))),
               "--out", str(out), "--workers", str(workers)]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read()
        if proc.returncode:
            raise RuntimeError(f"training failed ({proc.returncode}): {err[-2000:]}")
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return {
        "workers": workers,
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # the largest one process of the run
        "counts": manifest["counts"],
        "checksums": manifest["checksums"],
        "stages": manifest["timing"]["stages"],
    }


def _save(path: Path | None, result: dict) -> None:
    if path:
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--corpus-dir", type=Path,
                    default=Path(tempfile.gettempdir()) / "addlink-scale")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--parts", type=int, default=8,
                    help="train from the corpus cut into this many part files (1: one file)")
    ap.add_argument("--no-english", action="store_true", help="skip the English sample run")
    args = ap.parse_args()
    from model.dump import pages

    args.corpus_dir.mkdir(parents=True, exist_ok=True)
    probe = [p.text for p in pages(BASE) if p.namespace == 0 and not p.redirect][:300]
    result: dict = {
        "command": "nice -n 5 .venv/bin/python benchmarks/train_scale.py " + " ".join(sys.argv[1:]),
        "corpus": "SYNTHETIC: ltgwiki's real articles copied, titles renamed, links rewritten "
                  f"({CROSS_COPY:.0%} across copies); see the module docstring",
        "host": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "runs": [],
    }
    if not args.no_english:
        run = train(EN, 1, "enwiki")
        run["corpus"] = EN.name
        run["chars"] = sum(len(p.text) for p in pages(EN) if p.namespace == 0 and not p.redirect)
        result["english_sample"] = run
        _save(args.json, result)
        print(f"English sample: {run['wall_s']} s wall, {run['cpu_s']} s CPU", flush=True)
    for size in args.sizes:
        dump = args.corpus_dir / f"ltgwiki-SYNTHETIC-{size}.xml.bz2"
        if not dump.exists():
            started = time.monotonic()
            info = grow(size, dump)
            info["seconds"] = round(time.monotonic() - started, 1)
            (dump.with_suffix(".json")).write_text(json.dumps(info))
        info = json.loads(dump.with_suffix(".json").read_text())
        source: Path | list[Path] = dump
        if args.parts > 1:
            from model.dump import write_parts

            where = args.corpus_dir / f"parts-{size}-{args.parts}"
            if not where.exists():
                write_parts(dump, args.parts, where.with_suffix(".partial"))
                where.with_suffix(".partial").rename(where)
            source = sorted(where.iterdir())
            info = {**info, "parts": len(source)}
        probes = []
        runs = []
        for workers in args.workers:
            host = host_speedup(probe)
            probes.append(host["speedup"])
            run = train(source, workers, "ltgwiki")
            run.update({"articles": size, "corpus": info, "host_speedup_before": host,
                        "load_average": os.getloadavg()})
            result["runs"].append(run)
            runs.append(run)
            _save(args.json, result)
            print(f"{size} articles, {workers} workers: {run['wall_s']} s wall, "
                  f"{run['cpu_s']} s CPU, {run['peak_rss_mb']} MB; host 2-process speed-up "
                  f"before {host['speedup']}", flush=True)
        after = host_speedup(probe)
        probes.append(after["speedup"])
        runs[-1]["host_speedup_after"] = after
        if len({r["workers"] for r in runs}) > 1:
            # Fewest workers against most, in whichever order they ran (--workers 2 1
            # runs the same pair the other way round, so a load change hits the other one).
            base = min(runs, key=lambda r: r["workers"])
            top = max(runs, key=lambda r: r["workers"])
            host_mean = sum(probes) / len(probes)
            speedup = base["wall_s"] / top["wall_s"]
            result.setdefault("speedup", []).append({
                "articles": size, "workers": [base["workers"], top["workers"]],
                "order": [r["workers"] for r in runs],
                "wall_speedup": round(speedup, 3),
                "cpu_ratio": round(top["cpu_s"] / base["cpu_s"], 3),
                "host_speedups": probes, "host_speedup_mean": round(host_mean, 3),
                "of_host": round(speedup / host_mean, 3),
            })
            print(f"{size} articles: {base['workers']} -> {top['workers']} workers "
                  f"{speedup:.3f}x, host {host_mean:.3f}x: {speedup / host_mean:.3f} of it",
                  flush=True)
        _save(args.json, result)
    result["host"]["load_average_at_end"] = os.getloadavg()
    _save(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

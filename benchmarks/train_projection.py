"""Project training time and memory to enwiki on 16 cores from measured per-stage costs.

    nice -n 5 .venv/bin/python benchmarks/train_projection.py [--scale docs/train-scale.json] \
        [--svd docs/svd-scale.json] [--json docs/train-projection.json]

Inputs, all measured here except the enwiki figures (stated with their source):
- per-character costs of the per-article stages, split into the main process's share
  (merging: serial) and the workers' (parallel), from the English sample (106 long English
  articles) cut into 4 part files at page boundaries and trained from the parts with
  ``--workers 2`` (run by this script): each part is read and parsed by a worker, as
  enwiki's published parts would be;
- the classifier on the capped training rows (pairs from at most ``max_pair_articles``
  articles) and the constant step (abbreviations, learnt from at most 20 M characters)
  from the largest 1-worker synthetic run of benchmarks/train_scale.py, where the caps are
  reached and every stage's CPU is its own; the anchor dictionary per link from the same
  run (the fold models' anchors too); the training pairs per character from the English
  sample (inside the fold tasks: their CPU less the fold models');
- the SVD of the link graph from docs/svd-scale.json (randomized, 5e6 nodes), linear in
  edges;
- peak RSS from the synthetic runs, extrapolated with the exponent measured between them.

Stage wall time on N cores: a per-article stage takes max(serial, parallel / N) (the main
process merges while the workers work); the parsing is dealt out by part, so with P parts
it takes ceil(P / N) rounds of one part (P = 27, enwiki's numbered parts); the fold models
and their training pairs are one task per fold, as many at once as fit in memory; the six
classifier fits run at once (the refit on every row, a fifth of their CPU, is the longest);
the other stages take their CPU time. The Amdahl bound uses the serial share of the CPU
time (the main process's, and the serial steps'); the projected speed-up is CPU / wall.
enwiki: 7,028,569 articles and 702 words per article
(Wikipedia:Size of Wikipedia, 26 July 2025); wikitext characters per readable word measured
on the English sample; cross-checked against the 24.05 GB bz2 size of all current articles
(same page, October 2024) times the bz2 ratio measured on the English sample.
"""

from __future__ import annotations

import argparse
import bz2
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EN = REPO.parent / "shared" / "data" / "dumps" / "enwiki-20160501-sample.xml.bz2"
ENWIKI_ARTICLES = 7_028_569
ENWIKI_WORDS_PER_ARTICLE = 702
ENWIKI_BZ2_BYTES = 24.05e9
CORES = 16
FOLDS = 5
PARTS = 27  # enwiki's pages-articles parts (the later ones published in pieces: at least)
EN_PARTS = 4
PER_ARTICLE = ("parse", "resolve", "anchors", "link probability", "link graph",
               "trail endings")


def english_sample() -> dict:
    """Train the English sample with 2 workers; its chars, words, links and stage timing."""
    sys.path.insert(0, str(REPO))
    from model import dump as dumps
    from model.wikitext import CANONICAL_NAMESPACES, parse

    site = dumps.site_info(EN)
    namespaces = CANONICAL_NAMESPACES | site.namespaces
    chars = words = 0
    for p in dumps.pages(EN):
        if p.namespace == 0 and not p.redirect:
            chars += len(p.text)
            spans = parse(p.text, (), namespaces).spans
            words += sum(len(s.text.split()) for s in spans if s.scannable)
    with tempfile.TemporaryDirectory() as work:
        parts = dumps.write_parts(EN, EN_PARTS, Path(work) / "parts")
        subprocess.run([sys.executable, "-m", "model", "train", "--wiki", "enwiki",
                        *(a for part in parts for a in ("--dump", str(part))),
                        "--out", f"{work}/m", "--workers", "2"], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        manifest = json.loads(Path(f"{work}/m/manifest.json").read_text())
    with bz2.open(EN) as f:
        raw = len(f.read())
    return {"chars": chars, "words": words, "bz2_ratio": raw / EN.stat().st_size,
            "parts": len(parts), "counts": manifest["counts"],
            "stages": manifest["timing"]["stages"]}


def by_stage(stages: list[dict]) -> dict[str, dict]:
    return {s["stage"]: s for s in stages}


def project(en: dict, scale: dict, svd: list[dict]) -> dict:
    chars_per_word = en["chars"] / en["words"]
    per_article = ENWIKI_WORDS_PER_ARTICLE * chars_per_word
    bz2_bound = ENWIKI_BZ2_BYTES * en["bz2_ratio"] / ENWIKI_ARTICLES
    total_chars = ENWIKI_ARTICLES * per_article
    links = en["counts"]["links"] / en["chars"] * total_chars
    stages = by_stage(en["stages"])
    # The largest run with the most workers (for memory), and the largest with one worker:
    # there every stage's CPU is in the main process and in its own stage (with workers a
    # background step's or a fit's CPU is the workers'), the reference for the serial steps.
    big = max(scale["runs"], key=lambda r: (r["articles"], r["workers"]))
    ref = max(scale["runs"], key=lambda r: (r["articles"], -r["workers"]))
    bstages = by_stage(ref["stages"])
    parallel_fits = by_stage(big["stages"])["classifier"]["worker_cpu_s"] > 0
    out: dict[str, dict] = {}
    for name in PER_ARTICLE:
        s = stages[name]
        serial = s["cpu_s"] / en["chars"] * total_chars
        parallel = s["worker_cpu_s"] / en["chars"] * total_chars
        wall = parallel / CORES
        if name == "parse" and en.get("parts", 1) > 1:  # dealt out by part: whole rounds
            wall *= math.ceil(PARTS / CORES) * CORES / PARTS
        out[name] = {"serial_cpu_s": serial, "parallel_cpu_s": parallel,
                     "wall_s": max(serial, wall)}
    # Training pairs: at most max_pair_articles articles (the cap), of enwiki's average size;
    # computed inside the fold tasks (their CPU less the fold models': fold_models_cpu_s).
    cap = 20_000
    pair_chars = cap * per_article
    if "training pairs" in stages:
        s = stages["training pairs"]
        serial_s, parallel_s = s["cpu_s"], s["worker_cpu_s"]
    else:
        s = stages["fold models and pairs"]
        serial_s = s["cpu_s"]
        parallel_s = s["worker_cpu_s"] - (s["fold_models_cpu_s"] if s["worker_cpu_s"] else 0)
        if not s["worker_cpu_s"]:
            serial_s -= s["fold_models_cpu_s"]
    serial = serial_s / en["chars"] * pair_chars
    parallel = parallel_s / en["chars"] * pair_chars
    out["training pairs"] = {"serial_cpu_s": serial, "parallel_cpu_s": parallel,
                             "wall_s": max(serial, parallel / FOLDS)}
    rows = en["counts"]["training_pairs"] / en["chars"] * pair_chars
    c = bstages["classifier"]
    per_row = (c["cpu_s"] + c["worker_cpu_s"]) / ref["counts"]["training_pairs"]
    if parallel_fits:  # six independent fits in workers; the refit is a fifth of them
        out["classifier"] = {"serial_cpu_s": 0.0, "parallel_cpu_s": rows * per_row,
                             "wall_s": rows * per_row / FOLDS, "rows": rows}
    else:
        out["classifier"] = {"serial_cpu_s": rows * per_row, "parallel_cpu_s": 0.0,
                             "wall_s": rows * per_row, "rows": rows}
    # Punkt: one process, whatever the wiki (20 M characters at most); with workers it runs
    # in the background beside the parsing, but is counted here as serial and on the path.
    a = bstages["abbreviations"]
    abbreviations = a["cpu_s"] + a["worker_cpu_s"]
    out["abbreviations"] = {"serial_cpu_s": abbreviations, "parallel_cpu_s": 0.0,
                            "wall_s": abbreviations}
    per_link = bstages["anchor dictionary"]["cpu_s"] / ref["counts"]["links"]
    out["anchor dictionary"] = {"serial_cpu_s": per_link * links, "parallel_cpu_s": 0.0,
                                "wall_s": per_link * links}
    # SVD: randomized, 5e6 nodes, linear in edges; enwiki's graph has about one edge per
    # distinct link (counted here as every link: an upper bound).
    ref = next(r for r in svd if r["method"] == "randomized" and r["nodes"] == 5_000_000)
    factor = links / ref["edges"]
    svd_cpu = (ref["svd_cpu_s"] + ref["build_s"]) * factor
    svd_rss_gb = ref["peak_rss_mb"] / 1024 * factor
    out["vectors"] = {"serial_cpu_s": svd_cpu, "parallel_cpu_s": 0.0, "wall_s": svd_cpu,
                      "peak_rss_gb": svd_rss_gb}
    # Fold models: FOLDS times (SVD + anchors) in parallel, as many at once as fit in 32 GB.
    fold_cpu = svd_cpu + per_link * links
    at_once = max(1, min(FOLDS, int(32 // svd_rss_gb)))
    out["fold models"] = {"serial_cpu_s": 0.0, "parallel_cpu_s": FOLDS * fold_cpu,
                          "wall_s": math.ceil(FOLDS / at_once) * fold_cpu,
                          "folds_at_once_in_32_gb": at_once}
    serial = sum(v["serial_cpu_s"] for v in out.values())
    parallel = sum(v["parallel_cpu_s"] for v in out.values())
    share = serial / (serial + parallel)
    wall = sum(v["wall_s"] for v in out.values())
    # Peak RSS: the largest one process of the synthetic runs, extrapolated in articles.
    runs = sorted((r for r in scale["runs"] if r["workers"] == big["workers"]),
                  key=lambda r: r["articles"])
    small, large = runs[0], runs[-1]
    exponent = (math.log(large["peak_rss_mb"] / small["peak_rss_mb"])
                / math.log(large["articles"] / small["articles"])) if large is not small else 1.0
    rss_gb = large["peak_rss_mb"] / 1024 * (ENWIKI_ARTICLES / large["articles"]) ** exponent
    return {
        "enwiki": {"articles": ENWIKI_ARTICLES, "chars_per_article": round(per_article),
                   "chars_per_article_upper_bound_from_bz2_size": round(bz2_bound),
                   "chars": total_chars, "links": links,
                   "chars_per_word_english_sample": round(chars_per_word, 2)},
        "stages": {k: {kk: round(vv, 1) if isinstance(vv, float) else vv
                       for kk, vv in v.items()} for k, v in out.items()},
        "cpu_hours": round((serial + parallel) / 3600, 1),
        "serial_share": round(share, 4),
        "amdahl_bound_16": round(1 / (share + (1 - share) / CORES), 2),
        "wall_hours_16": round(wall / 3600, 2),
        "projected_speedup_16": round((serial + parallel) / wall, 2),
        "assumptions": {"cores": CORES, "parts": PARTS, "folds": FOLDS,
                        "english_sample_parts": en.get("parts", 1)},
        "peak_rss": {"exponent": round(exponent, 3), "from": [small["articles"],
                     large["articles"]], "main_process_gb_extrapolated": round(rss_gb, 1),
                     "svd_of_the_whole_graph_gb": round(svd_rss_gb, 1)},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=Path, default=REPO / "docs" / "train-scale.json")
    ap.add_argument("--svd", type=Path, default=REPO / "docs" / "svd-scale.json")
    ap.add_argument("--english", type=Path,
                    help="the English sample's measurement: read if it exists, else made there")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.english and args.english.exists():
        en = json.loads(args.english.read_text())
    else:
        en = english_sample()
        if args.english:
            args.english.write_text(json.dumps(en, indent=2) + "\n")
    result = project(en, json.loads(args.scale.read_text()), json.loads(args.svd.read_text()))
    result["english_sample_workers_2"] = en
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

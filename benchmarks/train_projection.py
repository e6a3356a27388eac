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
- the SVD of the link graph from docs/svd-scale.json (the training's own code, its
  "model" rows, the largest graph measured), linear in edges; with the folds' vectors
  projected on its basis (``--fold-vectors projection``, the default since it is
  Settings'), a fold's vectors from the "model+fold" row, linear in edges;
- peak RSS from the synthetic runs, extrapolated with the exponent measured between them,
  and linearly in articles (the growth per article between them: an upper bound); a fold
  task's memory from the largest run's worker: where the run records its fold model's own
  memory (``fold_model_private_mb``, less its vectors' ``fold_vectors_private_mb``, whose
  blocks are projected from the SVD benchmark), that part linear in links and the rest
  (the training pairs', capped) scaled by enwiki's article size, else all of it linear in
  links.

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
# The link graph's nodes: every article and every title linked (red links too). Taken as the
# articles (red-link targets add to it: ~1.8 KB of SVD blocks and ~1 KB of a fold task's
# blocks per extra node, docs/model.md).
ENWIKI_NODES = ENWIKI_ARTICLES
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


def project(en: dict, scale: dict, svd: list[dict], fold_vectors: str = "projection",
            memory: dict | None = None, dictionaries_from_memory: bool = False) -> dict:
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
    # Memory may come from a later run (``--memory``: the code whose memory is projected),
    # CPU from ``scale`` (a run on a quieter host: CPU times here vary with the load).
    mem_runs = (memory or scale)["runs"]
    # The largest run (of several files: the last file's), and it last among equals below.
    mem_big = max(reversed(mem_runs), key=lambda r: (r["articles"], r["workers"]))
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
    # The SVD as training runs it (svd_scale.py's "model" rows: the link graph's CSR and
    # the range finder on B + B.T as a product), from the largest graph measured: its CPU
    # linear in edges (the sparse products), its memory split as measured — the edges
    # (``edges_mb``) linear in links, the rest (the n x 60 float64 blocks, the QR's
    # workspace, the result) linear in nodes (4.5x from 10^6 to 5x10^6 nodes). enwiki's
    # graph has about one edge per distinct link (counted here as every link: an upper
    # bound). ``svd_rss_gb_linear_in_links`` keeps the older, cruder upper bound.
    model_rows = [r for r in svd if r["method"] in ("model", "model+fold") and "error" not in r]
    largest = max(r["nodes"] for r in model_rows)
    ref = next(r for r in model_rows if r["method"] == "model" and r["nodes"] == largest)
    factor = links / ref["edges"]
    nodes_factor = ENWIKI_NODES / ref["nodes"]
    svd_cpu = ref["svd_cpu_s"] * factor
    edges_mb = ref.get("edges_mb", 0.0)
    svd_rss_gb = ((ref["peak_rss_mb"] - edges_mb) * nodes_factor + edges_mb * factor) / 1024
    svd_rss_gb_linear = ref["peak_rss_mb"] / 1024 * factor
    out["vectors"] = {"serial_cpu_s": svd_cpu, "parallel_cpu_s": 0.0, "wall_s": svd_cpu,
                      "peak_rss_gb": svd_rss_gb}
    # Fold models: per fold, its vectors (Settings.fold_vectors: "projection", the graph
    # less the fold's links on the whole basis, project_fold; "svd", an SVD each) and its
    # anchor dictionary; one task per fold, as many at once as fit in 32 GB beside the main
    # process. A fold task's memory: its vectors' blocks and the private memory a fold task
    # took at the largest synthetic run, both linear in links.
    folds_run = by_stage(mem_big["stages"])["fold models and pairs"]
    projected = fold_vectors == "projection"
    fold_ref = next((r for r in model_rows if r["method"] == "model+fold"
                     and r["nodes"] == largest), None)
    if projected and fold_ref is not None:
        fold_vectors_cpu = fold_ref["fold_cpu_s"] * factor
        # Its own blocks in a forked task: the output and the masked basis (n x 50 doubles
        # each) and the float32 result, n = enwiki's nodes.
        fold_blocks_gb = 2.5 * ENWIKI_NODES * 50 * 8 / 2**30
    else:
        fold_vectors_cpu, fold_blocks_gb = svd_cpu, svd_rss_gb
    fold_mb = folds_run["worker_private_peak_mb"]
    if not fold_mb:  # one worker: the fold tasks ran in the main process, one by one
        fold_mb = max(0.0, folds_run["rss_peak_mb"]
                      - by_stage(mem_big["stages"])["anchor dictionary"]["rss_peak_mb"])
    fold_private_gb = fold_mb / 1024 * links / mem_big["counts"]["links"]
    model_mb = folds_run.get("fold_model_private_mb")
    if model_mb is not None and folds_run["worker_private_peak_mb"]:
        # Measured apart (since the fold dictionaries became arrays): the fold model's own
        # memory, linear in links, less its vectors' where recorded (their blocks are
        # fold_blocks_gb); the rest of the worker's peak is the training pairs' (rows, the
        # walk, the Anchors made), bounded by the pair cap, which the run reached, and
        # scaled by enwiki's longer articles.
        run_chars = mem_big["corpus"]["chars"] / mem_big["corpus"]["articles"]
        rest_mb = max(0.0, fold_mb - model_mb)
        dictionary_mb = model_mb - folds_run.get("fold_vectors_private_mb", 0.0)
        fold_private_gb = (dictionary_mb * links / mem_big["counts"]["links"]
                           + rest_mb * per_article / run_chars) / 1024
    fold_task_gb = fold_blocks_gb + fold_private_gb
    # A fold's anchor dictionary and key filter: the whole model's per link (the same
    # dicts, before the arrays), or, with ``dictionaries_from_memory`` (code whose fold
    # dictionaries are masks over arrays the main process builds once), the fold models'
    # own CPU per link in the --memory run, their projected vectors there included (an
    # upper bound), and the whole model's dictionary from that run too.
    fold_per_link = per_link
    if dictionaries_from_memory:
        mstages = by_stage(mem_big["stages"])
        mem_links = mem_big["counts"]["links"]
        per_link = mstages["anchor dictionary"]["cpu_s"] / mem_links
        out["anchor dictionary"] = {"serial_cpu_s": per_link * links, "parallel_cpu_s": 0.0,
                                    "wall_s": per_link * links}
        fold_per_link = mstages["fold models and pairs"]["fold_models_cpu_s"] / FOLDS / mem_links
    fold_cpu = fold_vectors_cpu + fold_per_link * links
    at_once = max(1, min(FOLDS, int(32 // fold_task_gb)))
    out["fold models"] = {"serial_cpu_s": 0.0, "parallel_cpu_s": FOLDS * fold_cpu,
                          "wall_s": math.ceil(FOLDS / at_once) * fold_cpu,
                          "fold_vectors": fold_vectors,
                          "fold_vectors_cpu_s": fold_vectors_cpu,
                          "fold_task_gb": fold_task_gb,
                          "folds_at_once_in_32_gb": at_once}
    serial = sum(v["serial_cpu_s"] for v in out.values())
    parallel = sum(v["parallel_cpu_s"] for v in out.values())
    share = serial / (serial + parallel)
    wall = sum(v["wall_s"] for v in out.values())
    # Peak RSS: the largest one process of the synthetic runs, extrapolated in articles.
    runs = sorted((r for r in mem_runs if r["workers"] == mem_big["workers"]),
                  key=lambda r: r["articles"])
    small, large = runs[0], runs[-1]
    exponent = (math.log(large["peak_rss_mb"] / small["peak_rss_mb"])
                / math.log(large["articles"] / small["articles"])) if large is not small else 1.0
    rss_gb = large["peak_rss_mb"] / 1024 * (ENWIKI_ARTICLES / large["articles"]) ** exponent
    # And linear in articles from the same two points (what dicts of titles do): the growth
    # per article between them, carried on to enwiki's articles: an upper bound.
    per_article_mb = (large["peak_rss_mb"] - small["peak_rss_mb"]) \
        / (large["articles"] - small["articles"]) if large is not small else 0.0
    linear_gb = (large["peak_rss_mb"]
                 + per_article_mb * (ENWIKI_ARTICLES - large["articles"])) / 1024
    main = [by_stage(r["stages"]) for r in runs]
    main_stage_mb = {name: [m[name]["rss_peak_mb"] for m in main if name in m]
                     for name in main[-1]}
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
                        "english_sample_parts": en.get("parts", 1),
                        "dictionaries_from_memory_run": dictionaries_from_memory},
        "peak_rss": {"exponent": round(exponent, 3), "from": [small["articles"],
                     large["articles"]], "main_process_gb_extrapolated": round(rss_gb, 1),
                     "largest_process_gb_linear_in_articles": round(linear_gb, 1),
                     "main_process_mb_by_stage": main_stage_mb,
                     "svd_of_the_whole_graph_gb": round(svd_rss_gb, 1),
                     "svd_rss_gb_linear_in_links": round(svd_rss_gb_linear, 1),
                     "fold_task_gb": round(fold_task_gb, 1)},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=Path, default=REPO / "docs" / "train-scale.json")
    ap.add_argument("--svd", type=Path, default=REPO / "docs" / "svd-scale.json")
    ap.add_argument("--english", type=Path,
                    help="the English sample's measurement: read if it exists, else made there")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--memory", type=Path, nargs="+",
                    help="train_scale.py JSONs to take the peak RSS and the fold tasks' "
                         "memory from, their runs joined (the largest: the last file's; "
                         "default: --scale)")
    ap.add_argument("--dictionaries-from-memory", action="store_true",
                    help="the anchor dictionary's and the fold models' CPU per link from the "
                         "--memory run (code whose fold dictionaries differ from --scale's)")
    ap.add_argument("--fold-vectors", choices=["projection", "svd"], default="projection",
                    help="how the fold tasks get their vectors (Settings.fold_vectors)")
    args = ap.parse_args()
    if args.english and args.english.exists():
        en = json.loads(args.english.read_text())
    else:
        en = english_sample()
        if args.english:
            args.english.write_text(json.dumps(en, indent=2) + "\n")
    result = project(en, json.loads(args.scale.read_text()), json.loads(args.svd.read_text()),
                     args.fold_vectors,
                     {"runs": [r for path in args.memory
                               for r in json.loads(path.read_text())["runs"]]}
                     if args.memory else None,
                     args.dictionaries_from_memory)
    result["english_sample_workers_2"] = en
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

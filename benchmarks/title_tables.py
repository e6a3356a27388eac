"""Memory and lookup time of the training's title tables: dicts of strings vs ``TitleTable``.

    .venv/bin/python benchmarks/title_tables.py [--dumps DIR] [--only WIKI] [--json OUT]

Per shared dump: its article titles (title -> page id) and redirects (title -> target), as
training holds them for its whole run (``model.train.Corpus``). Memory is what Python's
allocation tracer sees retained after building each from strings decoded inside the traced
window (a dict keeps its string objects; a table keeps only its buffers), in bytes per
entry. Lookups: the same probes (every third title, and as many misses) against the dict
and the table, alternating, best of 3, in ns per lookup. ``enwiki link targets`` is the
English sample's distinct link targets (real English titles, their real lengths) as keys
with made-up page ids, the closest thing here to enwiki's title table; the projection
multiplies its bytes per entry by enwiki's 7.03 M articles and an assumed 0.83 redirects
per article (stated in docs/model.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backtest_all import chosen_dumps, dump_options  # noqa: E402 - benchmarks/, sys.path[0]

from model.dump import pages  # noqa: E402
from model.tables import TitleTable  # noqa: E402
from model.wikitext import parse  # noqa: E402

ENWIKI_ARTICLES = 7_028_569
REDIRECTS_PER_ARTICLE = 0.83


def retained(build) -> tuple[object, int]:
    gc.collect()
    tracemalloc.start()
    made = build()
    gc.collect()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return made, size


def lookup_ns(table, probes: list[str]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for p in probes:
            p in table  # noqa: B015 - the lookup is what is timed
        best = min(best, time.perf_counter() - start)
    return best / len(probes) * 1e9


def measure(name: str, pairs: list[tuple[bytes, object]], kind: str) -> dict:
    def decoded():  # the strings made inside the traced window
        return ((k.decode("utf-8"), v.decode("utf-8") if kind == "str" else v) for k, v in pairs)

    plain, dict_bytes = retained(lambda: dict(decoded()))
    table, table_bytes = retained(lambda: TitleTable(kind, decoded()))
    keys = list(plain)
    assert list(table.items()) == list(plain.items())  # type: ignore[attr-defined]
    probes = keys[::3] + [k + " \u2060" for k in keys[1::3]]
    ns_dict, ns_table = [], []
    for _ in range(2):  # alternating
        ns_dict.append(lookup_ns(plain, probes))
        ns_table.append(lookup_ns(table, probes))
    n = len(keys)
    return {
        "set": name,
        "kind": kind,
        "entries": n,
        "key_utf8_bytes_mean": round(sum(len(k) for k, _ in pairs) / max(1, len(pairs)), 1),
        "dict_bytes_per_entry": round(dict_bytes / n, 1),
        "table_bytes_per_entry": round(table_bytes / n, 1),
        "ratio": round(table_bytes / dict_bytes, 3),
        "lookup_ns_dict": round(min(ns_dict), 1),
        "lookup_ns_table": round(min(ns_table), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    dump_options(p)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    rows = []
    targets: dict[str, int] = {}
    for dump in chosen_dumps(args):
        wiki = dump.name.split("-")[0]
        articles, redirects = [], []
        for page in pages(dump):
            if page.namespace != 0:
                continue
            if page.redirect:
                redirects.append((page.title.encode(), page.redirect.encode()))
            else:
                articles.append((page.title.encode(), page.page_id))
                if wiki == "enwiki":
                    for target in _link_targets(page.text):
                        targets.setdefault(target, len(targets) + 1)
        rows.append(measure(f"{wiki} articles", articles, "int"))
        if redirects:
            rows.append(measure(f"{wiki} redirects", redirects, "str"))
    if targets:
        rows.append(measure("enwiki link targets", [(t.encode(), i) for t, i in targets.items()],
                            "int"))
        as_redirects = [(t.encode(), t.upper().encode()) for t in targets]
        rows.append(measure("enwiki link targets as redirects", as_redirects, "str"))
    print("| set | entries | key bytes (mean) | dict B/entry | table B/entry | table/dict "
          "| lookup ns dict | lookup ns table |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['entries']:,} | {r['key_utf8_bytes_mean']} | "
              f"{r['dict_bytes_per_entry']} | {r['table_bytes_per_entry']} | {r['ratio']} | "
              f"{r['lookup_ns_dict']} | {r['lookup_ns_table']} |")
    out: dict = {"command": " ".join(sys.argv), "rows": rows}
    by = {r["set"]: r for r in rows}
    if "enwiki link targets" in by:
        redirects = round(ENWIKI_ARTICLES * REDIRECTS_PER_ARTICLE)
        art, red = by["enwiki link targets"], by["enwiki link targets as redirects"]
        projection = {
            "articles": ENWIKI_ARTICLES,
            "redirects": redirects,
            "dict_gb": round((ENWIKI_ARTICLES * art["dict_bytes_per_entry"]
                              + redirects * red["dict_bytes_per_entry"]) / 1e9, 2),
            "table_gb": round((ENWIKI_ARTICLES * art["table_bytes_per_entry"]
                               + redirects * red["table_bytes_per_entry"]) / 1e9, 2),
        }
        out["enwiki_projection"] = projection
        print(f"\nenwiki ({ENWIKI_ARTICLES:,} articles, {redirects:,} redirects assumed): "
              f"dicts {projection['dict_gb']} GB, tables {projection['table_gb']} GB")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


def _link_targets(text: str) -> list[str]:
    """The article-namespace link targets of a page's wikitext, title-cased as MediaWiki."""
    return [link.target for link in parse(text).links if link.target] if text else []


if __name__ == "__main__":
    main()

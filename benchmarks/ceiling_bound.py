"""The candidate ceiling's data bound: which removed links any anchor dictionary could reach.

    .venv/bin/python benchmarks/ceiling_bound.py [--dumps DIR] [--only WIKI] [--json OUT]

Same split, model and probes as ``model.backtest`` (seed 1, full features: the train half
builds the model, each test article's probe sentence is stripped and scored with a trace).
Every removed gold (normalized anchor, target) pair is put in one class:

- ``reachable``: the generator produces it (``model.backtest.ceiling_losses``): the
  backtest's ceiling;
- ``known_target_anchor_unknown``: lost because the anchor text is unknown, but the target
  is known to the train half (an article of the train half, the target of a redirect, or the
  target of any train-half link): a better anchor source (inflection, paraphrase, alias)
  could reach it;
- ``known_target_other``: the anchor is known and the target too, lost later (not among the
  anchor's top candidates, mention not generated, a skip rule);
- ``target_title_only``: nothing in the train half names the target, but it is the title of
  a test-half article, and the model's title anchors list every article of the dump;
- ``target_unknown``: the target is unknown to the train half entirely (on a slice, usually
  an article beyond the file's first 100k lines): no anchor-dictionary method can produce it.

``bound`` = reachable + both known-target classes; ``bound_with_titles`` adds
``target_title_only``. On a complete wiki (ltgwiki) the model drops targets that are not
articles of the dump by design (red links: SPEC §2 anchors point to an existing article;
``model.train._target_ok``), so ``bound_suggestable`` leaves out the known targets that are
not articles (``known_target_not_article``); on a slice it equals ``bound`` (a target beyond
the file is kept). Per dump it says whether the quality issue's goal, the ceiling +30 % over
the c57fa34 baseline, is attainable below the bound, and lists 10 sample (anchor, target)
pairs of the known-target/unknown-anchor kind (seeded by hash, so stable).
``anchor_unknown_kinds`` describes those, first match wins: ``digits_or_date`` (SPEC §2
drops such anchors), ``linked_but_dropped`` (the text was a link anchor in the train half
but the dictionary dropped it: SPEC §2's link probability, a filtered target such as a red
link on a complete wiki), ``own_title`` (the anchor is the
target's own title, never linked as such; on a slice a target beyond the file has no title
anchor, titles come from the dump's articles), ``shares_prefix`` (a word of the anchor
shares its first 4 characters with a word of the title: inflected forms, mostly, a crude
mark) and ``other`` (other words for the target: paraphrase, alias, abbreviation).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.backtest import ceiling_losses, in_test_half, probes, rendered  # noqa: E402
from model.datasets import open_model  # noqa: E402
from model.recommend import Traced, score  # noqa: E402
from model.text import normalize  # noqa: E402
from model.train import (  # noqa: E402
    _DATE_LIKE,
    _NO_LETTER,
    Settings,
    build_model,
    extract,
    title_key,  # noqa: E402
)

DEFAULT_DUMPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "dumps"
# The candidate ceiling of main at c57fa34 (docs/model.md "Baseline"), full features, seed 1.
BASELINE = {
    "bnwiki": 0.325,
    "elwiki": 0.402,
    "enwiki": 0.191,
    "jawiki": 0.433,
    "ltgwiki": 0.221,
    "mrwiki": 0.437,
    "ukwiki": 0.449,
}
GOAL = 1.3  # the goal: the ceiling up by >= 30 % relative
CLASSES = (
    "reachable",
    "known_target_anchor_unknown",
    "known_target_other",
    "target_title_only",
    "target_unknown",
)
SAMPLES = 10


def _prefix_shared(anchor: str, target: str) -> bool:
    """Whether a word of the anchor and a word of the target's title share 4 leading
    characters (or are equal when shorter): a crude mark of an inflected form."""
    words = normalize(anchor).split()
    title = title_key(target).split()
    for a in words:
        for t in title:
            n = min(4, len(a), len(t))
            if n and (a == t or (n == 4 and a[:4] == t[:4])):
                return True
    return False


KINDS = ("digits_or_date", "linked_but_dropped", "own_title", "shares_prefix", "other")


def _kind(key: str, target: str, linked_keys: set[str]) -> str:
    if _NO_LETTER.match(key) or _DATE_LIKE.match(key):
        return "digits_or_date"  # SPEC §2 drops such anchors, linked or not
    if key in linked_keys:
        return "linked_but_dropped"
    if key == title_key(target):
        return "own_title"
    return "shares_prefix" if _prefix_shared(key, target) else "other"


def measure(corpus, settings: Settings) -> dict:
    test = {t for t in corpus.articles if in_test_half(t, settings.seed)}
    train = set(corpus.articles) - test
    known = set(train) | set(corpus.redirects.values())
    linked_keys: set[str] = set()  # every normalized anchor text linked in the train half
    for record in corpus.records(train):
        known.update(t for t, _ in record["l"])
        linked_keys.update(normalize(a) for _, a in record["l"])
    classes: Counter = Counter()
    kinds: Counter = Counter()  # the known-target, unknown-anchor pairs, described
    not_article = 0  # known-target pairs whose target is no article of the dump
    pairs: list[tuple[str, str]] = []  # known target, unknown anchor: (anchor text, target)
    with tempfile.TemporaryDirectory(prefix="addlink-bound-") as work:
        manifest = build_model(corpus, Path(work) / "model", settings, include=train)
        model = open_model(Path(work) / "model")
        for record, text, gold, context in probes(corpus, test, model.trail):
            spans = next(x for x in record["x"] if x[1])[1]  # the probe's links, as probes()
            raw = {(rendered(text, a, b, model.trail), t): text[a:b] for a, b, t in spans}
            trace: list[Traced] = []
            score(model, text, title=record["t"], extra_links=context, trace=trace)
            for shown, target in sorted(gold):
                key = gold[(shown, target)]  # the link text's key: what the anchor must be
                (loss,) = ceiling_losses(model, {(shown, target): key}, trace, text)
                if loss == "reachable":
                    kind = "reachable"
                elif target in known:
                    not_article += target not in corpus.articles
                    kind = (
                        "known_target_anchor_unknown"
                        if loss == "anchor_unknown"
                        else "known_target_other"
                    )
                    if loss == "anchor_unknown":
                        kind_of = _kind(key, target, linked_keys)
                        kinds[kind_of] += 1
                        pairs.append((
                            raw.get((shown, target), key), target, target in corpus.articles,
                            kind_of,
                        ))
                elif target in corpus.articles:
                    kind = "target_title_only"
                else:
                    kind = "target_unknown"
                classes[kind] += 1
        model.close()
    total = sum(classes.values())
    share = {k: round(classes[k] / total, 4) if total else 0.0 for k in CLASSES}
    bound = share["reachable"] + share["known_target_anchor_unknown"] + share[
        "known_target_other"
    ]
    wiki = manifest["wiki"]
    base = BASELINE.get(wiki)
    goal = round(base * GOAL, 4) if base is not None else None

    def rank(pair: tuple[str, str, bool, str]) -> bytes:
        return hashlib.sha256(f"{settings.seed}:{pair[0]}|{pair[1]}".encode()).digest()

    red = round(not_article / total, 4) if total else 0.0
    suggestable = bound - red if manifest["complete"] else bound
    return {
        "wiki": wiki,
        "seed": settings.seed,
        "features": settings.features,
        "complete": manifest["complete"],
        "train_articles": len(train),
        "gold_links": total,
        "counts": {k: classes[k] for k in CLASSES},
        "shares": share,
        "ceiling": share["reachable"],
        "bound": round(bound, 4),
        "bound_with_titles": round(bound + share["target_title_only"], 4),
        "known_target_not_article": red,
        "bound_suggestable": round(suggestable, 4),
        "baseline_ceiling": base,
        "goal_ceiling": goal,
        "goal_below_bound": None if goal is None else goal <= bound,
        "goal_below_suggestable_bound": None if goal is None else goal <= suggestable,
        "goal_reached": None if goal is None else share["reachable"] >= goal,
        "anchor_unknown_kinds": {k: kinds[k] for k in KINDS},
        # [anchor text as written, target, whether the target is an article of the dump,
        # its kind (anchor_unknown_kinds)]
        "samples": [list(p) for p in sorted(set(pairs), key=rank)[:SAMPLES]],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dumps", type=Path, default=DEFAULT_DUMPS)
    p.add_argument("--only", action="append", help="wiki name prefix, e.g. ltgwiki")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    out = []
    print(
        "| wiki | gold links | ceiling (reachable) | known target, anchor unknown | "
        "known target, lost later | test-half title only | target unknown | bound | "
        "bound with titles | bound, suggestable targets | baseline x 1.3 | "
        "attainable below the bound (suggestable)? |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    for dump in sorted(args.dumps.glob("*.xml*")):
        if args.only and not any(dump.name.startswith(o) for o in args.only):
            continue
        with tempfile.TemporaryDirectory(prefix="addlink-bound-") as work:
            r = measure(extract(dump, Path(work)), Settings())
        out.append(r)
        s = r["shares"]
        goal = "-" if r["goal_ceiling"] is None else f"{r['goal_ceiling']:.3f}"
        verdict = "-" if r["goal_below_bound"] is None else "{} ({})".format(
            *("yes" if v else "no" for v in (r["goal_below_bound"],
                                             r["goal_below_suggestable_bound"]))
        )
        print(
            f"| {r['wiki']} | {r['gold_links']} | {s['reachable']:.3f} | "
            f"{s['known_target_anchor_unknown']:.3f} | {s['known_target_other']:.3f} | "
            f"{s['target_title_only']:.3f} | {s['target_unknown']:.3f} | {r['bound']:.3f} | "
            f"{r['bound_with_titles']:.3f} | {r['bound_suggestable']:.3f} | {goal} | "
            f"{verdict} |",
            flush=True,
        )
    for r in out:
        print(f"\n{r['wiki']} (known target, anchor unknown: {r['anchor_unknown_kinds']}):")
        for anchor, target, article, kind in r["samples"]:
            print(f"  {anchor!r} -> {target!r} ({kind}" + (")" if article else ", not an article)"))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

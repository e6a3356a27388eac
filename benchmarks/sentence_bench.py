"""Sentence splitters compared on every shared dump: which one keeps abbreviations whole.

    .venv/bin/python benchmarks/sentence_bench.py [--json OUT] [--samples FILE]

For each dump the articles are split 50/50 by a hash of the title (as the backtest does).
Every splitter runs over the test half's reading text (top-level text, links replaced by
their anchor text, any other markup a line break). Figures per splitter:

- ``cut``: links of the test half whose anchor has a period followed by a space inside
  ("St. Petersburg", "U.S. Army", "м. Київ") and which a sentence boundary cuts in two:
  such a link can never be suggested nor learnt from. ``of`` is how many there are.
- ``boundaries``: sentence boundaries per 10,000 characters (a splitter that never splits
  would keep every anchor; boundaries must not collapse).
- ``ms_per_mb``: time to split a megabyte of text.

Splitters: ``today`` (model/text.py's rule before this change: every ". " ends a sentence),
``mwtokenizer`` (its ``sentence_tokenize``, with its per-wiki abbreviation lists),
``punkt`` (nltk's Punkt trained unsupervised on the train half's text only), ``model``
(model/text.py ``sentences`` with the abbreviations Punkt learnt) and ``model+list`` (the
same with mwtokenizer's list for the wiki added, as the model uses them).
Line breaks end a sentence for every splitter. ``--samples`` writes boundaries that today's
rule makes and the chosen splitter does not, for checking by eye.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DUMPS = REPO.parent / "shared" / "data" / "dumps"


def reading_text(wikitext: str) -> tuple[str, list[tuple[int, int]]]:
    """Top-level text with links replaced by their anchors; other markup: a line break."""
    import mwparserfromhell
    from mwparserfromhell.nodes import Text, Wikilink

    from model.wikitext import link_target

    parts, links, pos = [], [], 0
    for node in mwparserfromhell.parse(wikitext).nodes:
        if isinstance(node, Text):
            piece = str(node)
        elif isinstance(node, Wikilink) and link_target(str(node.title)) is not None:
            piece = node.text.strip_code() if node.text is not None else str(node.title)
            links.append((pos, pos + len(piece)))
        else:
            piece = "\n"
        parts.append(piece)
        pos += len(piece)
    return "".join(parts), links


def _lines(text: str):
    pos = 0
    for line in text.split("\n"):
        yield pos, line
        pos += len(line) + 1


def mwtokenizer_spans(tokenizer, text: str) -> list[tuple[int, int]]:
    out = []
    for start, line in _lines(text):
        pos = start
        for sentence in tokenizer.sentence_tokenize(line):
            out.append((pos, pos + len(sentence)))
            pos += len(sentence)
    return out


def punkt_spans(punkt, text: str) -> list[tuple[int, int]]:
    out = []
    for start, line in _lines(text):
        out.extend((start + a, start + b) for a, b in punkt.span_tokenize(line))
    return out


def ends(spans: list[tuple[int, int]]) -> set[int]:
    return {b for _, b in spans[:-1]}


def measure(dump: Path, rng: random.Random) -> tuple[dict, list[str]]:
    from mwtokenizer import Tokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    from model.dump import pages, site_info
    from model.text import learn_abbreviations, listed_abbreviations, probe_sentences, sentences

    language = site_info(dump).language
    train, test = [], []
    for page in pages(dump):
        if page.namespace or page.redirect:
            continue
        half = hashlib.sha256(f"1:{page.title}".encode()).digest()[0] % 2
        (test if half else train).append(reading_text(page.text))
    t0 = time.perf_counter()
    abbreviations, punkt_params = learn_abbreviations((t for t, _ in train), with_params=True)
    learn_s = time.perf_counter() - t0
    both = abbreviations | listed_abbreviations(language)
    punkt = PunktSentenceTokenizer(punkt_params)
    tokenizer = Tokenizer(language_code=language)
    splitters = {
        "today": probe_sentences,
        "mwtokenizer": lambda t: mwtokenizer_spans(tokenizer, t),
        "punkt": lambda t: punkt_spans(punkt, t),
        "model": lambda t: sentences(t, abbreviations),
        "model+list": lambda t: sentences(t, both),
    }
    result: dict = {"language": language, "train_articles": len(train),
                    "abbreviations_learnt": len(abbreviations), "learn_s": round(learn_s, 2)}
    chars = sum(len(t) for t, _ in test)
    cut_sets: dict[str, set[int]] = {}
    samples = []
    for name, split in splitters.items():
        cut = total = boundaries = 0
        elapsed = 0.0
        kept: list[set[int]] = []
        for text, links in test:
            t0 = time.perf_counter()
            spans = split(text)
            elapsed += time.perf_counter() - t0
            b = ends(spans)
            kept.append(b)
            boundaries += len(b)
            for x, y in links:
                if ". " in text[x:y]:
                    total += 1
                    cut += any(x < e < y for e in b)
        cut_sets[name] = kept
        result[name] = {"cut": cut, "of": total, "boundaries": round(boundaries / chars * 1e4, 2),
                        "ms_per_mb": round(elapsed / chars * 1e9, 1)}
    for (text, _), today, mine in zip(test, cut_sets["today"], cut_sets["model+list"], strict=True):
        for e in sorted(today - mine):
            samples.append(text[max(0, e - 40) : e].replace("\n", " ") + " ‖ "
                           + text[e : e + 30].replace("\n", " "))
    return result, rng.sample(samples, min(15, len(samples)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--json", type=Path)
    p.add_argument("--samples", type=Path)
    args = p.parse_args()
    rng = random.Random(1)
    results, lines = {}, []
    for dump in sorted(DUMPS.glob("*.xml.*")):
        result, sample = measure(dump, rng)
        results[dump.name.split("-")[0]] = result
        lines += [f"## {dump.name}", *sample, ""]
        print(json.dumps({dump.name.split("-")[0]: result}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    if args.samples:
        args.samples.write_text("\n".join(lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Do two versions of the recommender give the same output on every page of a dump?

    nice -n 5 .venv/bin/python benchmarks/recommend_identity.py --before-code /tmp/main \
        --before-model MODEL_A --after-model MODEL_B --dump DUMP [--limit N] [--json OUT]

``--before-code`` is a directory holding another version's ``model/`` package (for example
``git archive main model | tar -x -C /tmp/main``); the after side is this checkout. Each side
runs in a child process of its own and, for every article of the dump, records ``score()``
(every scored mention: offsets, text, key, target, score, candidates, trail, stem, span),
its trace (every generated mention with an anchor and the skip rule that dropped it), the
parsed page, and ``recommend()`` at the default threshold and at threshold 0 with no limit;
the two records must be equal page by page (``meta.application_version`` aside: it is a
hash of the code). The two model directories may differ where the code's model format
does (a Bloom filter hash scheme) but should be trained from the same dump and seed.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def record(code: Path, model_dir: Path, dump: Path, limit: int | None, out: Path) -> None:
    """In a child process whose ``model`` package is ``code``'s: every page's outputs."""
    sys.path.insert(0, str(code))
    import importlib

    rec = importlib.import_module("model.recommend")
    from model import open_model
    from model.dump import pages

    model = open_model(model_dir)
    articles = [p for p in pages(dump) if p.namespace == 0 and not p.redirect][:limit]
    rows = []
    for p in articles:
        trace: list = []
        page, scored = rec.score(model, p.text, title=p.title, trace=trace)
        fields = [
            (s.start, s.end, s.text, s.key, s.length, s.target, s.score, s.targets, s.trail,
             s.stem, s.span.offset, s.span.text, s.span.section) for s in scored
        ]
        outputs = [
            rec.recommend(model, p.text, title=p.title),
            rec.recommend(model, p.text, title=p.title, threshold=0.0, max_recommendations=10**6),
        ]
        for o in outputs:
            o["meta"].pop("application_version")
        pages_ = ([tuple(vars(x).values()) for x in page.spans],
                  [tuple(vars(x).values()) for x in page.links])
        rows.append((p.title, pages_, fields, [tuple(vars(t).values()) for t in trace], outputs))
    out.write_bytes(pickle.dumps(rows))


def run(code: Path, model_dir: Path, dump: Path, limit: int | None, out: Path) -> None:
    subprocess.run(
        [sys.executable, __file__, "--child", str(code), str(model_dir), str(dump),
         str(limit or 0), str(out)],
        check=True,
        cwd=tempfile.gettempdir(),  # so that neither side imports this checkout by accident
    )


def compare(before: list, after: list) -> dict:
    """Per-page verdict; the first differing part of the first differing pages."""
    parts = ("page", "scored", "trace", "recommend")
    differing = []
    for a, b in zip(before, after, strict=True):
        for name, x, y in zip(parts, a[1:], b[1:], strict=True):
            if x != y:
                differing.append({"title": a[0], "part": name})
                break
    return {
        "pages": len(before),
        "differing": len(differing),
        "first_differences": differing[:10],
        "scored": sum(len(r[2]) for r in before),
        "links_at_default": sum(r[4][0]["links_count"] for r in before),
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        code, model_dir, dump, limit, out = sys.argv[2:7]
        record(Path(code), Path(model_dir), Path(dump), int(limit) or None, Path(out))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--before-code", type=Path, required=True)
    p.add_argument("--before-model", type=Path, required=True)
    p.add_argument("--after-model", type=Path, required=True)
    p.add_argument("--dump", type=Path, required=True)
    p.add_argument("--limit", type=int, help="the first N articles only")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sides = []
        for code, model_dir in ((args.before_code, args.before_model), (REPO, args.after_model)):
            out = Path(tmp) / f"{len(sides)}.pickle"
            run(code.resolve(), model_dir.resolve(), args.dump.resolve(), args.limit, out)
            sides.append(pickle.loads(out.read_bytes()))
    verdict = {"dump": args.dump.name, **compare(*sides)}
    print(json.dumps(verdict))
    if args.json:
        args.json.write_text(json.dumps(verdict, indent=2) + "\n")
    return 0 if verdict["differing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

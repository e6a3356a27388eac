"""``status``: pool size per wiki, rows by kind, outbox backlog, the last refresh, the last
command of any kind and reviewers' feedback per model version (acceptance, rejection and skip
rates, runner/quality.py).

The last refresh and the last command are apart because they answer different questions:
"is the pool kept?" (the CronJob's refresh, with its stop reason and outcomes) and "what
touched this wiki last?" (a backfill or revalidate by hand is no refresh)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from runner import quality, topics
from runner.config import Config
from runner.store import open_store


def collect(cfg: Config, wikis: list[str] | None = None) -> list[dict]:
    out = []
    for name in wikis or sorted(cfg.wikis):
        w = cfg.wiki(name)
        store = open_store(cfg.store, name)
        try:
            rows = store.row_counts()
            out.append({
                "wiki": name, "pool_size": store.pool_size(), "target": w.pool_target,
                "rows_with_data": rows["with_data"], "null_rows": rows["null"],
                "outbox": store.outbox_counts(),
                "last_refresh": store.last_run("refresh"), "last_command": store.last_run(),
                "last_success": store.last_success("refresh"),
                "feedback": quality.feedback(store),
                "topics": topics.status_rows(w, store, cfg.runner.user_agent),
            })
        finally:
            store.close()
    return out


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def table(rows: list[dict]) -> str:
    head = ("wiki", "pool", "target", "null rows", "outbox", "dead letters", "last refresh",
            "status", "stop", "last command", "refresh outcomes")
    lines = [head]
    for r in rows:
        run = r["last_refresh"] or {}
        last = r["last_command"] or {}
        outcomes = ", ".join(f"{k}={v}" for k, v in sorted((run.get("outcomes") or {}).items(),
                                                           key=lambda kv: -kv[1]))
        command = (f"{last['command']} {_when(last.get('finished') or last.get('started'))} "
                   f"{last.get('status') or 'running'}") if last else "-"
        lines.append((r["wiki"], str(r["pool_size"]), str(r["target"]), str(r["null_rows"]),
                      str(r["outbox"]["pending"]), str(r["outbox"]["failed"]),
                      _when(run.get("finished") or run.get("started")),
                      (run.get("status") or "running") if run else "-",
                      run.get("stop_reason") or "-", command, outcomes or "-"))
    widths = [max(len(x[i]) for x in lines) for i in range(len(head) - 1)]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(x[:-1], widths, strict=True))
                     + "  " + x[-1] for x in lines)
    return text + topics.table(rows) + feedback_table(rows)


def feedback_table(rows: list[dict]) -> str:
    """Reviewers' answers per wiki and model version ("" when nobody reviewed anything)."""
    lines = [(r["wiki"], version, str(f["total"]), f"{f['acceptance_rate']:.1%}",
              f"{f['rejection_rate']:.1%}", f"{f['skip_rate']:.1%}")
             for r in rows for version, f in (r.get("feedback") or {}).items()]
    if not lines:
        return ""
    lines.insert(0, ("wiki", "model version", "reviewed", "accepted", "rejected", "skipped"))
    widths = [max(len(x[i]) for x in lines) for i in range(len(lines[0]))]
    return "\n\nfeedback (growthexperiments_link_submissions)\n" + "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)).rstrip() for x in lines)


def summary(results: list[dict]) -> str:
    """End-of-run summary for a terminal."""
    lines = []
    for r in results:
        lines.append(f"{r['wiki']}: {r['status']} ({r['stop_reason']}) in {r['seconds']:.1f} s"
                     f" - pool {r['pool_before']} -> {r['pool_after']} (target {r['target']}),"
                     f" {r['evaluated']} evaluated, {r['upkeep_removed']} removed by upkeep,"
                     f" events sent {r['events_sent']}, failed {r['events_failed']},"
                     f" pending {r['events_pending']}" + (" [dry run]" if r["dry_run"] else ""))
        for k, v in sorted(r["outcomes"].items(), key=lambda kv: -kv[1]):
            lines.append(f"    {k:<45} {v}")
        if r["error"]:
            lines.append(f"    error: {r['error']}")
    lines.append(f"finished {_when(time.time())}")
    return "\n".join(lines)

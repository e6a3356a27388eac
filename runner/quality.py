"""Growth's quality signal: how reviewers answered the suggestions, per model version.

Read from ``growthexperiments_link_submissions`` (SPEC §3: 'a' accepted, 'r' rejected,
's' skipped), shown by ``status`` and exported as ``addlink_feedback_*`` after each run. A
model whose acceptance rate drops, or whose rejection rate climbs, after a rollout is the
first sign a new model is worse on real pages, which the backtest alone cannot show.
"""

from __future__ import annotations

from runner.store import Store

FEEDBACK = {"a": "accepted", "r": "rejected", "s": "skipped"}
RATE_NAMES = {"accepted": "acceptance_rate", "rejected": "rejection_rate",
              "skipped": "skip_rate"}


def feedback(store: Store) -> dict[str, dict[str, float]]:
    """model version -> {accepted, rejected, skipped, total: counts; *_rate: shares of total}.

    Unknown feedback letters are ignored; versions with no reviewed suggestion are absent.
    """
    out: dict[str, dict[str, float]] = {}
    for (version, letter), n in sorted(store.feedback_counts().items()):
        name = FEEDBACK.get(letter)
        if name is None:
            continue
        row = out.setdefault(version, {k: 0 for k in FEEDBACK.values()})
        row[name] += n
    for row in out.values():
        total = sum(row[k] for k in FEEDBACK.values())
        row["total"] = total
        for name, rate in RATE_NAMES.items():
            row[rate] = round(row[name] / total, 4) if total else 0.0
    return out

"""Recommendations waiting for their lookups, sent in groups.

A recommendation with links needs three answers from the wiki before it can be decided:
whether its link targets exist (red links are pruned), the page's latest revision (SPEC §5:
it must still be the one recommended for) and, for per-topic pools counted by the search
index, the page's topics there. Asked per page that is two or three requests each; asked for
a group of up to ``LOOKUP_BATCH`` pages it is one each per group. A group is sent when it is
full, when its first page has waited ``LOOKUP_WAIT`` seconds, or when the caller has nothing
else to wait for, so a slow trickle of recommendations is not held back to fill a group.

The queue only keeps the groups; who answers (``lookup``), on which threads (``submit``) and
how long a stopping run waits (``wait``) are the caller's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

from runner import search
from runner.records import PageData

LOOKUP_BATCH, LOOKUP_WAIT = 25, 0.05

# One waiting recommendation: the page and the recommendation (format_version 1 JSON).
Waiting = tuple[PageData, dict]
# What a group's lookup answers: targets by title, latest revision by page id, topics by page id.
Answers = tuple[dict, dict, dict]


class LookupQueue:
    """Groups of recommendations in lookup, completed in the order their answers arrive."""

    def __init__(self, lookup: Callable[[list[Waiting]], Answers],
                 submit: Callable[..., Future], wait: Callable[[Future], Any],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lookup, self._submit, self._wait, self._clock = lookup, submit, wait, clock
        self._waiting: list[Waiting] = []  # the next group
        self._since = 0.0  # when its first page arrived
        self._sent: dict[Future, list[Waiting]] = {}  # groups in lookup

    def __bool__(self) -> bool:
        """Anything waiting or in lookup."""
        return bool(self._waiting or self._sent)

    def add(self, page: PageData, recommendation: dict) -> None:
        if not self._waiting:
            self._since = self._clock()
        self._waiting.append((page, recommendation))
        if len(self._waiting) >= LOOKUP_BATCH:
            self._send()

    def answered(self, block: bool) -> Iterator[tuple[PageData, dict, Answers]]:
        """Each page of the groups whose lookups are done (of every group if ``block``),
        with its group's answers; a group still filling is sent first where it is due."""
        if self._waiting and (block or self._clock() - self._since >= LOOKUP_WAIT):
            self._send()
        for fut in list(self._sent):
            if block or fut.done():
                group = self._sent.pop(fut)
                answers = self._wait(fut)
                for page, rec in group:
                    yield page, rec, answers

    def _send(self) -> None:
        group, self._waiting = self._waiting, []
        self._sent[self._submit(self._lookup, group)] = group


def lookup(source, group: list[Waiting], needed_links: int, plan=None) -> Answers:
    """(An I/O thread) The existence of a group's link targets and, for the pages that can
    still succeed (at least ``needed_links`` links), their latest revision and, where the
    per-topic pools are counted by the search index, their topics there."""
    targets = source.targets({x["link_target"] for _, rec in group for x in rec["links"]})
    needed = [page.page_id for page, rec in group if len(rec["links"]) >= needed_links]
    latest = source.latest_revisions(needed) if needed else {}
    found = search.topics_of(source, needed, plan.targets) \
        if needed and plan and plan.counted_by == "search" else {}
    return targets, latest, found

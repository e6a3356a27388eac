"""The lookup queue: recommendations asked about in groups, each page answered once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from runner.lookups import LOOKUP_BATCH, LOOKUP_WAIT, LookupQueue
from runner.records import PageData


def _page(i: int) -> PageData:
    return PageData(page_id=i, title=f"Page {i}", rev_id=1000 + i, timestamp=0.0,
                    content_model="wikitext", wikitext="")


class Answerer:
    """A lookup that records its groups and answers each page with its own revision, on
    the executor's threads; ``hold`` keeps the answers back until it is set."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.hold = threading.Event()
        self.hold.set()

    def __call__(self, group):
        self.groups.append([page.page_id for page, _ in group])
        self.hold.wait(10)
        return {}, {page.page_id: page.rev_id for page, _ in group}, {}


def test_full_groups_go_at_once_the_rest_when_due_or_asked():
    now = [0.0]
    answer = Answerer()
    with ThreadPoolExecutor(2) as io:
        queue = LookupQueue(answer, io.submit, lambda fut: fut.result(), clock=lambda: now[0])
        assert not queue
        for i in range(1, 2 * LOOKUP_BATCH + 11):
            queue.add(_page(i), {"links": [{"link_target": "X"}]})
        assert queue
        done = list(queue.answered(block=True))
        # Two full groups were sent as they filled; the last ten only when the caller blocked.
        assert [len(g) for g in answer.groups] == [LOOKUP_BATCH, LOOKUP_BATCH, 10]
        assert sorted(page.page_id for page, _, _ in done) == list(range(1, 2 * LOOKUP_BATCH + 11))
        assert all(answers[1][page.page_id] == page.rev_id for page, _, answers in done)
        assert not queue

        queue.add(_page(100), {"links": []})
        assert list(queue.answered(block=False)) == []  # not due: nothing sent
        assert len(answer.groups) == 3
        now[0] += LOOKUP_WAIT
        answer.hold.clear()
        assert list(queue.answered(block=False)) == []  # sent now, its answer not back yet
        assert queue
        deadline = time.monotonic() + 5  # the lookup thread records its group first
        while len(answer.groups) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert answer.groups[-1] == [100]
        answer.hold.set()
        (page, _, answers), = queue.answered(block=True)
        assert page.page_id == 100 and answers[1] == {100: 1100}
        assert not queue


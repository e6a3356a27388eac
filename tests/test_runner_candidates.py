"""The select stage's allpages walk: where it resumes (the walk itself: test_runner_job)."""

from __future__ import annotations

from runner.candidates import resume_after


def test_the_walk_resumes_after_the_last_page_of_its_leading_finished_run():
    assert resume_after([5, 7, 9, 11], {5, 7, 11}) == 7  # 9 still in flight at the stop
    assert resume_after([5, 0, 9], {5, 9}) == 5  # a title taken without its id
    assert resume_after([5, 7], set()) == 0
    assert resume_after([], set()) == 0

"""The tail split: workflow tasks read from a stored history, and operations cut at them."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from bench.tail import TimedOperation, WorkflowTask, split, workflow_tasks

HISTORIES = Path(__file__).parent.parent / "histories"


def _history(name: str) -> WorkflowHistory:
    path = HISTORIES / name
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_every_workflow_task_of_a_stored_run_is_read_in_order() -> None:
    history = _history("2026-12-06T0721_full_lifecycle_run1.json")
    scheduled = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
    ]

    tasks = workflow_tasks(history.events)

    assert len(tasks) == len(scheduled)
    assert [t.first_of_run for t in tasks] == [True] + [False] * (len(tasks) - 1)
    for task in tasks:
        assert task.started is not None and task.completed is not None
        assert task.scheduled <= task.started <= task.completed
    # The audit batch's timer schedules tasks of its own; updates' tasks follow no timer.
    assert any(t.after_timer for t in tasks)
    assert not all(t.after_timer for t in tasks[1:])


def _task(
    scheduled: float,
    started: float,
    completed: float,
    *,
    sticky: bool = True,
    first: bool = False,
    after_timer: bool = False,
) -> WorkflowTask:
    return WorkflowTask(scheduled, started, completed, sticky, first, after_timer)


def _operation(started: float, ended: float) -> TimedOperation:
    return TimedOperation("sdk", "check", "s-1", started, ended)


def test_an_operation_splits_into_four_parts_at_its_task() -> None:
    cut = split(_operation(10.000, 10.050), [_task(10.004, 10.006, 10.046)])

    assert cut is not None
    assert cut.before == pytest.approx(4.0)
    assert cut.waiting == pytest.approx(2.0)
    assert cut.in_worker == pytest.approx(40.0)
    assert cut.answer == pytest.approx(4.0)
    assert cut.cause == "in_worker"


def test_a_task_scheduled_for_the_flush_timer_before_the_call_is_named() -> None:
    tasks = [_task(9.990, 10.020, 10.060, after_timer=True)]

    cut = split(_operation(10.000, 10.065), tasks)

    assert cut is not None and cut.cause == "queued behind a flush"
    assert cut.before == pytest.approx(-10.0)


def test_a_new_runs_first_task_or_one_off_the_sticky_queue_is_a_new_run() -> None:
    first = split(_operation(10.0, 10.1), [_task(10.01, 10.02, 10.09, first=True)])
    cache_miss = split(_operation(10.0, 10.1), [_task(10.01, 10.02, 10.09, sticky=False)])

    assert first is not None and first.cause == "new run"
    assert cache_miss is not None and cache_miss.cause == "new run"


def test_the_last_of_several_tasks_carries_the_answer() -> None:
    tasks = [_task(9.99, 10.00, 10.03), _task(10.031, 10.032, 10.040)]

    cut = split(_operation(10.0, 10.045), tasks)

    assert cut is not None and cut.cause == "behind another task"
    assert cut.before == pytest.approx(31.0)


def test_an_operation_no_task_answered_has_no_split() -> None:
    assert split(_operation(10.0, 10.1), [_task(9.0, 9.1, 9.2)]) is None

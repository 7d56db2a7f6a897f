"""Where the open load's slowest operations spent their time, read from workflow histories.

`python -m bench.tail` runs the bench's open load on a private stack (the product
through REST, its workflow through the SDK, and the bare engine; `--sides` picks),
notes each operation's wall-clock start and end with its session, then reads the
histories of each side's slowest operations (`--slowest`, 2 % by default) and of a
sample of ordinary ones. Every session operation is answered by the workflow task
that carries it, so its time splits at that task's events:

- before: from the call until the server scheduled the carrying task (the client, the
  API, the server taking the request; negative when the task was already scheduled);
- waiting: from scheduled until a worker took the task (a busy worker polls late);
- in the worker: from taken until completed (the workflow code, a local activity
  inside the task, the worker's queue of activations and its pauses);
- answer: from completed until the caller had the answer.

Each slow operation also gets one cause: `queued behind a flush` (its task was
scheduled for the audit batch's timer before the call), `new run` (the first task of
a run or a task off the sticky queue: a start, a continue-as-new or a cache miss),
`behind another task` (its task was scheduled only after an earlier one completed),
or the largest of the four parts. Server clocks and the caller's are the same
machine's here.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType, TaskQueueKind
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench.bare import BareDriver
from bench.drivers import Driver, RestDriver, SdkDriver
from bench.http import HttpClient
from bench.open_load import open_load
from bench.report import cpu_line
from bench.results import BARE_SIDE, PRODUCT_SIDE, SDK_SIDE
from bench.stack import bare_engine_worker, start_stack
from bench.stats import percentile
from devstack.answers import Answer, passing_answers
from engine.client import connect

BARE_QUEUE = "bench-tail-bare"
# The four parts of an operation's time, in the order they happen.
PARTS = ("before", "waiting", "in_worker", "answer")
# Seconds a completion may sit outside the caller's clock window (rounding of event times).
CLOCK_SLACK = 0.002


@dataclass(frozen=True)
class WorkflowTask:
    """One workflow task of a run, its times in seconds since the epoch."""

    scheduled: float
    started: float | None
    completed: float | None
    sticky: bool
    first_of_run: bool
    after_timer: bool


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


def workflow_tasks(events: Iterable[HistoryEvent]) -> list[WorkflowTask]:
    """The workflow tasks of one run's history, in the order they were scheduled."""
    scheduled: dict[int, dict[str, Any]] = {}
    timer_fired = False
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_TIMER_FIRED:
            timer_fired = True
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            queue = event.workflow_task_scheduled_event_attributes.task_queue
            scheduled[event.event_id] = {
                "scheduled": _seconds(event),
                "started": None,
                "completed": None,
                "sticky": queue.kind == TaskQueueKind.TASK_QUEUE_KIND_STICKY,
                "first_of_run": not scheduled,
                "after_timer": timer_fired,
            }
            timer_fired = False
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            task_id = event.workflow_task_started_event_attributes.scheduled_event_id
            scheduled[task_id]["started"] = _seconds(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            task_id = event.workflow_task_completed_event_attributes.scheduled_event_id
            scheduled[task_id]["completed"] = _seconds(event)
    return [WorkflowTask(**fields) for fields in scheduled.values()]


@dataclass(frozen=True)
class TimedOperation:
    """One session operation as its caller saw it, in seconds since the epoch."""

    side: str
    kind: str
    session_id: str
    started: float
    ended: float

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


@dataclass(frozen=True)
class Split:
    """An operation's time in milliseconds, cut at the workflow task that carried it."""

    before: float
    waiting: float
    in_worker: float
    answer: float
    cause: str

    def part(self, name: str) -> float:
        value: float = getattr(self, name)
        return value


def split(operation: TimedOperation, tasks: list[WorkflowTask]) -> Split | None:
    """Cuts `operation` at the last task of its session completed while it was under way.

    `tasks` are every run's tasks of the session; None when no task completed within
    the operation (it was answered without one).
    """
    within = [
        task
        for task in tasks
        if task.completed is not None
        and task.started is not None
        and operation.started - CLOCK_SLACK <= task.completed <= operation.ended + CLOCK_SLACK
    ]
    if not within:
        return None
    carrying = max(within, key=lambda task: task.completed or 0.0)
    assert carrying.started is not None and carrying.completed is not None
    parts = {
        "before": carrying.scheduled - operation.started,
        "waiting": carrying.started - carrying.scheduled,
        "in_worker": carrying.completed - carrying.started,
        "answer": operation.ended - carrying.completed,
    }
    parts_ms = {name: seconds * 1000 for name, seconds in parts.items()}
    if carrying.after_timer and carrying.scheduled < operation.started:
        cause = "queued behind a flush"
    elif carrying.first_of_run or not carrying.sticky:
        cause = "new run"
    elif len(within) > 1:
        cause = "behind another task"
    else:
        cause = max(PARTS, key=lambda name: parts_ms[name])
    return Split(cause=cause, **parts_ms)


async def session_tasks(client: Client, session_id: str) -> list[WorkflowTask]:
    """Every run's workflow tasks of one session, ordered by when they were scheduled."""
    tasks: list[WorkflowTask] = []
    async for execution in client.list_workflows(f"WorkflowId = '{session_id}'"):
        handle = client.get_workflow_handle(session_id, run_id=execution.run_id)
        history = await handle.fetch_history()
        tasks += workflow_tasks(history.events)
    return sorted(tasks, key=lambda task: task.scheduled)


@dataclass(eq=False)
class NotingDriver:
    """A driver that notes every operation's start, end and session."""

    inner: Driver
    side: str
    noted: list[TimedOperation]

    async def _note(self, kind: str, session_id: str, call: Any) -> None:
        started = time.time()
        await call
        self.noted.append(TimedOperation(self.side, kind, session_id, started, time.time()))

    async def start(self) -> str:
        started = time.time()
        session_id = await self.inner.start()
        self.noted.append(TimedOperation(self.side, "start", session_id, started, time.time()))
        return session_id

    async def check(self, session_id: str, answer: Answer) -> None:
        await self._note("check", session_id, self.inner.check(session_id, answer))

    async def pause(self, session_id: str) -> None:
        await self._note("pause", session_id, self.inner.pause(session_id))

    async def resume(self, session_id: str) -> None:
        await self._note("resume", session_id, self.inner.resume(session_id))

    async def abort(self, session_id: str) -> None:
        await self._note("abort", session_id, self.inner.abort(session_id))

    async def complete(self, session_id: str) -> None:
        await self._note("complete", session_id, self.inner.complete(session_id))


@dataclass
class SideSplits:
    """The splits of one side's slowest and ordinary operations."""

    operations: int
    p50_ms: float
    p99_ms: float
    slowest: list[tuple[TimedOperation, Split]] = field(default_factory=list)
    ordinary: list[Split] = field(default_factory=list)

    def report(self, name: str) -> list[str]:
        """Lines of text: causes of the slowest, and the parts' medians of both groups."""
        lines = [
            f"{name}: {self.operations} operations, p50 {self.p50_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms; {len(self.slowest)} slowest split"
        ]
        if self.slowest:
            fastest_slow = min(op.ms for op, _ in self.slowest)
            lines.append(f"  slowest from {fastest_slow:.1f} ms; their causes:")
            causes = Counter(s.cause for _, s in self.slowest)
            for cause, count in causes.most_common():
                lines.append(f"    {count:4d}  {cause}")
        for label, splits in (
            ("slowest", [s for _, s in self.slowest]),
            ("ordinary", self.ordinary),
        ):
            if splits:
                medians = ", ".join(
                    f"{part} {statistics.median(s.part(part) for s in splits):.1f}"
                    for part in PARTS
                )
                lines.append(f"  {label} medians (ms): {medians}")
        return lines


async def split_side(
    client: Client, operations: list[TimedOperation], slowest_share: float, ordinary: int
) -> SideSplits:
    """Splits the slowest `slowest_share` of `operations` and `ordinary` of the rest."""
    ranked = sorted(operations, key=lambda op: op.ms)
    cut = int(len(ranked) * (1 - slowest_share))
    rest = ranked[: int(len(ranked) * 0.9)]
    sample = random.sample(rest, min(ordinary, len(rest)))
    tasks: dict[str, list[WorkflowTask]] = {}
    latencies = [op.ms for op in ranked]
    result = SideSplits(len(ranked), percentile(latencies, 50), percentile(latencies, 99))
    for group, operation in [("slow", op) for op in ranked[cut:]] + [("ok", op) for op in sample]:
        if operation.session_id not in tasks:
            tasks[operation.session_id] = await session_tasks(client, operation.session_id)
        found = split(operation, tasks[operation.session_id])
        if found is None:
            continue
        if group == "slow":
            result.slowest.append((operation, found))
        else:
            result.ordinary.append(found)
    return result


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.tail",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sides",
        default=f"{PRODUCT_SIDE},{SDK_SIDE},{BARE_SIDE}",
        help=f"comma-separated, of {PRODUCT_SIDE}, {SDK_SIDE}, {BARE_SIDE} (all three)",
    )
    parser.add_argument("--seconds", type=float, default=90.0, help="per side (90)")
    parser.add_argument("--rounds", type=int, default=1, help="A-B-B-A rounds (1)")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds of unrecorded load per side first (5)"
    )
    parser.add_argument("--workers", type=int, default=100, help="virtual workers per side (100)")
    parser.add_argument("--rate", type=float, default=25.0, help="operations/s offered (25)")
    parser.add_argument("--slowest", type=float, default=2.0, help="percent split per side (2)")
    parser.add_argument("--ordinary", type=int, default=40, help="ordinary ones split (40)")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    """Runs the open load, then prints each side's split."""
    args = _parse_args(argv)
    names = args.sides.split(",")
    noted: list[TimedOperation] = []
    with tempfile.TemporaryDirectory() as data_dir:
        stack, published = await start_stack(Path(data_dir), None, None)
        try:
            client = await connect(stack.settings)
            sop = published.to_snapshot()
            async with HttpClient(stack.api_url, 2 * args.workers) as http:

                def driver(side: str, user: str) -> Driver:
                    if side == PRODUCT_SIDE:
                        return RestDriver(http, stack.token(user))
                    if side == SDK_SIDE:
                        return SdkDriver(client, stack.settings.temporal_task_queue, sop, user)
                    return BareDriver(client, BARE_QUEUE, sop, user)

                users = [f"tw-{i:03d}" for i in range(args.workers)]
                sides: dict[str, list[Driver]] = {
                    side: [NotingDriver(driver(side, user), side, noted) for user in users]
                    for side in names
                }
                async with bare_engine_worker(stack, BARE_QUEUE) as cpu:
                    results = await open_load(
                        sides,
                        passing_answers(sop),
                        args.seconds,
                        args.workers / args.rate,
                        args.warmup,
                        cpu,
                        lambda line: print(line, flush=True),
                        rounds=args.rounds,
                    )
            for side in names:
                recorded = [
                    op
                    for op in noted
                    if op.side == side
                    and any(a <= op.started < b for a, b in results[side].windows)
                ]
                splits = await split_side(client, recorded, args.slowest / 100, args.ordinary)
                print("\n".join(splits.report(side)), flush=True)
                print(cpu_line("the stack's processes", results[side].cpu_ms_per_op()), flush=True)
        finally:
            stack.stop()


if __name__ == "__main__":
    asyncio.run(main())

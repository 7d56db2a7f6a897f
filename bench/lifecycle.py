"""Lifecycle load: virtual workers running realistic sessions back to back."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bench.drivers import Driver
from bench.stats import OpStats, Recorder
from devstack.answers import Answer

# One session in ABORT_EVERY is aborted after its pause; virtual worker i starts
# counting at i, so that aborts happen from the first sessions of a short phase on.
ABORT_EVERY = 5
T = TypeVar("T")
# Times (or merely awaits) one operation of a kind: "start", "check", "pause", ...
Record = Callable[[str, Awaitable[T]], Awaitable[T]]


class _TimeUp(Exception):
    """The phase's deadline passed before the next operation."""


def session_length(answers: list[Answer]) -> int:
    """Operations in a session that is not aborted: start, checks, pause, resume, complete."""
    return len(answers) + 4


def aborts(number: int, finished: int) -> bool:
    """Whether virtual worker `number` aborts the session it starts after `finished` ones."""
    return (number + finished) % ABORT_EVERY == ABORT_EVERY - 1


async def run_session(
    driver: Driver,
    answers: list[Answer],
    aborted: bool,
    gate: Callable[[], Awaitable[None]],
    record: Record[object],
    open_sessions: set[tuple[Driver, str]],
) -> None:
    """One session: start, half the checks, pause, then abort, or resume, the rest, complete.

    `gate` runs before each operation (think time, deadlines); the session is in
    `open_sessions` from its start until it ends.
    """
    half = len(answers) // 2
    await gate()
    session_id = str(await record("start", driver.start()))
    opened = (driver, session_id)
    open_sessions.add(opened)
    for answer in answers[:half]:
        await gate()
        await record("check", driver.check(session_id, answer))
    await gate()
    await record("pause", driver.pause(session_id))
    await gate()
    if aborted:
        await record("abort", driver.abort(session_id))
    else:
        await record("resume", driver.resume(session_id))
        for answer in answers[half:]:
            await gate()
            await record("check", driver.check(session_id, answer))
        await gate()
        await record("complete", driver.complete(session_id))
    open_sessions.discard(opened)


async def abort_open(open_sessions: set[tuple[Driver, str]]) -> None:
    """Aborts, untimed, the sessions a load left open."""
    await asyncio.gather(
        *(driver.abort(session_id) for driver, session_id in open_sessions),
        return_exceptions=True,
    )
    open_sessions.clear()


@dataclass
class Side:
    """One side of a comparison (facade, SDK, bare engine), accumulated over its load phases."""

    recorder: Recorder = field(default_factory=Recorder)
    seconds: float = 0.0
    sessions_finished: int = 0
    cpu_seconds: Counter[str] = field(default_factory=Counter)
    # Wall-clock (`time.time()`) start and end of each window that recorded this side.
    windows: list[tuple[float, float]] = field(default_factory=list)

    def stats(self) -> dict[str, OpStats]:
        """Per-operation stats over every phase of this side."""
        return self.recorder.summary(self.seconds)

    def cpu_ms_per_op(self) -> dict[str, float]:
        """Milliseconds of CPU each process spent per successful operation."""
        ops = sum(len(samples) for samples in self.recorder.samples_ms.values())
        # A side whose every operation failed reports no figure rather than stopping the run.
        return {
            name: seconds * 1000 / ops if ops else math.nan
            for name, seconds in self.cpu_seconds.items()
        }

    def add_cpu(self, before: dict[str, float], after: dict[str, float]) -> None:
        """Adds the CPU each process used between two readings."""
        self.cpu_seconds.update({k: v - before[k] for k, v in after.items()})

    async def run(
        self,
        drivers: list[Driver],
        answers: list[Answer],
        seconds: float,
        cpu: Callable[[], dict[str, float]],
    ) -> None:
        """Runs one virtual worker per driver for `seconds`, then aborts what they left open.

        `cpu` reads each process's CPU time; what the phase used is added up.
        """
        open_sessions: set[tuple[Driver, str]] = set()
        cpu_before = cpu()
        started = time.monotonic()
        finished = await asyncio.gather(
            *(
                _virtual_worker(driver, i, answers, self.recorder, started + seconds, open_sessions)
                for i, driver in enumerate(drivers)
            )
        )
        self.seconds += time.monotonic() - started
        self.add_cpu(cpu_before, cpu())
        self.sessions_finished += sum(finished)
        await abort_open(open_sessions)


async def _virtual_worker(
    driver: Driver,
    number: int,
    answers: list[Answer],
    recorder: Recorder,
    deadline: float,
    open_sessions: set[tuple[Driver, str]],
) -> int:
    """Virtual worker `number` runs sessions until the deadline; returns how many it finished."""
    finished = 0

    async def gate() -> None:
        if time.monotonic() >= deadline:
            raise _TimeUp

    while time.monotonic() < deadline:
        try:
            await run_session(
                driver, answers, aborts(number, finished), gate, recorder.timed, open_sessions
            )
            finished += 1
        except _TimeUp:
            return finished
        except Exception:
            # Recorded by the recorder; the session stays open and a new one starts.
            await asyncio.sleep(0.1)
    return finished


async def side_by_side(
    first: list[Driver],
    second: list[Driver],
    answers: list[Answer],
    seconds: float,
    cpu: Callable[[], dict[str, float]],
    say: Callable[[str], None] = lambda _line: None,
    rounds: int = 1,
) -> tuple[Side, Side]:
    """Runs two sides for `seconds` each in A-B-B-A windows, so drift hits both alike;
    `rounds` rounds of shorter windows, each round in the other order than the one before."""
    a, b = Side(), Side()
    window = seconds / (2 * rounds)
    order = ((a, first), (b, second), (b, second), (a, first))
    for number in range(rounds):
        for side, drivers in order if number % 2 == 0 else order[::-1]:
            say(f"  {'first' if side is a else 'second':<6} {window:.0f} s ...")
            await side.run(drivers, answers, window, cpu)
    return a, b

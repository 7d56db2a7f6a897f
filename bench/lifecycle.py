"""Lifecycle load: virtual workers running realistic sessions back to back."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.drivers import Driver
from bench.stats import OpStats, Recorder
from devstack.answers import Answer

# One session in ABORT_EVERY is aborted after its pause; virtual worker i starts
# counting at i, so that aborts happen from the first sessions of a short phase on.
ABORT_EVERY = 5


class _TimeUp(Exception):
    """The phase's deadline passed before the next operation."""


@dataclass
class Side:
    """One side of the comparison (facade or SDK), accumulated over its load phases."""

    recorder: Recorder = field(default_factory=Recorder)
    seconds: float = 0.0
    sessions_finished: int = 0
    cpu_seconds: Counter[str] = field(default_factory=Counter)

    def stats(self) -> dict[str, OpStats]:
        """Per-operation stats over every phase of this side."""
        return self.recorder.summary(self.seconds)

    def cpu_ms_per_op(self) -> dict[str, float]:
        """Milliseconds of CPU each process spent per successful operation."""
        ops = sum(len(samples) for samples in self.recorder.samples_ms.values())
        return {name: seconds * 1000 / ops for name, seconds in self.cpu_seconds.items()}

    async def run(
        self,
        drivers: list[Driver],
        answers: list[Answer],
        seconds: float,
        cpu: Callable[[], dict[str, float]],
        think_seconds: float = 0.0,
    ) -> None:
        """Runs one virtual worker per driver for `seconds`, then aborts what they left open.

        `cpu` reads each process's CPU time; what the phase used is added up. With
        `think_seconds`, each worker thinks that long on average before each operation:
        an open load, as a plant's workers make it, instead of back to back.
        """
        left_open: list[tuple[Driver, str]] = []
        cpu_before = cpu()
        started = time.monotonic()
        finished = await asyncio.gather(
            *(
                _virtual_worker(
                    driver, i, answers, self.recorder, started + seconds, left_open, think_seconds
                )
                for i, driver in enumerate(drivers)
            )
        )
        self.seconds += time.monotonic() - started
        self.cpu_seconds.update({k: v - cpu_before[k] for k, v in cpu().items()})
        self.sessions_finished += sum(finished)
        await asyncio.gather(
            *(driver.abort(session_id) for driver, session_id in left_open),
            return_exceptions=True,
        )


async def _virtual_worker(
    driver: Driver,
    number: int,
    answers: list[Answer],
    recorder: Recorder,
    deadline: float,
    left_open: list[tuple[Driver, str]],
    think_seconds: float,
) -> int:
    """Virtual worker `number` runs sessions until the deadline; returns how many it finished."""
    half = len(answers) // 2
    finished = 0

    async def gate() -> None:
        if think_seconds:
            # Thinking past the deadline would stretch the phase it is measured over.
            think = random.expovariate(1 / think_seconds)
            await asyncio.sleep(max(0.0, min(think, deadline - time.monotonic())))
        if time.monotonic() >= deadline:
            raise _TimeUp

    while time.monotonic() < deadline:
        session_id: str | None = None
        try:
            await gate()
            session_id = await recorder.timed("start", driver.start())
            for answer in answers[:half]:
                await gate()
                await recorder.timed("check", driver.check(session_id, answer))
            await gate()
            await recorder.timed("pause", driver.pause(session_id))
            await gate()
            if (number + finished) % ABORT_EVERY == ABORT_EVERY - 1:
                await recorder.timed("abort", driver.abort(session_id))
            else:
                await recorder.timed("resume", driver.resume(session_id))
                for answer in answers[half:]:
                    await gate()
                    await recorder.timed("check", driver.check(session_id, answer))
                await gate()
                await recorder.timed("complete", driver.complete(session_id))
            finished += 1
        except _TimeUp:
            if session_id is not None:
                left_open.append((driver, session_id))
            return finished
        except Exception:
            # Recorded by the recorder; the session is left as it is and a new one starts.
            if session_id is not None:
                left_open.append((driver, session_id))
            await asyncio.sleep(0.1)
    return finished


async def side_by_side(
    first: list[Driver],
    second: list[Driver],
    answers: list[Answer],
    seconds: float,
    cpu: Callable[[], dict[str, float]],
    say: Callable[[str], None] = lambda _line: None,
) -> tuple[Side, Side]:
    """Runs two sides for `seconds` each in A-B-B-A halves, so drift hits both alike."""
    a, b = Side(), Side()
    half = seconds / 2
    for side, drivers in ((a, first), (b, second), (b, second), (a, first)):
        say(f"  {'first' if side is a else 'second':<6} {half:.0f} s ...")
        await side.run(drivers, answers, half, cpu)
    return a, b

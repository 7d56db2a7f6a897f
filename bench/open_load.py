"""An open load: many virtual workers who think between operations, as a plant's workers do.

Unlike the lifecycle load, the rate does not follow the latency: each virtual
worker thinks an exponential time (mean `think_seconds`) before each operation,
so the operations arrive as a Poisson stream of `workers / think_seconds` a
second. Several sides (the product through REST, the bare engine, ...) take turns
in A-B-B-A windows. Each side keeps its virtual workers and their sessions across
its windows, and a worker's think time only runs while its side's window is open,
so a window opens on workers spread over every point of a session instead of a
burst of starts.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bench.drivers import Driver
from bench.lifecycle import Side, abort_open, aborts, run_session, session_length
from bench.stats import Recorder
from devstack.answers import Answer

T = TypeVar("T")
# While a window is closing, how often a thinking worker looks again.
CLOSING_POLL_SECONDS = 0.005


class Window:
    """When one side's virtual workers may act, and where their operations are recorded."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._closes_at = 0.0
        self.recorder: Recorder | None = None

    def open(self, seconds: float, recorder: Recorder | None) -> None:
        """Opens the window for `seconds`, recording into `recorder` (None: unrecorded)."""
        self.recorder = recorder
        self._closes_at = time.monotonic() + seconds
        self._open.set()

    def close(self) -> None:
        """Closes the window: workers finish the operation they are in, then wait."""
        self._open.clear()
        self.recorder = None

    async def think(self, seconds: float) -> None:
        """Sleeps `seconds` of this window's open time, then waits until it is open."""
        left = seconds
        while left > 0:
            await self._open.wait()
            chunk = min(left, self._closes_at - time.monotonic())
            if chunk <= 0:
                await asyncio.sleep(CLOSING_POLL_SECONDS)
                continue
            await asyncio.sleep(chunk)
            left -= chunk
        await self._open.wait()

    async def record(self, kind: str, operation: Awaitable[T]) -> T:
        """Times `operation` if the window records now, else just awaits it."""
        recorder = self.recorder
        if recorder is None:
            return await operation
        return await recorder.timed(kind, operation)


async def _open_worker(
    driver: Driver,
    number: int,
    answers: list[Answer],
    window: Window,
    think_seconds: float,
    open_sessions: set[tuple[Driver, str]],
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """Runs sessions with think time until cancelled or `stop` is set.

    The first session starts at a random point of its course, run without think
    time and unrecorded, so that the side's workers are spread over a session's
    course before any window records; `ready` is set then.
    """
    skip = random.randrange(session_length(answers))
    fast_forward = False
    finished = 0

    async def gate() -> None:
        nonlocal skip, fast_forward
        fast_forward = skip > 0
        if fast_forward:
            skip -= 1
            return
        ready.set()
        await window.think(random.expovariate(1 / think_seconds))

    async def record(kind: str, operation: Awaitable[object]) -> object:
        if fast_forward:
            return await operation
        return await window.record(kind, operation)

    while not stop.is_set():
        try:
            await run_session(
                driver, answers, aborts(number, finished), gate, record, open_sessions
            )
            finished += 1
        except Exception:
            # Recorded when the window records; the session stays open and a new one starts.
            # (The SDK turns a cancelled update call into an exception: `stop` ends the loop.)
            skip = 0
            ready.set()
            await asyncio.sleep(0.1)


async def open_load(
    sides: dict[str, list[Driver]],
    answers: list[Answer],
    seconds_per_side: float,
    think_seconds: float,
    warmup_seconds: float,
    cpu: Callable[[], dict[str, float]],
    say: Callable[[str], None] = lambda _line: None,
    rounds: int = 1,
) -> dict[str, Side]:
    """Runs the sides' open loads in A-B-B-A windows (A-B-C-C-B-A for three), `rounds` times.

    Each side gets `seconds_per_side` in all, in `2 * rounds` windows.

    Each side first warms up: its workers reach their starting points, then act
    unrecorded for `warmup_seconds`. The sessions left open are aborted at the end.
    """
    windows = {name: Window() for name in sides}
    results = {name: Side() for name in sides}
    open_sessions: set[tuple[Driver, str]] = set()
    readiness: dict[str, list[asyncio.Event]] = {name: [] for name in sides}
    workers: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    for name, drivers in sides.items():
        for number, driver in enumerate(drivers):
            ready = asyncio.Event()
            readiness[name].append(ready)
            worker = _open_worker(
                driver, number, answers, windows[name], think_seconds, open_sessions, ready, stop
            )
            workers.append(asyncio.create_task(worker))
    try:
        for name, window in windows.items():
            window.open(warmup_seconds, None)
            await asyncio.gather(*(ready.wait() for ready in readiness[name]))
            await asyncio.sleep(warmup_seconds)
            window.close()
        order = [*sides, *reversed(sides)] * rounds
        share = seconds_per_side / (2 * rounds)
        for name in order:
            say(f"  {name:<12} {share:.0f} s ...")
            side, window = results[name], windows[name]
            cpu_before, started, opened_at = cpu(), time.monotonic(), time.time()
            window.open(share, side.recorder)
            await asyncio.sleep(share)
            window.close()
            side.seconds += time.monotonic() - started
            side.windows.append((opened_at, time.time()))
            side.add_cpu(cpu_before, cpu())
    finally:
        stop.set()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    await abort_open(open_sessions)
    return results

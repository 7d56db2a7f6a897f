"""What the engine model costs: history per check, the window around a pause, audit lag.

Each measurement works on its own sessions of the running stack.
"""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio.client import Client

from bench.drivers import RestDriver, SdkDriver
from bench.stats import percentile
from devstack.answers import Answer

# Checks recorded into one session to compare what check 10 and check 300 add.
HISTORY_CHECKS = 300
# The audit batch size: a window of this many checks holds exactly one write.
HISTORY_WINDOW = 6
SHORT_GAP_SECONDS = (0.02, 0.05)
LONG_GAP_SECONDS = 2.0
AUDIT_POLL_SECONDS = 0.01


async def _history_bytes(client: Client, session_id: str) -> tuple[str, int]:
    """The running run's id and its history's size in bytes."""
    description = await client.get_workflow_handle(session_id).describe()
    return (
        description.run_id or "",
        description.raw_description.workflow_execution_info.history_size_bytes,
    )


@dataclass(frozen=True)
class HistoryGrowth:
    """Bytes of history a check adds around check 10 and around check 300."""

    bytes_check_10: float
    bytes_check_300: float

    @property
    def ratio_300_10(self) -> float:
        """How much more check 300 adds than check 10 (1.0: no growth)."""
        return self.bytes_check_300 / self.bytes_check_10


async def history_bytes_per_check(
    client: Client, driver: SdkDriver, answer: Answer
) -> HistoryGrowth:
    """Bytes of history a check adds around check 10 and around check 300, per check."""
    session_id = await driver.start()
    sizes: dict[int, tuple[str, int]] = {}
    late = range(HISTORY_CHECKS - 5 * HISTORY_WINDOW, HISTORY_CHECKS + 1)
    for number in range(1, HISTORY_CHECKS + 1):
        await driver.check(session_id, answer)
        if number in (HISTORY_WINDOW, 2 * HISTORY_WINDOW) or number in late:
            sizes[number] = await _history_bytes(client, session_id)
    await driver.abort(session_id)

    def per_check(last: int) -> float:
        (run_before, before), (run_after, after) = sizes[last - HISTORY_WINDOW], sizes[last]
        return (after - before) / HISTORY_WINDOW if run_before == run_after else math.nan

    # The last window near check 300 that a continue-as-new does not cut in two.
    late_windows = (per_check(last) for last in reversed(late[HISTORY_WINDOW:]))
    return HistoryGrowth(
        bytes_check_10=per_check(2 * HISTORY_WINDOW),
        bytes_check_300=next((b for b in late_windows if not math.isnan(b)), math.nan),
    )


@dataclass(frozen=True)
class PauseWindow:
    """Resume latencies (ms) 20-50 ms after a pause and 2 s after it."""

    soon_ms: list[float]
    later_ms: list[float]

    @property
    def soon_p50_ms(self) -> float:
        """Median resume right after a pause."""
        return percentile(self.soon_ms, 50)

    @property
    def later_p50_ms(self) -> float:
        """Median resume once the pause has settled."""
        return percentile(self.later_ms, 50)

    @property
    def ratio(self) -> float:
        """Right after against settled (1.0: the pause leaves nothing in flight)."""
        return self.soon_p50_ms / self.later_p50_ms


async def resume_after_pause(driver: RestDriver, samples: int) -> PauseWindow:
    """Resume latency 20-50 ms after a pause against two seconds after it.

    One session at a time, the two gaps taking turns, so that each resume meets
    only what its own session left in flight and both see the same machine.
    """

    async def one(gap: float) -> float:
        session_id = await driver.start()
        await driver.pause(session_id)
        await asyncio.sleep(gap)
        started = time.perf_counter()
        await driver.resume(session_id)
        elapsed = (time.perf_counter() - started) * 1000
        await driver.abort(session_id)
        return elapsed

    soon: list[float] = []
    later: list[float] = []
    for _ in range(samples):
        soon.append(await one(random.uniform(*SHORT_GAP_SECONDS)))
        later.append(await one(LONG_GAP_SECONDS))
    return PauseWindow(soon, later)


@dataclass
class AuditLagSampler:
    """Times, for one virtual worker's checks, the 2xx to the audit row in the database
    (0 for a row already there at the 2xx)."""

    http: httpx.AsyncClient
    token: str
    database: Path
    samples_ms: list[float]

    async def run(self, answers: list[Answer]) -> None:
        """Records checks one after another until cancelled, timing each one's audit row."""
        headers = {"Authorization": f"Bearer {self.token}"}
        driver = RestDriver(self.http, self.token)
        while True:
            session_id = await driver.start()
            for answer in answers:
                body: dict[str, object] = {"check_id": answer.check_id}
                body |= {"passed": answer.passed} if answer.passed is not None else {}
                body |= {"value": answer.value} if answer.value is not None else {}
                response = await self.http.post(
                    f"/api/v1/sessions/{session_id}/checks", json=body, headers=headers
                )
                answered = time.monotonic()
                check_seq = response.json()["safety_checks"][-1]["seq"]
                if await asyncio.to_thread(self._row_present, session_id, check_seq):
                    # Written before the answer: no lag, whatever the look itself took.
                    self.samples_ms.append(0.0)
                    continue
                await self._wait_for_row(session_id, check_seq)
                self.samples_ms.append((time.monotonic() - answered) * 1000)
            await driver.abort(session_id)

    async def _wait_for_row(self, session_id: str, check_seq: int) -> None:
        while not await asyncio.to_thread(self._row_present, session_id, check_seq):
            await asyncio.sleep(AUDIT_POLL_SECONDS)

    def _row_present(self, session_id: str, check_seq: int) -> bool:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute(
                "SELECT 1 FROM audit_events WHERE session_id = ? AND type = 'check_recorded' "
                "AND json_extract(data, '$.check_seq') = ?",
                (session_id, check_seq),
            ).fetchone()
        return row is not None

"""What the engine model costs: history per check, the window around a pause, audit lag.

Each measurement works on its own sessions of the running stack.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio.client import Client

from bench.drivers import Answer, RestDriver, SdkDriver
from bench.lifecycle import Side
from bench.stats import percentile

# Checks recorded into one session to compare what check 10 and check 300 add.
HISTORY_CHECKS = 300
# The audit batch size: a window of this many checks holds exactly one write.
HISTORY_WINDOW = 6
PAUSE_SAMPLES = 10
SHORT_GAP_SECONDS = (0.02, 0.05)
LONG_GAP_SECONDS = 2.0
AUDIT_POLL_SECONDS = 0.01


async def _history_bytes(client: Client, session_id: str) -> int:
    description = await client.get_workflow_handle(session_id).describe()
    return description.raw_description.workflow_execution_info.history_size_bytes


async def history_bytes_per_check(
    client: Client, driver: SdkDriver, answer: Answer
) -> dict[str, float]:
    """Bytes of history a check adds around check 10 and around check 300, per check."""
    session_id = await driver.start()
    sizes: dict[int, int] = {}
    for number in range(1, HISTORY_CHECKS + 1):
        await driver.check(session_id, answer)
        if number % HISTORY_WINDOW == 0 and number in (6, 12, HISTORY_CHECKS - 6, HISTORY_CHECKS):
            sizes[number] = await _history_bytes(client, session_id)
    await driver.abort(session_id)
    at_10 = (sizes[12] - sizes[6]) / HISTORY_WINDOW
    at_300 = (sizes[HISTORY_CHECKS] - sizes[HISTORY_CHECKS - 6]) / HISTORY_WINDOW
    return {"bytes_check_10": at_10, "bytes_check_300": at_300, "ratio_300_10": at_300 / at_10}


async def resume_after_pause(driver: RestDriver) -> dict[str, float]:
    """Resume latency 20-50 ms after a pause against two seconds after it, medians."""

    async def one(gap: float) -> float:
        session_id = await driver.start()
        await driver.pause(session_id)
        await asyncio.sleep(gap)
        started = time.perf_counter()
        await driver.resume(session_id)
        elapsed = (time.perf_counter() - started) * 1000
        await driver.abort(session_id)
        return elapsed

    soon = await asyncio.gather(
        *(one(random.uniform(*SHORT_GAP_SECONDS)) for _ in range(PAUSE_SAMPLES))
    )
    later = await asyncio.gather(*(one(LONG_GAP_SECONDS) for _ in range(PAUSE_SAMPLES)))
    soon_p50, later_p50 = percentile(list(soon), 50), percentile(list(later), 50)
    return {"soon_p50_ms": soon_p50, "later_p50_ms": later_p50, "ratio": soon_p50 / later_p50}


@dataclass
class AuditLagSampler:
    """Times, for one virtual worker's checks, the 2xx to the audit row in the database."""

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


def worst_p99(side: Side) -> float:
    """The worst p99 of any one kind of operation."""
    return max(s.p99_ms for kind, s in side.stats().items() if kind != "all")

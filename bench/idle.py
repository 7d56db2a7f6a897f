"""Idle scale and long sessions: many paused sessions, listing, and resuming after eviction."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle

from bench.drivers import RestDriver, SdkDriver, UnexpectedResponse
from bench.http import HttpClient
from bench.stack import BenchStack
from bench.stats import percentile
from devstack.answers import Answer
from devstack.stack import wait_until
from workflows.work_session import PAUSED_RUN_REPLACED_AFTER

# Paused sessions per idle worker: the list one worker sees.
SESSIONS_PER_USER = 5
# A measurement recorded again and again, failing every other time.
LONG_ANSWERS = [Answer("residual-v", None, 0.4), Answer("residual-v", None, 17.5)]


@dataclass(frozen=True)
class Paused:
    """A paused session and its owner."""

    user_id: str
    session_id: str


def idle_user(index: int) -> str:
    """The owner of the `index`-th idle session."""
    return f"idle-{index // SESSIONS_PER_USER:05d}"


async def create_paused(
    sdk: Callable[[str], SdkDriver], indexes: Iterable[int], concurrency: int
) -> list[Paused]:
    """Starts and pauses one session per index (owner from `idle_user`), `concurrency` at a time."""
    pending = list(indexes)
    created: list[Paused] = []

    async def creator() -> None:
        while pending:
            user_id = idle_user(pending.pop())
            driver = sdk(user_id)
            session_id = await driver.start()
            await driver.pause(session_id)
            created.append(Paused(user_id, session_id))

    await asyncio.gather(*(creator() for _ in range(concurrency)))
    return created


@dataclass
class ListResult:
    """Latency of listing one worker's active sessions."""

    p50_ms: float
    p99_ms: float
    samples: int
    items_seen: int


async def measure_list(http: HttpClient, token: str, samples: int) -> ListResult:
    """Lists one worker's active sessions `samples` times in a row."""
    latencies: list[float] = []
    items = 0
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(samples):
        started = time.perf_counter()
        response = await http.get("/api/v1/sessions", headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise UnexpectedResponse(f"GET /api/v1/sessions: {response.status_code}")
        items = len(response.json()["items"])
    return ListResult(percentile(latencies, 50), percentile(latencies, 99), samples, items)


async def build_long_session(
    client: Client, driver: SdkDriver, target_events: int
) -> tuple[str, int]:
    """Records checks into a new session until it has `target_events` over all its runs.

    The session continues as new on its way (runs are bounded), as a long one does.
    """
    session_id = await driver.start()
    while (events := await events_of_every_run(client, session_id)) < target_events:
        for answer in LONG_ANSWERS * 10:
            await driver.check(session_id, answer)
    await driver.pause(session_id)
    return session_id, events


async def events_of_every_run(client: Client, session_id: str) -> int:
    """History events of a session summed over its runs.

    Visibility knows a run's length once it has closed; the running one is described.
    """
    closed = client.list_workflows(f"WorkflowId = '{session_id}' AND ExecutionStatus != 'Running'")
    earlier = [run.history_length async for run in closed]
    current = await client.get_workflow_handle(session_id).describe()
    return sum(earlier) + current.history_length


@dataclass
class ResumeSamples:
    """Resume latencies (ms) of the same sessions, first evicted, then cached."""

    evicted_ms: list[float]
    cached_ms: list[float]

    @property
    def evicted_p50(self) -> float:
        """Median evicted resume."""
        return percentile(self.evicted_ms, 50)

    @property
    def cached_p50(self) -> float:
        """Median cached resume."""
        return percentile(self.cached_ms, 50)


async def warm_up(driver: SdkDriver) -> None:
    """Runs a throwaway session on a new worker, so that its one-off start-up costs are paid."""
    session_id = await driver.start()
    await driver.pause(session_id)
    await driver.resume(session_id)
    await driver.abort(session_id)


async def wait_until_quiet(client: Client, session_ids: Iterable[str]) -> None:
    """Waits until no session has a workflow task or an audit activity still to run."""

    async def settled(handle: WorkflowHandle[Any, Any]) -> bool:
        description = (await handle.describe()).raw_description
        busy = description.pending_activities or description.HasField("pending_workflow_task")
        return not busy

    for session_id in session_ids:
        handle = client.get_workflow_handle(session_id)
        await wait_until(
            functools.partial(settled, handle), f"session {session_id} settles", timeout=60
        )


async def measure_resumes(
    stack: BenchStack,
    http: HttpClient,
    client: Client,
    warm: SdkDriver,
    groups: dict[str, list[Paused]],
) -> dict[str, ResumeSamples]:
    """Restarts the worker, then resumes each session once evicted and once cached, one at a time.

    The sessions settle first, so that no task left over brings one into the new
    worker's cache before its measured resume. The groups' sessions take turns, so
    that every group sees the same machine.
    """
    # As when a worker restarts in service, not within seconds of the pauses: their runs
    # have moved on as paused runs do.
    await asyncio.sleep(PAUSED_RUN_REPLACED_AFTER.total_seconds() + 1)
    await wait_until_quiet(client, (p.session_id for g in groups.values() for p in g))
    await stack.restart_worker()
    for _ in range(3):
        await warm_up(warm)
    order: list[tuple[str, Paused]] = []
    for index in range(max(len(group) for group in groups.values())):
        order.extend((name, group[index]) for name, group in groups.items() if index < len(group))
    results = {name: ResumeSamples([], []) for name in groups}
    for name, paused in order:
        driver = RestDriver(http, stack.token(paused.user_id))
        started = time.perf_counter()
        await driver.resume(paused.session_id)
        results[name].evicted_ms.append((time.perf_counter() - started) * 1000)
        await driver.pause(paused.session_id)
        started = time.perf_counter()
        await driver.resume(paused.session_id)
        results[name].cached_ms.append((time.perf_counter() - started) * 1000)
        await driver.pause(paused.session_id)
    return results

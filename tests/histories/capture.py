"""Captures today's event histories for the replay test: `make histories`.

Runs the scenarios of `tests/scenarios.py` on a throwaway dev server (with a
low continue-as-new threshold, so one scenario spans several runs) and writes
every run's history to `tests/histories/<date>T<hhmm>_<scenario>_run<N>.json`.
Histories are never deleted: each one is a promise that sessions paused on that
day still resume under any later workflow code.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client

from engine.client import register_search_attributes
from engine.sessions import SessionHandle
from runtime.settings import Settings
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from store.migrate import migrate
from tests import scenarios
from tests.helpers import start_dev_server, suggest_continue_as_new_after
from worker import build_worker
from workflows.work_session import AUDIT_FLUSH_AFTER, AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER

HISTORY_DIR = Path(__file__).resolve().parent
CAN_THRESHOLD_EVENTS = 120
PAUSE_WORTH_A_NEW_RUN = timedelta(seconds=1)
# A little more than the quiet second after which an answer carries its audit event.
QUIET_SECOND = AUDIT_FLUSH_AFTER + timedelta(milliseconds=200)


async def continued_as_new(client: Client, task_queue: str) -> SessionHandle:
    """Enough checks to continue as new, then a pause across the new run and an abort."""
    handle = await scenarios.start(client, task_queue)
    await scenarios.check(handle, "breaker-off", passed=True, key="first")
    await scenarios.many_checks(handle, 40)
    await scenarios.pause(handle, "end of shift")
    await scenarios.resume(handle)
    await scenarios.check(handle, "breaker-off", passed=True, key="first")
    await scenarios.abort(handle, "replaced by a new session")
    await handle.result()
    return handle


async def resumed_in_a_fresh_run(client: Client, task_queue: str) -> SessionHandle:
    """A pause long enough for the session to continue in a fresh run, then the rest."""
    handle = await scenarios.start(client, task_queue, paused_run_after=PAUSE_WORTH_A_NEW_RUN)
    first_run = (await handle.describe()).run_id
    await scenarios.check(handle, "breaker-off", passed=True)
    # A run this short is not worth replacing, however long the pause.
    await scenarios.many_checks(handle, 12)
    await scenarios.pause(handle, "overnight")
    latest = client.get_workflow_handle(handle.id)
    while (await latest.describe()).run_id == first_run:
        await asyncio.sleep(0.05)
    await scenarios.resume(handle)
    await scenarios.check(handle, "residual-v", value=1.2)
    await scenarios.check(handle, "try-start", passed=True)
    await scenarios.complete(handle)
    await latest.result()
    return handle


async def paused_into_a_fresh_run(client: Client, task_queue: str) -> SessionHandle:
    """A pause resumed at once stays in its run; the next one moves on to a fresh run."""
    handle = await scenarios.start(client, task_queue)
    first_run = (await handle.describe()).run_id
    await scenarios.check(handle, "breaker-off", passed=True, key="first")
    await scenarios.many_checks(handle, 3)
    await scenarios.pause(handle, "quick word")
    await scenarios.resume(handle)
    await scenarios.pause(handle, "end of shift")
    latest = client.get_workflow_handle(handle.id)
    while (await latest.describe()).run_id == first_run:
        await asyncio.sleep(0.05)
    await scenarios.resume(handle)
    await scenarios.check(handle, "breaker-off", passed=True, key="first")
    await scenarios.check(handle, "try-start", passed=True)
    await scenarios.abort(handle, "shift over")
    await latest.result()
    return handle


async def cancelled_in_temporal_while_paused(client: Client, task_queue: str) -> SessionHandle:
    """A check and a pause, then a cancellation requested in Temporal: the session aborts."""
    handle = await scenarios.start(client, task_queue)
    await scenarios.check(handle, "breaker-off", passed=True)
    await scenarios.pause(handle, "waiting for parts")
    await handle.cancel()
    await handle.result()
    return handle


async def steady_stream_continued_as_new(client: Client, task_queue: str) -> SessionHandle:
    """Concurrent senders with no pause between checks, across several runs, then an abort."""
    handle = await scenarios.start(client, task_queue)
    await scenarios.steady_stream(handle, senders=4, checks_per_sender=20)
    await scenarios.abort(handle, "stream over")
    await handle.result()
    return handle


async def trickling(client: Client, task_queue: str) -> SessionHandle:
    """Changes each after a quiet second, one write of the run left to fall due."""
    handle = await scenarios.start(client, task_queue)
    changes: list[Callable[[], Awaitable[object]]] = [
        lambda: scenarios.check(handle, "breaker-off", passed=True),
        lambda: scenarios.check(handle, "residual-v", value=0.4),
        lambda: scenarios.pause(handle, "coffee"),
        lambda: scenarios.resume(handle),
        lambda: scenarios.check(handle, "try-start", passed=True),
    ]
    for change in changes:
        await asyncio.sleep(QUIET_SECOND.total_seconds())
        await change()
    await asyncio.sleep((AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER + QUIET_SECOND).total_seconds())
    await scenarios.complete(handle)
    await handle.result()
    return handle


SCENARIOS: dict[str, Callable[[Client, str], Awaitable[SessionHandle]]] = {
    "full_lifecycle": scenarios.full_lifecycle,
    "aborted_while_paused": scenarios.aborted_while_paused,
    "continued_as_new": continued_as_new,
    "resumed_in_a_fresh_run": resumed_in_a_fresh_run,
    "paused_into_a_fresh_run": paused_into_a_fresh_run,
    "cancelled_in_temporal_while_paused": cancelled_in_temporal_while_paused,
    "steady_stream_continued_as_new": steady_stream_continued_as_new,
    "trickling": trickling,
}
# Run again with every command marked as the API marks its own (it writes the audit
# events itself): the answers that carry their events, the runs' deferred writes.
SENT_AS_THE_API_SENDS = (
    "full_lifecycle",
    "continued_as_new",
    "paused_into_a_fresh_run",
    "steady_stream_continued_as_new",
    "trickling",
)


async def run_scenario(name: str, client: Client, task_queue: str) -> SessionHandle:
    """Runs a scenario by its name; `api_<name>` runs it as the API sends commands."""
    if name.startswith("api_"):
        scenarios.sent_as_the_api_sends.set(True)
        try:
            return await SCENARIOS[name.removeprefix("api_")](client, task_queue)
        finally:
            scenarios.sent_as_the_api_sends.set(False)
    return await SCENARIOS[name](client, task_queue)


async def capture(out_dir: Path) -> list[Path]:
    """Runs every scenario and writes the histories of all its runs."""
    written: list[Path] = []
    captured_at = f"{datetime.now(UTC):%Y-%m-%dT%H%M}"
    env = await start_dev_server(*suggest_continue_as_new_after(CAN_THRESHOLD_EVENTS))
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite+aiosqlite:///{tmp}/app.db"
        await migrate(database_url)
        engine = create_engine(database_url)
        settings = Settings(temporal_task_queue=f"capture-{uuid.uuid4().hex[:8]}")
        try:
            await register_search_attributes(env.client, "default")
            audit_log = AuditLog(create_transaction_factory(engine))
            async with build_worker(env.client, settings, audit_log):
                names = [*SCENARIOS, *(f"api_{name}" for name in SENT_AS_THE_API_SENDS)]
                for name in names:
                    handle = await run_scenario(name, env.client, settings.temporal_task_queue)
                    runs = [
                        run
                        async for run in env.client.list_workflows(f"WorkflowId = '{handle.id}'")
                    ]
                    runs.sort(key=lambda run: run.start_time)
                    for index, run in enumerate(runs, start=1):
                        history = await env.client.get_workflow_handle(
                            handle.id, run_id=run.run_id
                        ).fetch_history()
                        path = out_dir / f"{captured_at}_{name}_run{index}.json"
                        path.write_text(history.to_json())
                        written.append(path)
        finally:
            await engine.dispose()
            await env.shutdown()
    return written


def main() -> int:
    """Captures into tests/histories/ and lists the files written."""
    for path in asyncio.run(capture(HISTORY_DIR)):
        sys.stdout.write(f"{path.relative_to(HISTORY_DIR.parent.parent)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

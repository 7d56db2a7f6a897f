"""Session scenarios driven straight through the Temporal SDK (no HTTP).

Shared by the workflow tests and by `make histories`, which stores the event
histories they produce for the replay test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from contextvars import ContextVar
from datetime import timedelta

from temporalio.client import Client

from engine.sessions import (
    Deadline,
    SessionHandle,
    query_session,
    send_command,
    session_handle,
)
from engine.starting import start_session_workflow
from tests.helpers import sop_snapshot
from workflows.shared import (
    AbortRequest,
    Actor,
    CompleteRequest,
    PauseRequest,
    RecordCheckRequest,
    ResumeRequest,
    SessionCommand,
    SessionView,
)

# Long enough for a run's hand-over on a loaded machine; errors beyond it are the test's.
RPC_TIMEOUT = timedelta(seconds=30)

SOP = sop_snapshot("loto-scenario", 2, "Lockout/Tagout: Scenario Press")
# Whether commands say, as the API's do, that their sender writes their audit events
# (nobody here does: the runs write them, `AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER` later).
sent_as_the_api_sends: ContextVar[bool] = ContextVar("sent_as_the_api_sends", default=False)


def owner_of(handle: SessionHandle) -> Actor:
    """The worker who owns a scenario session (its id is embedded in the session id)."""
    return Actor(user_id=handle.id.split("--")[0], roles=["worker"])


async def start(
    client: Client,
    task_queue: str,
    worker_id: str | None = None,
    paused_run_after: timedelta | None = None,
) -> SessionHandle:
    """Starts a session the way the API does: search attributes and memo set at start."""
    worker_id = worker_id or f"w-{uuid.uuid4().hex[:8]}"
    session_id = f"{worker_id}--{uuid.uuid4()}"
    await start_session_workflow(
        client,
        session_id=session_id,
        worker_id=worker_id,
        sop=SOP,
        task_queue=task_queue,
        paused_run_after=paused_run_after,
    )
    return session_handle(client, session_id)


def marked(command: SessionCommand) -> SessionCommand:
    """The command, saying its sender writes its audit event if `sent_as_the_api_sends`."""
    return dataclasses.replace(command, writes_audit=sent_as_the_api_sends.get())


async def send(handle: SessionHandle, command: SessionCommand) -> SessionView:
    """Sends a command the way the API does, then reads the session as it does on a cache miss."""
    await send_command(handle, marked(command), Deadline(RPC_TIMEOUT))
    return await query_session(handle, Deadline(RPC_TIMEOUT))


async def check(
    handle: SessionHandle,
    check_id: str,
    *,
    passed: bool | None = None,
    value: float | None = None,
    note: str | None = None,
    key: str | None = None,
) -> SessionView:
    """Records one check as the owner."""
    return await send(
        handle, RecordCheckRequest(owner_of(handle), check_id, passed, value, note, key)
    )


async def pause(handle: SessionHandle, reason: str | None = None) -> SessionView:
    """Pauses as the owner."""
    return await send(handle, PauseRequest(owner_of(handle), reason))


async def resume(handle: SessionHandle) -> SessionView:
    """Resumes as the owner."""
    return await send(handle, ResumeRequest(owner_of(handle)))


async def abort(handle: SessionHandle, reason: str | None = None) -> SessionView:
    """Aborts as the owner."""
    return await send(handle, AbortRequest(owner_of(handle), reason))


async def complete(handle: SessionHandle) -> SessionView:
    """Completes as the owner."""
    return await send(handle, CompleteRequest(owner_of(handle)))


async def full_lifecycle(client: Client, task_queue: str) -> SessionHandle:
    """Checks (a failed measurement redone), two pause/resume cycles, completion."""
    handle = await start(client, task_queue)
    await check(handle, "breaker-off", passed=True, note="lock #4", key="k-1")
    await check(handle, "residual-v", value=17.5)
    await pause(handle, "waiting for a meter")
    await resume(handle)
    await check(handle, "residual-v", value=0.8, note="new meter")
    await check(handle, "breaker-off", passed=True, note="lock #4", key="k-1")
    await pause(handle)
    await resume(handle)
    await check(handle, "try-start", passed=True)
    await check(handle, "photo", passed=False)
    await complete(handle)
    await handle.result()
    return handle


async def aborted_while_paused(client: Client, task_queue: str) -> SessionHandle:
    """One check, a pause, then an abort with a reason."""
    handle = await start(client, task_queue)
    await check(handle, "breaker-off", passed=True)
    await pause(handle, "shift ended")
    await abort(handle, "machine handed to the vendor")
    await handle.result()
    return handle


async def many_checks(handle: SessionHandle, count: int) -> list[SessionView]:
    """Records `count` measurements in sequence (enough to make the workflow continue as new)."""
    return [await check(handle, "residual-v", value=float(i % 7)) for i in range(count)]


async def steady_stream(handle: SessionHandle, senders: int, checks_per_sender: int) -> list[str]:
    """Several senders record checks at once, each sending its next one as soon as the
    last is answered; returns the notes sent, one per check."""

    async def sender(number: int) -> list[str]:
        notes = [f"s{number}-{i}" for i in range(checks_per_sender)]
        for note in notes:
            command = RecordCheckRequest(owner_of(handle), "residual-v", value=1.0, note=note)
            await send_command(handle, marked(command), Deadline(RPC_TIMEOUT))
        return notes

    sent = await asyncio.gather(*(sender(n) for n in range(senders)))
    return [note for notes in sent for note in notes]

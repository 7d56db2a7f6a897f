"""The API writes a change's audit row as it answers when the session was quiet for a
second before it; the session's run writes every row, to make sure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from temporalio.client import Client

from api.auth import User
from api.gateway import SessionGateway
from runtime.settings import Settings
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from tests.helpers import assert_eventually, bearer
from tests.helpers.api import new_session, record
from workflows.shared import AuditEvent, AuditEventType, RecordCheckRequest
from workflows.work_session import AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER, WorkSessionWorkflow

SESSION_STARTED = AuditEventType.SESSION_STARTED
CHECK_RECORDED = AuditEventType.CHECK_RECORDED
SESSION_PAUSED = AuditEventType.SESSION_PAUSED

# Half the wait of the run's own write of an event the API wrote (10 s): room for a
# busy machine, and still apart from it.
AT_ONCE_SECONDS = AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER.total_seconds() / 2


async def unwritten_by_the_run(client: Client, session_id: str) -> list[int]:
    events = await client.get_workflow_handle(session_id).query(
        WorkSessionWorkflow.get_unwritten_audit
    )
    return [e.seq for e in events]


async def session_with_its_start_written(
    api: httpx.AsyncClient, audit_log: AuditLog
) -> tuple[str, str]:
    """A new session whose run has written its start, so that its next write waits."""
    worker, session = await new_session(api)

    async def start_written() -> None:
        assert await audit_log.for_session(session["id"])

    await assert_eventually(start_written)
    return worker, session["id"]


async def test_a_change_after_a_quiet_second_is_in_the_trail_at_once_before_the_run_writes_it(
    api: httpx.AsyncClient, audit_log: AuditLog, temporal_client: Client
) -> None:
    worker, session_id = await session_with_its_start_written(api, audit_log)
    checked = await record(api, worker, session_id, "breaker-off", passed=True)
    assert checked.status_code == 201, checked.text

    async def in_the_trail() -> AuditEvent:
        checks = [e for e in await audit_log.for_session(session_id) if e.type == CHECK_RECORDED]
        assert len(checks) == 1, checks
        return checks[0]

    event = await assert_eventually(in_the_trail, timeout=AT_ONCE_SECONDS)
    assert await unwritten_by_the_run(temporal_client, session_id) == [event.seq]


async def test_changes_close_together_are_written_by_the_run_within_about_a_second(
    api: httpx.AsyncClient, audit_log: AuditLog, temporal_client: Client
) -> None:
    worker, session_id = await session_with_its_start_written(api, audit_log)
    await record(api, worker, session_id, "breaker-off", passed=True)
    await api.post(f"/api/v1/sessions/{session_id}/pause", headers=bearer(worker))

    async def all_written_by_the_run() -> None:
        types = [e.type for e in await audit_log.for_session(session_id)]
        assert types == [SESSION_STARTED, CHECK_RECORDED, SESSION_PAUSED], types
        assert await unwritten_by_the_run(temporal_client, session_id) == []

    # The pause came within a second of the check: the run writes both with it, in
    # about a second, long before the check alone would have been due.
    await assert_eventually(all_written_by_the_run, timeout=AT_ONCE_SECONDS)


async def test_when_the_api_cannot_write_the_answer_stands_and_the_run_writes_the_row(
    api: httpx.AsyncClient,
    audit_log: AuditLog,
    temporal_client: Client,
    settings: Settings,
    tmp_path: Path,
) -> None:
    worker, session_id = await session_with_its_start_written(api, audit_log)
    # A database without the audit table: every write of this API fails.
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'no-tables.db'}")
    gateway = SessionGateway(
        temporal_client, settings, AuditLog(create_transaction_factory(broken))
    )
    user = User(worker, frozenset({"worker"}))
    try:
        command = RecordCheckRequest(user.as_actor(), "breaker-off", passed=True)
        changed = await gateway.send(user, session_id, command)
        await gateway.finish_audit_writes()
    finally:
        await broken.dispose()
    assert changed.change.check is not None
    seq = changed.change.audit_event.seq if changed.change.audit_event else None
    assert seq in await unwritten_by_the_run(temporal_client, session_id)
    await asyncio.sleep(AT_ONCE_SECONDS)
    assert seq not in {e.seq for e in await audit_log.for_session(session_id)}

    async def written_by_the_run() -> None:
        assert seq in {e.seq for e in await audit_log.for_session(session_id)}

    await assert_eventually(
        written_by_the_run, timeout=AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER.total_seconds() + 10
    )


async def test_back_to_back_checks_show_in_lists_within_a_second(
    api: httpx.AsyncClient, audit_log: AuditLog
) -> None:
    worker, session_id = await session_with_its_start_written(api, audit_log)
    first = await record(api, worker, session_id, "breaker-off", passed=True)
    second = await record(api, worker, session_id, "try-start", passed=True)
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    progress = second.json()["progress"]

    async def listed_as_answered() -> None:
        response = await api.get(
            "/api/v1/sessions", params={"worker_id": worker}, headers=bearer(worker)
        )
        assert response.status_code == 200, response.text
        [item] = [i for i in response.json()["items"] if i["id"] == session_id]
        assert item["progress"] == progress

    # The second goes to lists with the run's write, due a second after it.
    await assert_eventually(listed_as_answered, timeout=AT_ONCE_SECONDS)

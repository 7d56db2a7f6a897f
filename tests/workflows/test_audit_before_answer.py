"""A change's audit events are written in the workflow task that answers it."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from runtime.settings import Settings
from store.audit import AuditLog
from tests import scenarios
from tests.helpers import assert_eventually
from tests.helpers.workers import AuditOutage, serving_alone
from workflows.shared import AuditEventType, SessionStatus
from workflows.work_session import WorkSessionWorkflow

pytestmark = pytest.mark.usefixtures("worker")

# Under the answer's own workflow task the engine would hold an answer until the task's
# heartbeat, 8 s with the default timeout; a change answered sooner was not held.
ANSWERED_WITHOUT_THE_AUDIT_WITHIN = 6.0


async def test_a_change_is_answered_only_once_its_audit_row_is_written(
    temporal_client: Client, settings: Settings, audit_log: AuditLog
) -> None:
    handle = await scenarios.start(temporal_client, settings.temporal_task_queue)
    await scenarios.check(handle, "breaker-off", passed=True)
    await scenarios.check(handle, "residual-v", value=12.5)

    assert [e.type for e in await audit_log.for_session(handle.id)] == [
        AuditEventType.SESSION_STARTED,
        AuditEventType.CHECK_RECORDED,
        AuditEventType.CHECK_RECORDED,
    ]
    await scenarios.pause(handle, "lunch")
    trail = await audit_log.for_session(handle.id)
    assert [e.seq for e in trail] == [1, 2, 3, 4]
    assert trail[-1].type == AuditEventType.SESSION_PAUSED


async def test_a_check_costs_one_workflow_task_and_no_timer(
    temporal_client: Client, settings: Settings
) -> None:
    handle = await scenarios.start(temporal_client, settings.temporal_task_queue)
    await scenarios.check(handle, "breaker-off", passed=True)
    before = [e.event_type for e in (await handle.fetch_history()).events]

    await scenarios.many_checks(handle, 5)

    after = [e.event_type for e in (await handle.fetch_history()).events]
    added = after[len(before) :]
    assert added.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 5
    assert added.count(EventType.EVENT_TYPE_TIMER_STARTED) == 0
    assert added.count(EventType.EVENT_TYPE_MARKER_RECORDED) == 5


async def test_while_the_audit_database_refuses_changes_are_answered_and_written_once_back(
    temporal_client: Client, audit_log: AuditLog
) -> None:
    refusing = AuditOutage(audit_log, down=True)
    async with serving_alone(
        temporal_client, WorkSessionWorkflow, refusing, queue_prefix="refusing-audit"
    ) as task_queue:
        handle = await scenarios.start(temporal_client, task_queue)
        for value in (30.0, 12.0, 0.5):
            await asyncio.wait_for(
                scenarios.check(handle, "residual-v", value=value),
                timeout=ANSWERED_WITHOUT_THE_AUDIT_WITHIN,
            )
        view = await asyncio.wait_for(
            scenarios.pause(handle, "parts"), timeout=ANSWERED_WITHOUT_THE_AUDIT_WITHIN
        )
        assert view.summary.status == SessionStatus.PAUSED
        assert refusing.refusals > 0
        assert await audit_log.for_session(handle.id) == []

        refusing.down = False

        async def written_once_in_order() -> None:
            trail = await audit_log.for_session(handle.id)
            assert [e.seq for e in trail] == [1, 2, 3, 4, 5]
            assert trail[-1].type == AuditEventType.SESSION_PAUSED

        # The pause between attempts has grown to a few seconds by now.
        await assert_eventually(written_once_in_order, timeout=20)
        assert await handle.query(WorkSessionWorkflow.get_unwritten_audit) == []

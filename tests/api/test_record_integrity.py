"""What Temporal's own tools do to a session, then what the REST API shows for it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from engine.reconcile import EndingsReconciler
from engine.sessions import SessionHandle
from runtime.settings import Settings
from store.audit import AuditAppend, AuditLog
from tests import scenarios
from tests.helpers import assert_eventually, bearer, new_user
from tests.helpers.api import act, publish_sop, record, start_session
from tests.helpers.cli import describe, temporal
from tests.helpers.workers import serving_alone
from tests.workflows.changed_workflows import BeforeCancelWasAnAbort, OlderRelease
from workflows.shared import AuditEvent, SessionStatus
from workflows.work_session import WorkSessionWorkflow

CHANGES: list[tuple[str, Any]] = [
    ("pause", None),
    ("resume", None),
    ("abort", {"reason": "too late"}),
    ("complete", None),
    ("checks", {"check_id": "breaker-off", "passed": True}),
]


@pytest.fixture
async def sop(api: httpx.AsyncClient) -> dict[str, Any]:
    return await publish_sop(api)


async def session_in(
    api: httpx.AsyncClient, worker: str, sop_id: str, status: str
) -> dict[str, Any]:
    """A session with one check recorded, paused if asked."""
    session = await start_session(api, worker, sop_id)
    assert (await record(api, worker, session["id"], "breaker-off", passed=True)).status_code == 201
    if status == "PAUSED":
        assert (
            await act(api, worker, session["id"], "pause", {"reason": "break"})
        ).status_code == 200
    return session


async def read(api: httpx.AsyncClient, user: str, session_id: str, *roles: str) -> dict[str, Any]:
    response = await api.get(f"/api/v1/sessions/{session_id}", headers=bearer(user, *roles))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def listed(api: httpx.AsyncClient, worker: str, **params: Any) -> dict[str, str]:
    response = await api.get("/api/v1/sessions", params=params, headers=bearer(worker))
    assert response.status_code == 200, response.text
    return {item["id"]: item["status"] for item in response.json()["items"]}


async def audit_trail(api: httpx.AsyncClient, session_id: str) -> list[dict[str, Any]]:
    response = await api.get(
        f"/api/v1/sessions/{session_id}/audit", headers=bearer("sup-auditor", "supervisor")
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def changes_answer(api: httpx.AsyncClient, worker: str, session_id: str, code: str) -> None:
    for action, body in CHANGES:
        refused = await act(api, worker, session_id, action, body)
        assert refused.status_code == 409, (action, refused.text)
        assert refused.json()["code"] == code, (action, refused.text)


@pytest.mark.parametrize("status", ["IN_PROGRESS", "PAUSED"])
async def test_a_cancellation_requested_in_temporal_is_an_audited_abort(
    api: httpx.AsyncClient, settings: Settings, sop: dict[str, Any], status: str
) -> None:
    worker = new_user()
    session = await session_in(api, worker, sop["id"], status)
    sid = session["id"]

    await temporal(settings.temporal_address, "workflow", "cancel", "-w", sid)

    async def aborted_naming_who_asked() -> dict[str, Any]:
        # The abort comes first; who asked is named once the workflow has read its history.
        shown = await read(api, worker, sid)
        assert shown["status"] == "ABORTED"
        named = "Cancellation requested in Temporal by temporal-cli:"
        assert shown["abort_reason"].startswith(named)
        return shown

    shown = await assert_eventually(aborted_naming_who_asked)
    assert [c["check_id"] for c in shown["safety_checks"]] == ["breaker-off"]
    assert shown["history"][-1]["by"].startswith("temporal-cli:")
    assert shown["ended_at"] is not None and shown["paused_at"] is None
    await changes_answer(api, worker, sid, "invalid_transition")

    async def completed_not_canceled() -> None:
        # The workflow aborted the session itself and completed once the abort was written.
        described = await describe(settings.temporal_address, sid)
        status = described["workflowExecutionInfo"]["status"]
        assert status == "WORKFLOW_EXECUTION_STATUS_COMPLETED"

    await assert_eventually(completed_not_canceled)

    async def listed_as_aborted() -> None:
        assert sid not in await listed(api, worker)
        assert (await listed(api, worker, status="ABORTED"))[sid] == "ABORTED"

    await assert_eventually(listed_as_aborted)
    trail = await audit_trail(api, sid)
    assert [e["seq"] for e in trail] == list(range(1, len(trail) + 1))
    ending = trail[-1]
    assert ending["type"] == "session_aborted"
    assert ending["actor"].startswith("temporal-cli:")
    assert ending["data"]["ended_in_temporal"] == "cancelled"
    assert ending["data"]["reason"] == shown["abort_reason"]


@pytest.mark.parametrize("status", ["IN_PROGRESS", "PAUSED"])
async def test_a_session_terminated_in_temporal_is_shown_aborted_refuses_changes_and_is_audited(
    api: httpx.AsyncClient, settings: Settings, sop: dict[str, Any], status: str
) -> None:
    worker = new_user()
    session = await session_in(api, worker, sop["id"], status)
    sid = session["id"]
    # Recorded just before the terminate: its audit event is not written yet.
    recorded = await record(api, worker, sid, "breaker-off", passed=True)
    assert recorded.status_code == (201 if status == "IN_PROGRESS" else 409)

    await temporal(
        settings.temporal_address, "workflow", "terminate", "-w", sid, "--reason", "stuck"
    )

    shown = await read(api, worker, sid)
    assert shown["status"] == "ABORTED"
    assert shown["abort_reason"].startswith("Terminated in Temporal by temporal-cli:")
    assert shown["abort_reason"].endswith(": stuck")
    assert shown["history"][-1]["status"] == "ABORTED"
    assert shown["ended_at"] is not None and shown["paused_at"] is None
    assert shown["safety_checks"][0]["check_id"] == "breaker-off"
    assert (await read(api, "sup-reader", sid, "supervisor"))["status"] == "ABORTED"
    await changes_answer(api, worker, sid, "session_ended_in_temporal")
    # Others learn no more than about any session.
    stranger = await act(api, new_user(), sid, "pause")
    assert stranger.status_code == 404
    supervisor = await api.post(
        f"/api/v1/sessions/{sid}/pause", headers=bearer("sup-x", "supervisor", "worker")
    )
    assert supervisor.status_code == 403

    async def listed_as_aborted() -> None:
        assert sid not in await listed(api, worker)
        assert sid not in await listed(api, worker, status=status)
        assert (await listed(api, worker, status="ABORTED"))[sid] == "ABORTED"
        response = await api.get(
            "/api/v1/sessions", params={"status": "ABORTED"}, headers=bearer(worker)
        )
        [item] = response.json()["items"]
        assert item["abort_reason"] == shown["abort_reason"]
        assert item["ended_at"] == shown["ended_at"]

    await assert_eventually(listed_as_aborted)

    async def ending_recorded() -> list[dict[str, Any]]:
        trail = await audit_trail(api, sid)
        assert trail and trail[-1]["type"] == "session_aborted", trail
        return trail

    # The bound: one reconcile interval (0.5 s here) plus a sweep and visibility's lag.
    trail = await assert_eventually(ending_recorded, timeout=5)
    assert [e["seq"] for e in trail] == list(range(1, len(trail) + 1))
    assert trail[-1]["seq"] == len(shown["history"]) + len(shown["safety_checks"])
    assert trail[-1]["data"]["ended_in_temporal"] == "terminated"
    assert trail[-1]["data"]["reason"] == shown["abort_reason"]


async def test_a_cancellation_in_a_run_that_continued_as_new_is_an_audited_abort(
    api: httpx.AsyncClient, temporal_client: Client, settings: Settings
) -> None:
    handle = await scenarios.start(temporal_client, settings.temporal_task_queue)
    worker = scenarios.owner_of(handle).user_id
    first_run = (await handle.describe()).run_id
    await scenarios.many_checks(handle, 40)

    async def continued_as_new() -> None:
        assert (await handle.describe()).run_id != first_run

    await assert_eventually(continued_as_new)

    await temporal(settings.temporal_address, "workflow", "cancel", "-w", handle.id)

    async def ending_recorded() -> list[dict[str, Any]]:
        trail = await audit_trail(api, handle.id)
        assert trail and trail[-1]["type"] == "session_aborted", trail[-1:]
        return trail

    trail = await assert_eventually(ending_recorded)
    assert [e["seq"] for e in trail] == list(range(1, 43))
    shown = await read(api, worker, handle.id)
    assert shown["status"] == "ABORTED"
    assert len(shown["safety_checks"]) == 40


class GatedAudit:
    """The audit log, holding its first write after `hold()` until `release`."""

    def __init__(self, audit_log: AuditLog) -> None:
        self._audit_log = audit_log
        self._holding = False
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    def hold(self) -> None:
        self._holding = True

    async def append(self, events: Sequence[AuditEvent]) -> AuditAppend:
        if self._holding:
            self._holding = False
            self.held.set()
            await self.release.wait()
        return await self._audit_log.append(events)


async def test_a_cancellation_while_an_audit_write_is_in_flight_loses_no_event(
    api: httpx.AsyncClient, temporal_client: Client, settings: Settings, audit_log: AuditLog
) -> None:
    gated = GatedAudit(audit_log)
    gated.hold()
    async with serving_alone(
        temporal_client,
        WorkSessionWorkflow,
        gated,
        queue_prefix="gated",
        identifies_cancel_requests=True,
    ) as task_queue:
        handle = await scenarios.start(temporal_client, task_queue)
        await asyncio.wait_for(gated.held.wait(), timeout=10)

        await temporal(settings.temporal_address, "workflow", "cancel", "-w", handle.id)

        ended = await asyncio.wait_for(handle.result(), timeout=10)
        gated.release.set()
        trail = await audit_trail(api, handle.id)
    assert ended.summary.status == SessionStatus.ABORTED
    assert [(e["seq"], e["type"]) for e in trail] == [
        (1, "session_started"),
        (2, "session_aborted"),
    ]


async def test_a_session_cancelled_by_an_older_release_is_shown_aborted_and_swept_once(
    api: httpx.AsyncClient, temporal_client: Client, settings: Settings, audit_log: AuditLog
) -> None:
    async with serving_alone(
        temporal_client, BeforeCancelWasAnAbort, audit_log, queue_prefix="older"
    ) as task_queue:
        handle = await scenarios.start(temporal_client, task_queue)
        worker = scenarios.owner_of(handle).user_id
        await scenarios.check(handle, "breaker-off", passed=True)
        await temporal(settings.temporal_address, "workflow", "cancel", "-w", handle.id)
        await assert_eventually(lambda: closed_as(handle, WorkflowExecutionStatus.CANCELED))

        shown = await read(api, worker, handle.id)
        assert shown["status"] == "ABORTED"
        assert shown["abort_reason"].startswith(
            "Cancellation requested in Temporal by temporal-cli:"
        )
        await changes_answer(api, worker, handle.id, "session_ended_in_temporal")

        reconciler = EndingsReconciler(temporal_client, task_queue, audit_log, timedelta(seconds=1))

        async def swept() -> None:
            assert (await reconciler.sweep()).recorded == [handle.id]

        await assert_eventually(swept)
        assert (await reconciler.sweep()).recorded == []
        trail = await audit_trail(api, handle.id)
    assert [(e["seq"], e["type"]) for e in trail] == [
        (1, "session_started"),
        (2, "check_recorded"),
        (3, "session_aborted"),
    ]
    assert trail[-1]["data"]["ended_in_temporal"] == "cancelled"


async def closed_as(handle: SessionHandle, status: WorkflowExecutionStatus) -> None:
    assert (await handle.describe()).status == status


async def reset_after_first_check(address: str, session_id: str, *options: str) -> None:
    """Resets the session's workflow to the task that followed its first recorded check."""
    shown = json.loads(await temporal(address, "workflow", "show", "-w", session_id, "-o", "json"))
    kinds = [
        (int(e["eventId"]), e["eventType"].removeprefix("EVENT_TYPE_")) for e in shown["events"]
    ]
    first_update = next(i for i, kind in kinds if kind == "WORKFLOW_EXECUTION_UPDATE_COMPLETED")
    point = next(i for i, kind in kinds if kind == "WORKFLOW_TASK_COMPLETED" and i > first_update)
    await temporal(
        address, "workflow", "reset", "-w", session_id, "-e", str(point), "--reason", "op", *options
    )


async def written_trail(api: httpx.AsyncClient, session_id: str, count: int) -> list[Any]:
    async def written() -> list[Any]:
        trail = await audit_trail(api, session_id)
        assert len(trail) == count, trail
        return [(e["seq"], e["type"], e["data"].get("check_id")) for e in trail]

    return await assert_eventually(written)


async def paused_after_two_checks(api: httpx.AsyncClient, worker: str, sop_id: str) -> str:
    sid: str = (await start_session(api, worker, sop_id))["id"]
    assert (await record(api, worker, sid, "breaker-off", passed=True)).status_code == 201
    assert (await record(api, worker, sid, "residual-v", value=1.0)).status_code == 201
    assert (await act(api, worker, sid, "pause")).status_code == 200
    return sid


BEFORE_RESET = [
    (1, "session_started", None),
    (2, "check_recorded", "breaker-off"),
    (3, "check_recorded", "residual-v"),
    (4, "session_paused", None),
]


async def test_a_reset_in_temporal_replays_later_changes_and_the_record_stays_whole(
    api: httpx.AsyncClient, settings: Settings, sop: dict[str, Any]
) -> None:
    worker = new_user()
    sid = await paused_after_two_checks(api, worker, sop["id"])
    assert await written_trail(api, sid, 4) == BEFORE_RESET

    await reset_after_first_check(settings.temporal_address, sid)

    shown = await read(api, worker, sid)
    assert shown["status"] == "PAUSED"
    assert [c["check_id"] for c in shown["safety_checks"]] == ["breaker-off", "residual-v"]
    assert (await act(api, worker, sid, "resume")).status_code == 200
    assert (await record(api, worker, sid, "try-start", passed=True)).status_code == 201
    assert await written_trail(api, sid, 6) == [
        *BEFORE_RESET,
        (5, "session_resumed", None),
        (6, "check_recorded", "try-start"),
    ]


async def test_a_reset_that_excludes_updates_rewinds_the_session_but_not_its_audit_rows(
    api: httpx.AsyncClient, settings: Settings, sop: dict[str, Any], audit_log: AuditLog
) -> None:
    worker = new_user()
    sid = await paused_after_two_checks(api, worker, sop["id"])
    assert await written_trail(api, sid, 4) == BEFORE_RESET

    await reset_after_first_check(settings.temporal_address, sid, "--reapply-exclude", "Update")

    shown = await read(api, worker, sid)
    assert shown["status"] == "IN_PROGRESS"
    assert [c["check_id"] for c in shown["safety_checks"]] == ["breaker-off"]
    assert (await record(api, worker, sid, "try-start", passed=True)).status_code == 201

    # The session numbers its next event 3 again: the trail keeps the row it has, and
    # the new event is kept apart for an operator, not dropped.
    async def kept_apart() -> list[dict[str, Any]]:
        kept = [row for row in await audit_log.dead_letters() if row.session_id == sid]
        assert kept, "the colliding event is kept as a dead letter"
        return [json.loads(row.event_json) for row in kept]

    # The session's run sets it aside (and counts it) when it writes the event, within
    # the ten seconds a change the API wrote at once may wait for the run's write.
    [collided] = await assert_eventually(kept_apart, timeout=20)
    assert (collided["seq"], collided["data"]["check_id"]) == (3, "try-start")
    assert await written_trail(api, sid, 4) == BEFORE_RESET


async def test_a_session_of_the_model_before_compact_history_aborts_on_cancellation_too(
    api: httpx.AsyncClient, temporal_client: Client, settings: Settings, audit_log: AuditLog
) -> None:
    async with serving_alone(
        temporal_client,
        OlderRelease,
        audit_log,
        queue_prefix="older",
        identifies_cancel_requests=True,
    ) as task_queue:
        handle = await scenarios.start(temporal_client, task_queue)
        await scenarios.check(handle, "breaker-off", passed=True)

        await temporal(settings.temporal_address, "workflow", "cancel", "-w", handle.id)

        ended = await asyncio.wait_for(handle.result(), timeout=10)
        trail = await written_trail(api, handle.id, 3)
    assert ended.summary.status == SessionStatus.ABORTED
    assert trail[-1][1] == "session_aborted"


async def test_a_reader_of_the_trail_sees_a_termination_without_waiting_for_a_sweep(
    api: httpx.AsyncClient, temporal_client: Client, settings: Settings, audit_log: AuditLog
) -> None:
    async with serving_alone(
        temporal_client, WorkSessionWorkflow, audit_log, queue_prefix="unswept"
    ) as task_queue:
        handle = await scenarios.start(temporal_client, task_queue)
        await scenarios.check(handle, "breaker-off", passed=True)
        await temporal(settings.temporal_address, "workflow", "terminate", "-w", handle.id)

        trail = await audit_trail(api, handle.id)
    assert [(e["seq"], e["type"]) for e in trail] == [
        (1, "session_started"),
        (2, "check_recorded"),
        (3, "session_aborted"),
    ]
    assert trail[-1]["data"]["ended_in_temporal"] == "terminated"


def test_the_reconciler_refuses_a_task_queue_that_could_widen_its_query(
    temporal_client: Client, audit_log: AuditLog
) -> None:
    with pytest.raises(ValueError, match="visibility query"):
        EndingsReconciler(temporal_client, "q' OR TaskQueue != '", audit_log, timedelta(1))

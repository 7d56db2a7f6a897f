"""Random command sequences against the session rules: on the domain object, then on the workflow.

Whatever the sequence, a finished session stays finished, checks land only while
in progress, progress is what the records say, active plus paused time is wall
time, every accepted change gets the next audit sequence number, and a refused
command changes nothing. The workflow must accept and refuse exactly what the
domain object does.
"""

from __future__ import annotations

import asyncio
import copy
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from engine.sessions import Deadline, SessionClosed, SessionHandle, send_command
from runtime.settings import Settings
from store.audit import AuditLog
from tests import scenarios
from tests.helpers import assert_eventually
from tests.properties.operations import (
    CHECK_KINDS,
    EVENT_TYPE,
    OWNER,
    REQUIRED_CHECKS,
    Command,
    passed_required,
    steps,
)
from workflows.domain import TERMINAL_STATUSES, DomainError, WorkSession, durations
from workflows.shared import (
    AbortRequest,
    AuditEvent,
    CompleteRequest,
    PauseRequest,
    RecordCheckRequest,
    ResumeRequest,
    SessionState,
    SessionStatus,
    SessionView,
)

DOMAIN_EXAMPLES = int(os.environ.get("PROPERTY_DOMAIN_EXAMPLES", "300"))
WORKFLOW_EXAMPLES = int(os.environ.get("PROPERTY_WORKFLOW_EXAMPLES", "10"))
START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
DURATION_TOLERANCE = 0.002  # durations are rounded to milliseconds


class PauseClock:
    """Paused time as the sequence of accepted commands implies it."""

    def __init__(self) -> None:
        self.closed = 0.0
        self.since: datetime | None = None

    def accepted(self, command: Command, now: datetime) -> None:
        if isinstance(command, PauseRequest):
            self.since = now
        elif isinstance(command, ResumeRequest | AbortRequest) and self.since is not None:
            self.closed += (now - self.since).total_seconds()
            self.since = None

    def paused_seconds(self, now: datetime) -> float:
        open_pause = (now - self.since).total_seconds() if self.since is not None else 0.0
        return self.closed + open_pause


def before_keys(state: SessionState, command: RecordCheckRequest) -> set[str]:
    """The idempotency keys the command's sender had used."""
    prefix = f"{command.actor.user_id}:"
    return {key.removeprefix(prefix) for key in state.idempotency_keys if key.startswith(prefix)}


def assert_invariants(session: WorkSession, now: datetime, clock: PauseClock) -> None:
    state = session.state
    progress = session.progress()
    assert progress.checks_passed == passed_required(state.checks)
    assert progress.checks_required == len(REQUIRED_CHECKS)
    assert progress.checks_total == len(CHECK_KINDS)
    assert [r.seq for r in state.checks] == list(range(1, len(state.checks) + 1))
    assert state.history[-1].status == state.status

    active, paused = durations(session.summary(), now)
    wall = ((state.ended_at or now) - state.started_at).total_seconds()
    assert active >= 0 and paused >= 0
    assert abs(active + paused - wall) <= DURATION_TOLERANCE
    assert abs(paused - clock.paused_seconds(state.ended_at or now)) <= DURATION_TOLERANCE


@settings(max_examples=DOMAIN_EXAMPLES, deadline=None)
@given(sequence=steps())
def test_any_command_sequence_keeps_the_session_rules(sequence: list[Any]) -> None:
    now = START
    session, started = WorkSession.start("session-1", OWNER.user_id, scenarios.SOP, now)
    events: list[AuditEvent] = [started]
    clock = PauseClock()
    finished_as: SessionStatus | None = None

    for gap, command in sequence:
        now += gap
        before = copy.deepcopy(session.state)
        try:
            outcome = session.apply(command, now)
        except DomainError as refusal:
            assert session.state == before, f"refused {command} changed the session"
            if command.actor.user_id != OWNER.user_id:
                assert refusal.code in ("forbidden", "session_not_found")
            elif refusal.code == "idempotency_key_reused":
                # A key names one record: another answer under it is refused in any status.
                assert isinstance(command, RecordCheckRequest)
                assert command.idempotency_key in before_keys(before, command)
            elif finished_as is not None:
                assert refusal.code == "invalid_transition"
        else:
            assert command.actor.user_id == OWNER.user_id
            event = outcome.event
            if event is None:
                # A repeated idempotency key: the first record stands, nothing new.
                assert isinstance(command, RecordCheckRequest)
                assert command.idempotency_key is not None
                assert session.state == before
                assert outcome.change.check is not None
                assert outcome.change.check.check_id == command.check_id
                assert outcome.change.check.note == command.note
            else:
                assert finished_as is None, f"{command} changed a {finished_as} session"
                assert event.seq == events[-1].seq + 1 == session.state.audit_seq
                assert event.type == EVENT_TYPE[type(command)]
                events.append(event)
                clock.accepted(command, now)
                if isinstance(command, RecordCheckRequest):
                    assert before.status == SessionStatus.IN_PROGRESS
                    assert len(session.state.checks) == len(before.checks) + 1
                else:
                    assert session.state.checks == before.checks
                if isinstance(command, CompleteRequest):
                    assert passed_required(session.state.checks) == len(REQUIRED_CHECKS)
        if session.status in TERMINAL_STATUSES:
            finished_as = finished_as or session.status
            assert session.status == finished_as
        assert_invariants(session, now, clock)


def comparable(view: SessionView) -> dict[str, Any]:
    """A session view without its clock readings (the workflow has its own clock)."""
    summary = view.summary
    return {
        "status": summary.status,
        "progress": summary.progress,
        "current_step_id": summary.current_step_id,
        "abort_reason": summary.abort_reason,
        "pause_reason": summary.pause_reason,
        "checks": [
            (r.seq, r.check_id, r.step_id, r.passed, r.value, r.note, r.recorded_by)
            for r in view.safety_checks
        ],
        "history": [(h.status, h.by, h.reason) for h in view.history],
    }


async def send(handle: SessionHandle, command: Command) -> SessionView | str:
    """Sends a command as the API does: the session after it, or the code it was refused with."""
    try:
        await send_command(handle, command, Deadline(scenarios.RPC_TIMEOUT))
        return await query_riding_out_transport_errors(handle)
    except WorkflowUpdateFailedError as refusal:
        assert isinstance(refusal.cause, ApplicationError), refusal.cause
        assert refusal.cause.type
        return refusal.cause.type
    except SessionClosed:
        return "finished"


async def query_riding_out_transport_errors(handle: SessionHandle) -> SessionView:
    """Reads the session; a connection reset by a loaded machine is retried, nothing else."""
    for _attempt in range(3):
        try:
            view: SessionView = await handle.query("get_session", result_type=SessionView)
            return view
        except RPCError as err:
            if err.status not in (RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE):
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("the session could not be read three times in a row")


@pytest.mark.usefixtures("worker")
@settings(max_examples=WORKFLOW_EXAMPLES, deadline=None)
@given(sequence=steps(finite_only=True, max_size=25))
async def test_the_workflow_accepts_and_refuses_exactly_what_the_domain_does(
    temporal_client: Client, settings: Settings, audit_log: AuditLog, sequence: list[Any]
) -> None:
    handle = await scenarios.start(temporal_client, settings.temporal_task_queue, OWNER.user_id)
    shadow, started = WorkSession.start(handle.id, OWNER.user_id, scenarios.SOP, datetime.now(UTC))
    events: list[AuditEvent] = [started]

    for _gap, command in sequence:
        outcome = await send(handle, command)
        if shadow.is_terminal and outcome == "finished":
            continue  # The workflow has closed; before that its validators answer.
        try:
            event = shadow.apply(command, datetime.now(UTC)).event
        except DomainError as refusal:
            assert outcome == refusal.code, command
            continue
        assert isinstance(outcome, SessionView), (command, outcome)
        assert comparable(outcome) == comparable(shadow.view())
        if event is not None:
            events.append(event)

    final = await query_riding_out_transport_errors(handle)
    assert comparable(final) == comparable(shadow.view())
    now = datetime.now(UTC)
    active, paused = durations(final.summary, now)
    wall = ((final.summary.ended_at or now) - final.summary.started_at).total_seconds()
    assert abs(active + paused - wall) <= DURATION_TOLERANCE

    async def every_accepted_change_audited_once() -> None:
        stored = await audit_log.for_session(handle.id)
        assert [(e.seq, e.type) for e in stored] == [(e.seq, e.type) for e in events]

    await assert_eventually(every_accepted_change_audited_once, timeout=15)

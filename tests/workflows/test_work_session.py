"""WorkSessionWorkflow on a real dev server, through the Temporal SDK."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from api.auth import User
from api.errors import ProblemError
from api.gateway import SessionGateway
from devstack.answers import passing_answers
from engine.client import register_search_attributes
from engine.sessions import Deadline, send_command
from runtime.settings import Settings
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from tests import scenarios
from tests.helpers import assert_eventually, start_dev_server, suggest_continue_as_new_after
from tests.helpers.workers import serving_alone
from tests.workflows.changed_workflows import AuditByActivity, OlderRelease
from worker import build_worker
from workflows.domain import (
    MAX_NOTE_LENGTH,
    MAX_REASON_LENGTH,
    MAX_SESSION_TEXT_BYTES,
    WorkSession,
)
from workflows.search_attributes import SESSION_STATUS
from workflows.shared import (
    Actor,
    AuditEventType,
    PauseRequest,
    RecordCheckRequest,
    ResumeRequest,
    SessionChange,
    SessionStatus,
    StartSessionInput,
)
from workflows.work_session import (
    AUDIT_FLUSH_AFTER,
    MAX_EVENTS_PER_RUN,
    MIN_EVENTS_WORTH_A_NEW_PAUSED_RUN,
    PAUSED_RUN_REPLACED_AFTER,
    STATUS_WITH_AUDIT_WRITE,
    WorkSessionWorkflow,
)

pytestmark = pytest.mark.usefixtures("worker")

# Low enough that a few dozen checks make the workflow continue as new.
CAN_THRESHOLD_EVENTS = 120
LOCAL_ACTIVITY_MARKER = "core_local_activity"


async def test_an_update_in_the_very_first_task_finds_the_session(
    temporal_client: Client, settings: Settings
) -> None:
    session_id = f"early-{uuid.uuid4()}"
    owner = Actor("early-bird", ["worker"])
    start = WithStartWorkflowOperation(
        WorkSessionWorkflow.run,
        StartSessionInput(session_id=session_id, worker_id=owner.user_id, sop=scenarios.SOP),
        id=session_id,
        task_queue=settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )

    change = await temporal_client.execute_update_with_start_workflow(
        WorkSessionWorkflow.record_check,
        RecordCheckRequest(owner, "breaker-off", passed=True),
        start_workflow_operation=start,
    )

    assert isinstance(change, SessionChange)
    assert change.summary.status == SessionStatus.IN_PROGRESS
    assert change.check is not None
    assert change.check.check_id == "breaker-off"


async def test_a_refused_update_never_enters_history(
    temporal_client: Client, settings: Settings
) -> None:
    handle = await scenarios.start(temporal_client, settings.temporal_task_queue)
    await scenarios.pause(handle)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await scenarios.check(handle, "breaker-off", passed=True)

    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == "invalid_transition"
    events = (await handle.fetch_history()).events
    accepted = [
        e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert len(accepted) == 1  # the pause only


async def test_search_attributes_and_memo_follow_every_transition(
    temporal_client: Client, settings: Settings
) -> None:
    handle = await scenarios.start(temporal_client, settings.temporal_task_queue)
    await scenarios.check(handle, "breaker-off", passed=True)
    await scenarios.pause(handle, "break")

    async def published() -> WorkflowExecutionDescription:
        description = await handle.describe()
        assert description.typed_search_attributes.get(SESSION_STATUS) == "PAUSED"
        summary = await description.memo_value("summary")
        assert summary["status"] == "PAUSED"
        assert summary["progress"]["checks_passed"] == 1
        assert summary["pause_reason"] == "break"
        return description

    # Published with the audit write that follows, due within AUDIT_FLUSH_AFTER.
    description = await assert_eventually(
        published, timeout=AUDIT_FLUSH_AFTER.total_seconds() + 1.5
    )
    assert await description.static_summary() == (
        f"{scenarios.SOP.title} · worker {scenarios.owner_of(handle).user_id}"
    )


async def test_a_busy_sessions_status_changes_reach_visibility_with_its_audit_write(
    temporal_client: Client, settings: Settings
) -> None:
    handle = await scenarios.start(temporal_client, settings.temporal_task_queue)
    await scenarios.check(handle, "breaker-off", passed=True)
    await scenarios.pause(handle, "break")
    await scenarios.resume(handle)
    await scenarios.pause(handle, "meter")
    await scenarios.abort(handle, "wrong press")
    await handle.result()

    events = (await handle.fetch_history()).events
    writing_tasks = {
        e.marker_recorded_event_attributes.workflow_task_completed_event_id
        for e in events
        if e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
    }
    status_tasks = [
        e.upsert_workflow_search_attributes_event_attributes.workflow_task_completed_event_id
        for e in events
        if "SessionStatus"
        in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    ]
    memo_tasks = [
        e.workflow_properties_modified_event_attributes.workflow_task_completed_event_id
        for e in events
        if e.HasField("workflow_properties_modified_event_attributes")
    ]
    # Each status change is published (memo and attribute) only in a task that writes the
    # audit, never in the task that answered it.
    assert status_tasks
    assert set(status_tasks) <= writing_tasks
    assert set(memo_tasks) <= writing_tasks


async def test_finished_sessions_return_their_final_state_and_write_every_audit_event(
    temporal_client: Client, settings: Settings, audit_log: AuditLog
) -> None:
    handle = await scenarios.full_lifecycle(temporal_client, settings.temporal_task_queue)

    final = await handle.result()
    assert final.summary.status == SessionStatus.COMPLETED
    assert [c.passed for c in final.safety_checks] == [True, False, True, True, False]

    events = await audit_log.for_session(handle.id)
    assert [e.seq for e in events] == list(range(1, 12))
    assert events[0].type == AuditEventType.SESSION_STARTED
    assert events[-1].type == AuditEventType.SESSION_COMPLETED
    assert sum(e.type == AuditEventType.CHECK_RECORDED for e in events) == 5


async def test_a_session_records_one_patch_marker_and_its_status_changes_restart_no_timer(
    temporal_client: Client, settings: Settings
) -> None:
    handle = await scenarios.full_lifecycle(temporal_client, settings.temporal_task_queue)

    events = (await handle.fetch_history()).events
    markers = [
        e.marker_recorded_event_attributes
        for e in events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert [m.marker_name for m in markers if m.marker_name != LOCAL_ACTIVITY_MARKER] == [
        "core_patch"
    ]
    assert STATUS_WITH_AUDIT_WRITE.encode() in markers[0].details["patch-data"].payloads[0].data
    # Four status changes come while an audit event waits for its timer: none cancels
    # it to start another for the same deadline.
    timers_by_task: dict[int, list[str]] = {}
    for event in events:
        if event.HasField("timer_started_event_attributes"):
            task = event.timer_started_event_attributes.workflow_task_completed_event_id
            timers_by_task.setdefault(task, []).append("started")
        if event.HasField("timer_canceled_event_attributes"):
            task = event.timer_canceled_event_attributes.workflow_task_completed_event_id
            timers_by_task.setdefault(task, []).append("cancelled")
    assert timers_by_task
    assert not [t for t in timers_by_task.values() if set(t) == {"started", "cancelled"}]


@pytest.mark.parametrize("ending", ["complete", "abort"])
async def test_an_ending_is_answered_before_its_audit_write_which_then_closes_the_workflow(
    temporal_client: Client, settings: Settings, audit_log: AuditLog, ending: str
) -> None:
    handle = await scenarios.start(temporal_client, settings.temporal_task_queue)
    for answer in passing_answers(scenarios.SOP):
        await scenarios.check(handle, answer.check_id, passed=answer.passed, value=answer.value)
    # The checks' batch is written; the ending's event is then the only one pending.
    await asyncio.sleep(1.5)
    if ending == "complete":
        answered = await scenarios.complete(handle)
        assert answered.summary.status == SessionStatus.COMPLETED
    else:
        answered = await scenarios.abort(handle, "wrong press")
        assert answered.summary.status == SessionStatus.ABORTED

    final = await handle.result()
    assert final.summary.status == answered.summary.status
    events = (await handle.fetch_history()).events
    kinds = [e.event_type for e in events]
    answered_at = max(
        i
        for i, k in enumerate(kinds)
        if k == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
    )
    written_at = max(i for i, k in enumerate(kinds) if k == EventType.EVENT_TYPE_MARKER_RECORDED)
    # The write came in a workflow task after the one that answered.
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED in kinds[answered_at:written_at]
    audit = await audit_log.for_session(handle.id)
    assert [e.type for e in audit].count(AuditEventType.CHECK_RECORDED) == len(final.safety_checks)
    assert audit[-1].type == (
        AuditEventType.SESSION_COMPLETED if ending == "complete" else AuditEventType.SESSION_ABORTED
    )
    assert [e.seq for e in audit] == list(range(1, len(audit) + 1))


@pytest.fixture(scope="module")
async def low_history_env(
    settings: Settings, services: object
) -> AsyncIterator[tuple[Client, str]]:
    env = await start_dev_server(*suggest_continue_as_new_after(CAN_THRESHOLD_EVENTS))
    try:
        await register_search_attributes(env.client, "default")
        engine = create_engine(settings.database_url)
        task_queue = f"can-{uuid.uuid4().hex[:8]}"
        worker_settings = settings.model_copy(update={"temporal_task_queue": task_queue})
        async with build_worker(
            env.client, worker_settings, AuditLog(create_transaction_factory(engine))
        ):
            yield env.client, task_queue
        await engine.dispose()
    finally:
        await env.shutdown()


async def test_continue_as_new_keeps_the_session_its_audit_trail_and_its_keys(
    low_history_env: tuple[Client, str], audit_log: AuditLog
) -> None:
    client, task_queue = low_history_env
    handle = await scenarios.start(client, task_queue)
    first_run = (await handle.describe()).run_id
    await scenarios.check(handle, "breaker-off", passed=True, key="before-can")
    await scenarios.pause(handle, "mid-way")
    await scenarios.resume(handle)
    await scenarios.many_checks(handle, 40)

    latest = client.get_workflow_handle_for(WorkSessionWorkflow.run, handle.id)

    async def continued_as_new() -> None:
        description = await latest.describe()
        assert description.run_id != first_run
        assert description.status == WorkflowExecutionStatus.RUNNING

    await assert_eventually(continued_as_new)

    repeated = await scenarios.check(handle, "breaker-off", passed=True, key="before-can")
    assert len(repeated.safety_checks) == 41
    view = await scenarios.pause(handle, "end")
    assert [c.seq for c in view.safety_checks] == list(range(1, 42))
    assert [h.status for h in view.history] == [
        SessionStatus.IN_PROGRESS,
        SessionStatus.PAUSED,
        SessionStatus.IN_PROGRESS,
        SessionStatus.PAUSED,
    ]

    async def audit_complete() -> None:
        events = await audit_log.for_session(handle.id)
        # start + 41 checks + pause + resume + pause
        assert [e.seq for e in events] == list(range(1, 46))

    await assert_eventually(audit_complete)

    async def listed_once() -> None:
        gateway = SessionGateway(client, Settings(temporal_task_queue=task_queue), audit_log)
        owner = scenarios.owner_of(handle).user_id
        summaries, _ = await gateway.list(
            caller=User(owner, frozenset({"worker"})),
            worker_id=owner,
            statuses=[],
            limit=50,
            page_token=None,
        )
        assert [s.id for s in summaries] == [handle.id]
        assert summaries[0].status == SessionStatus.PAUSED

    await assert_eventually(listed_once)
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) >= 2
    assert sum(r.status == WorkflowExecutionStatus.RUNNING for r in runs) == 1


async def test_started_state_matches_what_the_api_computes(
    temporal_client: Client, settings: Settings
) -> None:
    started_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    session_id = f"same-{uuid.uuid4()}"
    expected, _ = WorkSession.start(session_id, "w-same", scenarios.SOP, started_at)
    handle = await temporal_client.start_workflow(
        WorkSessionWorkflow.run,
        StartSessionInput(
            session_id=session_id, worker_id="w-same", sop=scenarios.SOP, started_at=started_at
        ),
        id=session_id,
        task_queue=settings.temporal_task_queue,
    )

    view = await handle.query(WorkSessionWorkflow.get_session)

    assert view == expected.view()


async def test_a_short_pause_stays_in_one_run_and_a_long_one_continues_in_a_fresh_run(
    temporal_client: Client, settings: Settings, audit_log: AuditLog
) -> None:
    handle = await scenarios.start(
        temporal_client, settings.temporal_task_queue, paused_run_after=timedelta(seconds=2)
    )
    first_run = (await handle.describe()).run_id
    await scenarios.check(handle, "breaker-off", passed=True, key="k-1")
    await scenarios.check(handle, "residual-v", value=30.0)
    await scenarios.many_checks(handle, 12)
    await scenarios.pause(handle, "waiting for parts")
    await asyncio.sleep(1)
    assert (await handle.describe()).run_id == first_run
    latest = temporal_client.get_workflow_handle_for(WorkSessionWorkflow.run, handle.id)

    async def fresh_run() -> int:
        description = await latest.describe()
        assert description.run_id != first_run
        assert description.status == WorkflowExecutionStatus.RUNNING
        return len((await latest.fetch_history()).events)

    events_in_fresh_run = await assert_eventually(fresh_run)
    # A handful, and too few to be worth replacing again while the pause lasts.
    assert events_in_fresh_run < MIN_EVENTS_WORTH_A_NEW_PAUSED_RUN

    view = await scenarios.resume(handle)
    assert view.summary.status == SessionStatus.IN_PROGRESS
    assert [c.check_id for c in view.safety_checks][:2] == ["breaker-off", "residual-v"]
    assert len(view.safety_checks) == 14
    assert view.summary.paused_seconds_closed >= 2
    again = await scenarios.check(handle, "breaker-off", passed=True, key="k-1")
    assert len(again.safety_checks) == 14

    async def audit_in_order() -> None:
        events = await audit_log.for_session(handle.id)
        assert [e.seq for e in events] == list(range(1, 18))
        assert events[15].type == AuditEventType.SESSION_PAUSED

    await assert_eventually(audit_in_order)


async def test_a_paused_session_moves_to_a_fresh_run_once_its_pause_is_due_to_be_written(
    temporal_client: Client, settings: Settings, audit_log: AuditLog
) -> None:
    handle = await scenarios.start(temporal_client, settings.temporal_task_queue)
    first_run = (await handle.describe()).run_id
    await scenarios.check(handle, "breaker-off", passed=True, key="k-1")
    await scenarios.many_checks(handle, 3)
    await scenarios.pause(handle, "waiting for parts")
    # A resume sent right after the pause meets the same run, which a second pause keeps.
    await scenarios.resume(handle)
    assert (await handle.describe()).run_id == first_run
    await scenarios.pause(handle, "parts are late")
    paused_at = datetime.now(UTC)
    latest = temporal_client.get_workflow_handle_for(WorkSessionWorkflow.run, handle.id)

    async def fresh_run() -> str:
        description = await latest.describe()
        assert description.run_id != first_run
        assert description.status == WorkflowExecutionStatus.RUNNING
        return description.run_id

    second_run = await assert_eventually(
        fresh_run, timeout=PAUSED_RUN_REPLACED_AFTER.total_seconds() + 10
    )
    assert datetime.now(UTC) - paused_at >= PAUSED_RUN_REPLACED_AFTER

    async def pause_written_once() -> None:
        events = await audit_log.for_session(handle.id)
        assert [e.seq for e in events] == list(range(1, 9))
        assert events[-1].type == AuditEventType.SESSION_PAUSED
        assert events[-1].data.get("reason") == "parts are late", events[-1].data

    await assert_eventually(pause_written_once)
    # The fresh run is too small to move again: the pause goes on in it however long it lasts.
    await asyncio.sleep(2)
    assert (await latest.describe()).run_id == second_run
    view = await scenarios.resume(handle)
    assert view.summary.status == SessionStatus.IN_PROGRESS
    assert len(view.safety_checks) == 4
    again = await scenarios.check(handle, "breaker-off", passed=True, key="k-1")
    assert len(again.safety_checks) == 4


async def test_a_session_at_its_bounds_stays_readable_pausable_and_completable(
    low_history_env: tuple[Client, str], audit_log: AuditLog
) -> None:
    client, task_queue = low_history_env
    handle = await scenarios.start(client, task_queue)
    widest_note = "\U0001f9ef" * MAX_NOTE_LENGTH
    refused: list[str] = []
    while not refused:
        try:
            await send_command(
                handle,
                RecordCheckRequest(
                    scenarios.owner_of(handle), "breaker-off", passed=True, note=widest_note
                ),
                Deadline(scenarios.RPC_TIMEOUT),
            )
        except WorkflowUpdateFailedError as err:
            assert isinstance(err.cause, ApplicationError)
            refused.append(str(err.cause.type))
    assert refused == ["session_limit_reached"]
    await scenarios.many_checks(handle, 60)

    view = await scenarios.pause(handle, "\U0001f9ef" * MAX_REASON_LENGTH)
    assert view.summary.status == SessionStatus.PAUSED
    await scenarios.resume(handle)
    for check_id in ("try-start",):
        await scenarios.check(handle, check_id, passed=True)
    await scenarios.check(handle, "residual-v", value=1.0)
    final = await scenarios.complete(handle)

    assert final.summary.status == SessionStatus.COMPLETED
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) >= 2, "the bounded state crossed continue-as-new"
    noted = [c for c in final.safety_checks if c.note == widest_note]
    assert len(noted) == MAX_SESSION_TEXT_BYTES // (4 * MAX_NOTE_LENGTH + 2)


async def test_updates_sent_while_a_run_continues_as_new_all_land_through_the_gateway(
    low_history_env: tuple[Client, str], audit_log: AuditLog
) -> None:
    client, task_queue = low_history_env
    handle = await scenarios.start(client, task_queue)
    owner = User(scenarios.owner_of(handle).user_id, frozenset({"worker"}))
    gateway = SessionGateway(client, Settings(temporal_task_queue=task_queue), audit_log)
    first_run = (await handle.describe()).run_id

    async def lane(number: int) -> None:
        # Lanes overlap, so updates keep arriving while a run hands over to the next.
        for i in range(12):
            command = RecordCheckRequest(
                owner.as_actor(), "residual-v", None, float(i), None, f"lane{number}-{i}"
            )
            answer = (await gateway.send(owner, handle.id, command)).view
            assert answer.summary.status == SessionStatus.IN_PROGRESS

    await asyncio.gather(*(lane(n) for n in range(8)))
    paused = (
        await gateway.send(owner, handle.id, PauseRequest(owner.as_actor(), "burst over"))
    ).view
    read_right_after = await gateway.get(owner, handle.id)

    assert paused.summary.status == SessionStatus.PAUSED
    assert len(read_right_after.safety_checks) == 96
    assert (await handle.describe()).run_id != first_run


async def histories_of_runs(
    client: Client, workflow_id: str, first_run: str
) -> list[WorkflowHistory]:
    """The history of every run of a workflow, following its continue-as-new chain."""
    histories: list[WorkflowHistory] = []
    run_id = first_run
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        continued = last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        attributes = last.workflow_execution_continued_as_new_event_attributes
        run_id = attributes.new_execution_run_id if continued else ""
    return histories


def writes_started_once_long(history: WorkflowHistory) -> list[int]:
    """Audit writes a run decided on after it had reached MAX_EVENTS_PER_RUN events.

    A write is an activity or a local activity's marker; the workflow task that
    decided on it saw the history up to its start event, just before its completion.
    """
    decided_in: list[tuple[int, int]] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            completed = (
                event.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
            )
            decided_in.append((event.event_id, completed))
        marker = event.marker_recorded_event_attributes
        if marker.marker_name == LOCAL_ACTIVITY_MARKER:
            decided_in.append((event.event_id, marker.workflow_task_completed_event_id))
    return [write for write, completed in decided_in if completed - 1 >= MAX_EVENTS_PER_RUN]


@pytest.fixture(params=["audit in the workflow task", "audit by activity"])
async def any_audit_path(
    request: pytest.FixtureRequest, temporal_client: Client, settings: Settings, audit_log: AuditLog
) -> AsyncIterator[str]:
    """A task queue served by today's workflow, or by one whose runs began before audit
    writes moved into the workflow task (they keep the activity until they continue as new)."""
    if request.param == "audit in the workflow task":
        yield settings.temporal_task_queue
        return
    async with serving_alone(
        temporal_client, AuditByActivity, audit_log, queue_prefix="audit-activity"
    ) as task_queue:
        yield task_queue


async def test_a_steady_stream_of_checks_still_continues_as_new_near_the_bound(
    temporal_client: Client, any_audit_path: str, audit_log: AuditLog
) -> None:
    handle = await scenarios.start(temporal_client, any_audit_path)
    first_run = (await handle.describe()).run_id
    # No pause between checks: some update reaches the run during every audit write.
    sent = await scenarios.steady_stream(handle, senders=6, checks_per_sender=40)
    await scenarios.pause(handle, "stream over")

    runs = await histories_of_runs(temporal_client, handle.id, first_run)
    lengths = [len(run.events) for run in runs]
    assert len(lengths) >= 4, lengths
    # Once long, a run starts no further write: it goes past the bound only by what
    # arrives while the write then in flight finishes (a slow write on a busy machine
    # has let in ~90 events).
    assert [writes_started_once_long(run) for run in runs] == [[] for _ in runs], lengths
    assert max(lengths) <= 2 * MAX_EVENTS_PER_RUN, lengths

    async def each_check_audited_once() -> None:
        events = await audit_log.for_session(handle.id)
        # start + every check + the pause
        assert [e.seq for e in events] == list(range(1, len(sent) + 3))
        checks = [e for e in events if e.type == AuditEventType.CHECK_RECORDED]
        assert sorted(str(e.data["note"]) for e in checks) == sorted(sent)

    await assert_eventually(each_check_audited_once)


@pytest.fixture
async def older_release(temporal_client: Client, audit_log: AuditLog) -> AsyncIterator[str]:
    """A worker of an older release, whose sessions continue as new on every pause."""
    async with serving_alone(
        temporal_client, OlderRelease, audit_log, queue_prefix="older"
    ) as task_queue:
        yield task_queue


async def test_a_burst_around_a_pause_of_an_older_release_gets_only_the_contract_s_answers(
    temporal_client: Client, older_release: str, audit_log: AuditLog
) -> None:
    gateway = SessionGateway(
        temporal_client, Settings(temporal_task_queue=older_release), audit_log
    )
    outcomes: list[str] = []
    for trial in range(4):
        handle = await scenarios.start(temporal_client, older_release)
        owner = User(scenarios.owner_of(handle).user_id, frozenset({"worker"}))
        await gateway.send(
            owner, handle.id, RecordCheckRequest(owner.as_actor(), "breaker-off", True)
        )

        pause = asyncio.create_task(
            gateway.send(owner, handle.id, PauseRequest(owner.as_actor(), "burst"))
        )
        outcomes += await asyncio.gather(
            *(check_soon(gateway, owner, handle.id, f"t{trial}-{i}") for i in range(4))
        )
        paused = (await pause).view
        resumed = (await gateway.send(owner, handle.id, ResumeRequest(owner.as_actor()))).view
        assert paused.summary.status == SessionStatus.PAUSED
        assert resumed.summary.status == SessionStatus.IN_PROGRESS

    assert set(outcomes) <= {"recorded", "invalid_transition"}


async def check_soon(gateway: SessionGateway, owner: User, session_id: str, key: str) -> str:
    """Records a check 20 ms from now: the code it was refused with, or "recorded"."""
    await asyncio.sleep(0.02)
    try:
        command = RecordCheckRequest(owner.as_actor(), "residual-v", None, 1.0, None, key)
        await gateway.send(owner, session_id, command)
    except ProblemError as problem:
        return str(problem.code)
    return "recorded"

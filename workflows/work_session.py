"""WorkSessionWorkflow: the durable shell around one `WorkSession`.

Every rule lives in `workflows.domain`; this module only turns Temporal messages
into domain calls, keeps visibility current and drains audit events to the
audit activity. Workflow code must stay deterministic: clocks come from
`workflow.now()` and any change of logic needs `workflow.patched` plus a replay
test over the stored histories in `tests/histories/`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditActivities
    from workflows import search_attributes as sa
    from workflows.domain import DomainError, WorkSession
    from workflows.shared import (
        SUMMARY_MEMO_KEY,
        AbortRequest,
        AuditEvent,
        CompleteRequest,
        PauseRequest,
        RecordCheckRequest,
        ResumeRequest,
        SessionStatus,
        SessionSummary,
        SessionView,
        StartSessionInput,
    )

AUDIT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    # Audit evidence must land eventually: retry until the database is back.
    maximum_attempts=0,
)

# Patch ids: each marks a change of workflow logic that old histories must not see.
CONTINUE_AS_NEW_WHEN_PAUSED = "continue-as-new-when-paused"

T = TypeVar("T")


def _rules(call: Callable[[], T]) -> T:
    """Runs a domain call; a refusal becomes an ApplicationError that fails only the update."""
    try:
        return call()
    except DomainError as err:
        raise ApplicationError(err.message, err.details, type=err.code, non_retryable=True) from err


@workflow.defn
class WorkSessionWorkflow:
    """One work session, from start to completion or abort."""

    @workflow.init
    def __init__(self, input: StartSessionInput) -> None:
        # State is built here, not in run(), so an update that arrives in the
        # very first workflow task already finds a session to act on.
        self._pending_audit: list[AuditEvent] = list(input.pending_audit)
        if input.carried_state is not None:
            self._session = WorkSession(input.carried_state)
        else:
            self._session, started = WorkSession.start(
                input.session_id,
                input.worker_id,
                input.sop,
                input.started_at or workflow.now(),
            )
            self._pending_audit.append(started)
        self._paused_in_this_run = False
        self._show_details(self._session.summary())

    @workflow.run
    async def run(self, input: StartSessionInput) -> SessionView:
        """Waits for messages until the session is finished, writing audit events as they come."""
        while True:
            await workflow.wait_condition(
                lambda: (
                    bool(self._pending_audit)
                    or self._session.is_terminal
                    or self._paused_in_this_run
                    or workflow.info().is_continue_as_new_suggested()
                )
            )
            if workflow.info().is_continue_as_new_suggested() and not self._session.is_terminal:
                await self._continue_as_new(input)
            if self._pending_audit:
                await self._flush_audit()
                continue
            if self._paused_in_this_run:
                self._paused_in_this_run = False
                # A paused session may wait for weeks and be evicted from every
                # worker's cache; a fresh run makes its resume replay a handful of
                # events instead of the whole run so far.
                if self._session.status == SessionStatus.PAUSED and workflow.patched(
                    CONTINUE_AS_NEW_WHEN_PAUSED
                ):
                    await self._continue_as_new(input)
                continue
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self._pending_audit:
                return self._session.view()

    async def _continue_as_new(self, input: StartSessionInput) -> NoReturn:
        # Let in-flight handlers finish so no accepted update is cut off;
        # audit events not yet written travel with the state.
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            StartSessionInput(
                session_id=input.session_id,
                worker_id=input.worker_id,
                sop=input.sop,
                carried_state=self._session.state,
                pending_audit=self._pending_audit,
            ),
            memo={SUMMARY_MEMO_KEY: self._session.summary()},
        )

    async def _flush_audit(self) -> None:
        batch, self._pending_audit = self._pending_audit, []
        await workflow.execute_activity_method(
            AuditActivities.append_audit_events,
            batch,
            # A write takes milliseconds; a lost worker's attempt is retried after this.
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=AUDIT_RETRY,
        )

    def _changed(self, event: AuditEvent | None, status_changed: bool) -> SessionView:
        if event is None:
            return self._session.view()
        self._pending_audit.append(event)
        summary = self._session.summary()
        workflow.upsert_memo({SUMMARY_MEMO_KEY: summary})
        if status_changed:
            workflow.upsert_search_attributes([sa.SESSION_STATUS.value_set(summary.status.value)])
        self._show_details(summary)
        return self._session.view()

    @staticmethod
    def _show_details(summary: SessionSummary) -> None:
        # Static summaries do not survive continue-as-new; current details are set per run.
        workflow.set_current_details(
            f"**{summary.sop_title}** · worker `{summary.worker_id}` · "
            f"**{summary.status.value}**: {summary.progress.checks_passed} of "
            f"{summary.progress.checks_required} required checks passed"
        )

    @workflow.query
    def get_session(self) -> SessionView:
        """Returns the whole session."""
        return self._session.view()

    @workflow.update
    def pause(self, request: PauseRequest) -> SessionView:
        """Pauses the session."""
        event = _rules(lambda: self._session.pause(request.actor, request.reason, workflow.now()))
        self._paused_in_this_run = True
        return self._changed(event, status_changed=True)

    @pause.validator
    def validate_pause(self, request: PauseRequest) -> None:
        _rules(lambda: self._session.check_pause(request.actor, request.reason))

    @workflow.update
    def resume(self, request: ResumeRequest) -> SessionView:
        """Resumes a paused session."""
        event = _rules(lambda: self._session.resume(request.actor, workflow.now()))
        return self._changed(event, status_changed=True)

    @resume.validator
    def validate_resume(self, request: ResumeRequest) -> None:
        _rules(lambda: self._session.check_resume(request.actor))

    @workflow.update
    def abort(self, request: AbortRequest) -> SessionView:
        """Aborts the session for good."""
        event = _rules(lambda: self._session.abort(request.actor, request.reason, workflow.now()))
        return self._changed(event, status_changed=True)

    @abort.validator
    def validate_abort(self, request: AbortRequest) -> None:
        _rules(lambda: self._session.check_abort(request.actor, request.reason))

    @workflow.update
    def complete(self, request: CompleteRequest) -> SessionView:
        """Completes the session."""
        event = _rules(lambda: self._session.complete(request.actor, workflow.now()))
        return self._changed(event, status_changed=True)

    @complete.validator
    def validate_complete(self, request: CompleteRequest) -> None:
        _rules(lambda: self._session.check_complete(request.actor))

    @workflow.update
    def record_check(self, request: RecordCheckRequest) -> SessionView:
        """Records one answer to a safety check."""
        event = _rules(
            lambda: self._session.record_check(
                request.actor,
                request.check_id,
                request.passed,
                request.value,
                request.note,
                workflow.now(),
                request.idempotency_key,
            )
        )
        return self._changed(event, status_changed=False)

    @record_check.validator
    def validate_record_check(self, request: RecordCheckRequest) -> None:
        _rules(
            lambda: self._session.check_record(
                request.actor,
                request.check_id,
                request.passed,
                request.value,
                request.note,
                request.idempotency_key,
            )
        )

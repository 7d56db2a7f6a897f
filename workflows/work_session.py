"""WorkSessionWorkflow: the durable shell around one `WorkSession`.

Every rule lives in `workflows.domain`; this module only turns Temporal messages
into domain calls, keeps visibility current and drains audit events to the
audit activity. Workflow code must stay deterministic: clocks come from
`workflow.now()` and any change of logic needs `workflow.patched` plus a replay
test over the stored histories in `tests/histories/`.

Runs that recorded the `compact-history` patch answer updates with a
`SessionChange`, write audit events in batches and publish the list memo when
they write; they continue as new only when the run grows long or the session
has been paused (soon after its pause since `continue-as-new-once-paused`,
after an hour before). Since `audit-event-in-answer` a run answers a change that
comes after a quiet second, when its sender writes audit events (the API, as it
answers), with the change's event; the run's own write of such an event makes
sure, due `AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER` later, and lists show the change
at once. A run that records `folded-patches` takes all of these as recorded and
keeps the timer of its next deadline while that deadline stands; one that records
`status-with-audit-write` does the same and publishes a status change, like a check's
progress, with the audit write that follows. Runs started before
`compact-history` keep their own model, isolated in `workflows.whole_views`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditActivities
    from activities.cancellation import CancelRequests
    from workflows import search_attributes as sa
    from workflows.domain import DomainError, WorkSession
    from workflows.shared import (
        SUMMARY_MEMO_KEY,
        AbortRequest,
        AuditEvent,
        AuditEventType,
        CompleteRequest,
        PauseRequest,
        RecordCheckRequest,
        ResumeRequest,
        SessionChange,
        SessionCommand,
        SessionStatus,
        SessionSummary,
        SessionView,
        SopSnapshot,
        StartSessionInput,
        TemporalClosure,
        TemporalEnding,
        WorkflowRun,
    )
    from workflows.whole_views import WholeViews

AUDIT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    # Audit evidence must land eventually: retry until the database is back.
    maximum_attempts=0,
)

# Patch ids: each marks a change of workflow logic that old histories must not see
# (`continue-as-new-when-paused` belongs to the older model, in `workflows.whole_views`).
COMPACT_HISTORY = "compact-history"
CANCEL_IS_AN_ABORT = "cancel-is-an-abort"
AUDIT_IN_WORKFLOW_TASK = "audit-in-workflow-task"
CONTINUE_AS_NEW_BEFORE_AUDIT = "continue-as-new-before-audit"
CONTINUE_AS_NEW_ONCE_PAUSED = "continue-as-new-once-paused"
ANSWER_BEFORE_FINAL_AUDIT = "answer-before-final-audit"
AUDIT_EVENT_IN_ANSWER = "audit-event-in-answer"
# A run that records this one marker takes every patch above (`PATCHES_FOLDED_IN`) as
# recorded without a marker of its own (each marker costs two history events and a
# visibility write, the engine's `TemporalChangeVersion` upsert, and a run asked up to
# five), and keeps its audit deadline's timer while the deadline stands.
FOLDED_PATCHES = "folded-patches"
# A run that records this marker instead takes `folded-patches` and everything it stands
# for, and shows a status change in lists with the audit write that follows within
# `AUDIT_FLUSH_AFTER`, sharing its memo and attribute upserts, not in the task that
# answers the change: on the dev server each upsert is a visibility write that costs about
# half what the bare engine spends on a whole update. A change after a quiet second that
# the API writes still shows at once.
STATUS_WITH_AUDIT_WRITE = "status-with-audit-write"
PATCHES_FOLDED_IN = frozenset(
    {
        COMPACT_HISTORY,
        CANCEL_IS_AN_ABORT,
        AUDIT_IN_WORKFLOW_TASK,
        CONTINUE_AS_NEW_BEFORE_AUDIT,
        CONTINUE_AS_NEW_ONCE_PAUSED,
        ANSWER_BEFORE_FINAL_AUDIT,
        AUDIT_EVENT_IN_ANSWER,
    }
)

# Audit events wait at most this long to be written, unless a batch fills first.
AUDIT_FLUSH_AFTER = timedelta(seconds=1)
# An event its sender writes itself (the API, as it answers) waits this long for
# the run's own write, which only makes sure: a session changing every few seconds
# then pays one write for several changes, not a workflow task and a write each.
AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER = timedelta(seconds=10)
AUDIT_BATCH_SIZE = 6
# Replay costs ~0.85 ms an event here: a run this long resumes in ~0.13 s once evicted.
MAX_EVENTS_PER_RUN = 150
# Runs started before `continue-as-new-once-paused`: a session paused this long is
# likely evicted, and a fresh run makes its resume replay a handful of events.
CONTINUE_AS_NEW_WHEN_PAUSED_FOR = timedelta(hours=1)
# A run shorter than this replays in milliseconds: not worth replacing.
MIN_EVENTS_WORTH_A_NEW_RUN = 50
# Runs since that patch move to a fresh run once paused this long. A paused session is
# the one a worker evicts first, its cache full of sessions in use, and every restart of
# the worker evicts it too. Not at once: an update that meets a run in the instant it
# moves waits about a second for the fresh run (the dev server holds it), and a pause
# taken back within seconds should not pay that, nor the move itself.
PAUSED_RUN_REPLACED_AFTER = timedelta(seconds=10)
MIN_EVENTS_WORTH_A_NEW_PAUSED_RUN = 20


class PausedRunRule(NamedTuple):
    """When a paused session's run moves to a fresh one: this long after the pause,
    if it holds at least this many events; and whether audit events still pending
    then go with the state (nothing streams in while a session is paused, so the
    current rule writes them first, in the task that moves)."""

    after: timedelta
    min_events: int
    hands_audit_over: bool


PAUSED_RUN_RULE = PausedRunRule(
    PAUSED_RUN_REPLACED_AFTER, MIN_EVENTS_WORTH_A_NEW_PAUSED_RUN, hands_audit_over=False
)
PAUSED_RUN_RULE_BEFORE_THE_PATCH = PausedRunRule(
    CONTINUE_AS_NEW_WHEN_PAUSED_FOR, MIN_EVENTS_WORTH_A_NEW_RUN, hands_audit_over=True
)

T = TypeVar("T")


def _rules(call: Callable[[], T]) -> T:
    """Runs a domain call; a refusal becomes an ApplicationError that fails only the update."""
    try:
        return call()
    except DomainError as err:
        raise ApplicationError(err.message, err.details, type=err.code, non_retryable=True) from err


def _is_cancellation(err: BaseException) -> bool:
    """A cancellation requested in Temporal, as it reaches the run: directly, or as the
    failure of the activity it stopped."""
    if isinstance(err, asyncio.CancelledError):
        return True
    requested = workflow.cancellation_reason() is not None
    return requested and isinstance(err, ActivityError) and isinstance(err.cause, CancelledError)


@workflow.defn
class WorkSessionWorkflow:
    """One work session, from start to completion or abort."""

    @workflow.init
    def __init__(self, input: StartSessionInput) -> None:
        # State is built here, not in run(), so an update that arrives in the
        # very first workflow task already finds a session to act on.
        # Replay-safe: with the activity's written count it gives the audit backlog.
        self._audit_events_accepted = workflow.metric_meter().create_counter(
            "work_session_audit_events_accepted",
            "Audit events accepted by sessions; the backlog is this minus those written.",
        )
        self._pending_audit: list[AuditEvent] = list(input.pending_audit)
        # Events the previous run handed over are written before this run hands any on.
        self._handed_over_audit_unwritten = bool(input.pending_audit)
        self._audit_in_flight: list[AuditEvent] = []
        if input.carried_state is not None:
            # The SOP travels once, in `input.sop`; the carried copy may be a stub.
            self._session = WorkSession(dataclasses.replace(input.carried_state, sop=input.sop))
        else:
            self._session, started = WorkSession.start(
                input.session_id,
                input.worker_id,
                input.sop,
                input.started_at or workflow.now(),
                input.worker_name,
            )
            self._pending_audit.append(started)
            self._audit_events_accepted.add(1)
        self._publish_now = False
        # Asked first, so that a run started before either never takes it.
        self._status_with_audit_write = workflow.patched(STATUS_WITH_AUDIT_WRITE)
        self._patches_folded = self._status_with_audit_write or workflow.patched(FOLDED_PATCHES)
        # Only runs started before `compact-history` keep that release's model.
        self._whole_views = None if self._patched(COMPACT_HISTORY) else WholeViews(self._session)
        # Runs that recorded this patch write audit batches with a local activity, inside
        # the workflow task that flushes: no activity task through the server and no
        # second workflow task per batch. Older runs keep the activity they scheduled.
        self._audit_in_task = self._patched(AUDIT_IN_WORKFLOW_TASK)
        # A test's shorter pause before a fresh run, applied to whichever rule the run takes.
        self._paused_run_after_input = (
            None
            if input.paused_run_after_seconds is None
            else timedelta(seconds=input.paused_run_after_seconds)
        )
        # Patches asked where a run first needs them, so that their markers (and the
        # engine's search attribute upsert with each) land once a session pauses or
        # ends, not in the first task of every run.
        self._paused_run_rule: PausedRunRule | None = None
        self._final_audit_after_answer: bool | None = None
        self._answers_carry_audit: bool | None = None
        # The timer that wakes the run at its next deadline, and that deadline.
        self._deadline_timer: asyncio.Task[None] | None = None
        self._deadline_timer_for: datetime | None = None
        # Sequence numbers of pending events their callers write at once.
        self._audit_written_by_callers: set[int] = set()
        self._published = self._session.summary()
        self._show_details(self._published)

    @workflow.run
    async def run(self, input: StartSessionInput) -> SessionView:
        """Waits for messages until the session is finished, writing audit events as they come.

        A cancellation requested in Temporal (its Web UI, CLI or any client) aborts
        the session; the workflow then writes the audit trail and completes.
        """
        try:
            if self._whole_views is not None:
                return await self._whole_views.run(
                    lambda: bool(self._pending_audit),
                    self._flush_audit,
                    lambda: self._continue_as_new(input),
                )
            return await self._run_compact(input)
        except (asyncio.CancelledError, ActivityError) as err:
            # Before this patch a cancellation closed the workflow as Canceled.
            if not _is_cancellation(err) or not self._patched(CANCEL_IS_AN_ABORT):
                raise
        await self._abort_on_cancellation()
        return await self._run_compact(input)

    async def _abort_on_cancellation(self) -> None:
        # The abort comes before asking the history who requested it, so that a read or
        # a change sent right after the cancel request already meets an aborted session.
        ending = TemporalEnding(
            TemporalClosure.CANCELLED, workflow.now(), None, workflow.cancellation_reason() or None
        )
        event = self._session.end_in_temporal(ending, workflow.now())
        if event is None:
            return
        self._show_details(self._session.summary())
        identity = await self._cancel_requester()
        if identity is not None:
            event = self._session.name_who_ended_it(
                event, dataclasses.replace(ending, identity=identity)
            )
            self._show_details(self._session.summary())
        self._pending_audit.append(event)
        self._audit_events_accepted.add(1)
        self._publish_now = True

    async def _cancel_requester(self) -> str | None:
        info = workflow.info()
        try:
            return await workflow.execute_activity_method(
                CancelRequests.identify_cancel_request,
                WorkflowRun(info.workflow_id, info.run_id),
                start_to_close_timeout=timedelta(seconds=10),
                # Who asked is worth a few tries, not a session left unaborted.
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError:
            return None

    async def _run_compact(self, input: StartSessionInput) -> SessionView:
        while True:
            self._choose_rules_for_the_status()
            if self._publish_now:
                self._publish()
            if self._hand_pending_audit_to_next_run():
                # Published as a write would: the next run takes its state as published.
                self._publish()
                await self._continue_as_new(input)
            if self._pending_audit and self._audit_due():
                await self._write_audit()
                continue
            if self._session.is_terminal and self._pending_audit:
                # Written when due, in a task after the one that answered the change.
                await self._wait_for_work()
                continue
            if self._session.is_terminal:
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() or bool(self._pending_audit)
                )
                if not self._pending_audit:
                    return self._session.view()
                continue
            if self._continue_as_new_due():
                await self._continue_as_new(input)
            await self._wait_for_work()

    def _patched(self, patch_id: str) -> bool:
        """Whether the run takes a patch folded into `folded-patches`, which
        `status-with-audit-write` includes (no other patch is folded in)."""
        if patch_id not in PATCHES_FOLDED_IN:
            raise ValueError(f"{patch_id} is not folded into {FOLDED_PATCHES}")
        return self._patches_folded or workflow.patched(patch_id)

    async def _wait_for_work(self) -> None:
        deadline = self._next_deadline()
        if self._patches_folded:
            timer = self._timer_until(deadline)
            await workflow.wait_condition(
                lambda: (
                    self._must_act()
                    or self._next_deadline() != deadline
                    or (timer is not None and timer.done())
                )
            )
            return
        timeout = None if deadline is None else deadline - workflow.now()
        try:
            # A new deadline (the first pending event, say) needs a timer of its own.
            await workflow.wait_condition(
                lambda: self._must_act() or self._next_deadline() != deadline,
                timeout=None if timeout is None else max(timeout, timedelta(milliseconds=1)),
            )
        except TimeoutError:
            pass

    def _timer_until(self, deadline: datetime | None) -> asyncio.Task[None] | None:
        """The timer that fires at `deadline`, kept while the deadline stands: a status
        change that wakes the run costs no timer cancelled and started again."""
        timer = self._deadline_timer
        if timer is not None and (timer.done() or self._deadline_timer_for != deadline):
            timer.cancel()
            timer = None
        if timer is None and deadline is not None:
            wait = max(deadline - workflow.now(), timedelta(milliseconds=1))
            timer = asyncio.create_task(asyncio.sleep(wait.total_seconds()))
        self._deadline_timer, self._deadline_timer_for = timer, deadline
        return timer

    def _choose_rules_for_the_status(self) -> None:
        if self._session.status == SessionStatus.PAUSED and self._paused_run_rule is None:
            rule = (
                PAUSED_RUN_RULE
                if self._patched(CONTINUE_AS_NEW_ONCE_PAUSED)
                else PAUSED_RUN_RULE_BEFORE_THE_PATCH
            )
            if self._paused_run_after_input is not None:
                rule = rule._replace(after=self._paused_run_after_input)
            self._paused_run_rule = rule
        if self._session.is_terminal and self._final_audit_after_answer is None:
            # Before this patch the final audit write went in the task that answered the
            # completion or abort, which held the answer back until the write was done.
            self._final_audit_after_answer = self._patched(ANSWER_BEFORE_FINAL_AUDIT)

    def _must_act(self) -> bool:
        # An ending not yet seen by the run loop acts, so that the loop wakes and chooses.
        return (
            self._publish_now
            or len(self._pending_audit) >= AUDIT_BATCH_SIZE
            or (self._session.is_terminal and not self._final_audit_after_answer)
            or self._run_is_long()
        )

    def _audit_due(self) -> bool:
        return (
            self._must_act()
            or workflow.now() >= self._audit_deadline()
            or self._continue_as_new_due()
        )

    def _hand_pending_audit_to_next_run(self) -> bool:
        """Whether to continue as new now and let the pending audit events go with the state.

        Under a steady stream of updates some update lands during every audit write,
        so a run that wrote its pending events before continuing as new never got to
        continue as new (one run grew to 800 events for 240 checks). Each event is
        handed over at most once: a run writes what it was handed before it hands
        on anything, so an event is written when due (`_audit_deadline`), or after
        the write then in flight and at most one hand-over to a fresh run,
        whichever is later.
        """
        return (
            bool(self._pending_audit)
            and not self._handed_over_audit_unwritten
            and not self._session.is_terminal
            and self._moves_with_audit_handed_over()
            and self._patched(CONTINUE_AS_NEW_BEFORE_AUDIT)
        )

    def _run_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= MAX_EVENTS_PER_RUN
        )

    def _paused_until(self) -> datetime | None:
        """When a paused session is worth a fresh run, if it is."""
        paused_at = self._session.state.paused_at
        if (
            self._session.status != SessionStatus.PAUSED
            or paused_at is None
            or self._paused_run_rule is None
        ):
            return None
        if workflow.info().get_current_history_length() < self._paused_run_rule.min_events:
            return None
        return paused_at + self._paused_run_rule.after

    def _paused_move_due(self) -> bool:
        paused_until = self._paused_until()
        return paused_until is not None and workflow.now() >= paused_until

    def _continue_as_new_due(self) -> bool:
        return self._run_is_long() or self._paused_move_due()

    def _moves_with_audit_handed_over(self) -> bool:
        """Whether the run is due to continue as new in a way that hands its pending
        audit events to the next run: grown long, or paused under a rule that does."""
        rule = self._paused_run_rule
        return self._run_is_long() or (
            self._paused_move_due() and rule is not None and rule.hands_audit_over
        )

    def _next_deadline(self) -> datetime | None:
        deadlines = [self._audit_deadline()] if self._pending_audit else []
        paused_until = self._paused_until()
        if paused_until is not None:
            deadlines.append(paused_until)
        return min(deadlines, default=None)

    def _audit_deadline(self) -> datetime:
        """When the pending audit events are due: `AUDIT_FLUSH_AFTER` after the oldest, or
        later for the events whose callers write them at once."""
        return min(
            event.at
            + (
                AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER
                if event.seq in self._audit_written_by_callers
                else AUDIT_FLUSH_AFTER
            )
            for event in self._pending_audit
        )

    async def _write_audit(self) -> None:
        """Writes the pending audit events, publishing the list memo with them."""
        self._publish()
        await self._flush_audit()
        self._handed_over_audit_unwritten = False

    def _publish(self) -> None:
        """Brings the list memo and the search attributes up to date."""
        self._publish_now = False
        summary = self._session.summary()
        if summary != self._published:
            workflow.upsert_memo({SUMMARY_MEMO_KEY: summary})
            updates: list[SearchAttributeUpdate[Any]] = []
            if summary.status != self._published.status:
                updates.append(sa.SESSION_STATUS.value_set(summary.status.value))
            if summary.progress.checks_failed != self._published.progress.checks_failed:
                updates.append(sa.FAILED_CHECKS.value_set(summary.progress.checks_failed))
            if updates:
                workflow.upsert_search_attributes(updates)
            self._published = summary

    async def _continue_as_new(self, input: StartSessionInput) -> NoReturn:
        # Let in-flight handlers finish so no accepted update is cut off;
        # audit events not yet written travel with the state.
        await workflow.wait_condition(workflow.all_handlers_finished)
        # The SOP goes once, in `sop`: twice could pass the engine's payload limit.
        sop = self._session.state.sop
        state = dataclasses.replace(
            self._session.state, sop=SopSnapshot(id=sop.id, version=sop.version, title=sop.title)
        )
        workflow.continue_as_new(
            StartSessionInput(
                session_id=input.session_id,
                worker_id=input.worker_id,
                sop=self._session.state.sop,
                carried_state=state,
                pending_audit=self._pending_audit,
                worker_name=input.worker_name,
                paused_run_after_seconds=input.paused_run_after_seconds,
            ),
            memo={SUMMARY_MEMO_KEY: self._session.summary()},
        )

    async def _flush_audit(self) -> None:
        batch, self._pending_audit = self._pending_audit, []
        self._audit_written_by_callers.difference_update(event.seq for event in batch)
        self._audit_in_flight = batch
        try:
            await self._append_audit(batch)
        except (asyncio.CancelledError, ActivityError):
            # A cancellation in Temporal stops waiting for this write, which may or may
            # not land: the batch goes again, and the audit log keeps each event once.
            self._pending_audit[:0] = batch
            raise
        finally:
            self._audit_in_flight = []

    async def _append_audit(self, batch: list[AuditEvent]) -> None:
        # A write takes milliseconds; a lost worker's attempt is retried after the timeout.
        timeout = timedelta(seconds=10)
        if self._audit_in_task:
            await workflow.execute_local_activity_method(
                AuditActivities.append_audit_events,
                batch,
                start_to_close_timeout=timeout,
                retry_policy=AUDIT_RETRY,
            )
            return
        await workflow.execute_activity_method(
            AuditActivities.append_audit_events,
            batch,
            start_to_close_timeout=timeout,
            retry_policy=AUDIT_RETRY,
        )

    def _apply(self, command: SessionCommand) -> SessionChange | SessionView:
        previous_change_at = self._session.state.updated_at
        outcome = _rules(lambda: self._session.apply(command, workflow.now()))
        event, change = outcome.event, outcome.change
        if event is None:
            # A check repeated under its key; the answer names the first record.
            return change if self._whole_views is None else self._session.view()
        self._pending_audit.append(event)
        self._audit_events_accepted.add(1)
        self._show_details(change.summary)
        if self._whole_views is not None:
            return self._whole_views.answer(change.summary, event.type)
        quiet = workflow.now() >= previous_change_at + AUDIT_FLUSH_AFTER
        if (
            command.writes_audit
            and quiet
            and not self._session.is_terminal
            and self._answer_carries_audit()
        ):
            # A change after a quiet second would pay a write of its own: its sender
            # writes it at once, and the run's write only makes sure, so it waits for
            # later changes to share it. Lists show the change at once. A busy
            # session's changes and a session's last keep the run's shared writes.
            self._publish()
            self._audit_written_by_callers.add(event.seq)
            return dataclasses.replace(change, audit_event=event)
        # Its audit row goes with the next batch, so that a resume sent right after a pause
        # meets no audit write in flight. Since `status-with-audit-write` the status change
        # reaches lists with that batch too; before, at once.
        if not self._status_with_audit_write:
            self._publish_now = self._publish_now or event.type != AuditEventType.CHECK_RECORDED
        return change

    def _answer_carries_audit(self) -> bool:
        # Asked at a run's first change that would be handed over, so that runs with
        # none (back-to-back sessions) record no marker and its attribute upsert.
        if self._answers_carry_audit is None:
            self._answers_carry_audit = self._patched(AUDIT_EVENT_IN_ANSWER)
        return self._answers_carry_audit

    def _refuse(self, command: SessionCommand) -> None:
        _rules(lambda: self._session.refuse(command))

    @staticmethod
    def _show_details(summary: SessionSummary) -> None:
        # Static summaries do not survive continue-as-new; current details are set per run.
        progress = summary.progress
        failed = f", **{progress.checks_failed} failed**" if progress.checks_failed else ""
        workflow.set_current_details(
            f"**{summary.sop_title}** · worker `{summary.worker_id}` · "
            f"**{summary.status.value}**: {progress.checks_passed} of "
            f"{progress.checks_required} required checks passed{failed}"
        )

    @workflow.query
    def get_session(self) -> SessionView:
        """Returns the whole session."""
        return self._session.view()

    @workflow.query
    def get_unwritten_audit(self) -> list[AuditEvent]:
        """Returns the audit events accepted but not yet confirmed written, oldest first."""
        return self._audit_in_flight + self._pending_audit

    @workflow.update
    def pause(self, request: PauseRequest) -> SessionChange | SessionView:
        """Pauses the session."""
        return self._apply(request)

    @pause.validator
    def validate_pause(self, request: PauseRequest) -> None:
        self._refuse(request)

    @workflow.update
    def resume(self, request: ResumeRequest) -> SessionChange | SessionView:
        """Resumes a paused session."""
        return self._apply(request)

    @resume.validator
    def validate_resume(self, request: ResumeRequest) -> None:
        self._refuse(request)

    @workflow.update
    def abort(self, request: AbortRequest) -> SessionChange | SessionView:
        """Aborts the session for good."""
        return self._apply(request)

    @abort.validator
    def validate_abort(self, request: AbortRequest) -> None:
        self._refuse(request)

    @workflow.update
    def complete(self, request: CompleteRequest) -> SessionChange | SessionView:
        """Completes the session."""
        return self._apply(request)

    @complete.validator
    def validate_complete(self, request: CompleteRequest) -> None:
        self._refuse(request)

    @workflow.update
    def record_check(self, request: RecordCheckRequest) -> SessionChange | SessionView:
        """Records one answer to a safety check."""
        return self._apply(request)

    @record_check.validator
    def validate_record_check(self, request: RecordCheckRequest) -> None:
        self._refuse(request)


# The update each command travels as.
UPDATE_OF: dict[type[SessionCommand], Any] = {
    PauseRequest: WorkSessionWorkflow.pause,
    ResumeRequest: WorkSessionWorkflow.resume,
    AbortRequest: WorkSessionWorkflow.abort,
    CompleteRequest: WorkSessionWorkflow.complete,
    RecordCheckRequest: WorkSessionWorkflow.record_check,
}

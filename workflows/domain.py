"""The session state machine: who may do what in which status.

Plain Python with no Temporal imports, so every rule is unit-testable without a
server. The workflow owns one `WorkSession`; its update validators call `refuse`
(which never mutates) and its handlers call `apply`.
The API asks the same object for rules it needs before talking to Temporal.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import assert_never

from workflows.shared import (
    AbortRequest,
    Actor,
    AuditEvent,
    AuditEventType,
    CheckDefinition,
    CheckKind,
    CheckRecord,
    CompleteRequest,
    PauseRequest,
    Progress,
    RecordCheckRequest,
    ResumeRequest,
    SessionChange,
    SessionCommand,
    SessionState,
    SessionStatus,
    SessionSummary,
    SessionView,
    SopSnapshot,
    StatusChange,
    TemporalClosure,
    TemporalEnding,
)

ACTIVE_STATUSES = (SessionStatus.IN_PROGRESS, SessionStatus.PAUSED)
TERMINAL_STATUSES = (SessionStatus.COMPLETED, SessionStatus.ABORTED)


@dataclass(frozen=True)
class CommandRule:
    """What one command may start from, where it leads and how the audit trail names it."""

    verb: str
    allowed_from: tuple[SessionStatus, ...]
    audit_type: AuditEventType
    target: SessionStatus | None = None


# One row per command; every other status is a 409.
COMMAND_RULES: dict[type[SessionCommand], CommandRule] = {
    PauseRequest: CommandRule(
        "pause", (SessionStatus.IN_PROGRESS,), AuditEventType.SESSION_PAUSED, SessionStatus.PAUSED
    ),
    ResumeRequest: CommandRule(
        "resume",
        (SessionStatus.PAUSED,),
        AuditEventType.SESSION_RESUMED,
        SessionStatus.IN_PROGRESS,
    ),
    AbortRequest: CommandRule(
        "abort", ACTIVE_STATUSES, AuditEventType.SESSION_ABORTED, SessionStatus.ABORTED
    ),
    CompleteRequest: CommandRule(
        "complete",
        (SessionStatus.IN_PROGRESS,),
        AuditEventType.SESSION_COMPLETED,
        SessionStatus.COMPLETED,
    ),
    RecordCheckRequest: CommandRule(
        "record a check in", (SessionStatus.IN_PROGRESS,), AuditEventType.CHECK_RECORDED
    ),
}

STATUS_WORDS: dict[SessionStatus, str] = {
    SessionStatus.IN_PROGRESS: "in progress",
    SessionStatus.PAUSED: "paused",
    SessionStatus.COMPLETED: "completed",
    SessionStatus.ABORTED: "aborted",
}

# Who the record names for an ending done in Temporal when the engine does not say who.
TEMPORAL_ACTOR = "temporal"

_ENDING_WORDS: dict[TemporalClosure, str] = {
    TemporalClosure.CANCELLED: "Cancellation requested in Temporal",
    TemporalClosure.TERMINATED: "Terminated in Temporal",
    TemporalClosure.TIMED_OUT: "Timed out in Temporal",
    TemporalClosure.FAILED: "The workflow failed in Temporal",
}

MAX_NOTE_LENGTH = 2000
MAX_REASON_LENGTH = 500

# Per-session bounds that keep a session's state, its query result and the state it
# carries into a new run far below the engine's 2 MB payload limit (docs/architecture.md).
MAX_RECORDS_PER_SESSION = 500
MAX_STATUS_CHANGES_PER_SESSION = 200
MAX_SESSION_TEXT_BYTES = 256 * 1024
# Room a pause keeps in the status history for the resume and the end that follow it.
_STATUS_CHANGES_AFTER_A_PAUSE = 2


class RefusalCode(StrEnum):
    """The problem codes a rule refuses with; the API maps exactly these from the engine."""

    FORBIDDEN = "forbidden"
    SESSION_NOT_FOUND = "session_not_found"
    INVALID_TRANSITION = "invalid_transition"
    CHECKS_INCOMPLETE = "checks_incomplete"
    UNKNOWN_CHECK = "unknown_check"
    INVALID_CHECK_ANSWER = "invalid_check_answer"
    TEXT_TOO_LONG = "text_too_long"
    SESSION_LIMIT_REACHED = "session_limit_reached"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


@dataclass
class DomainError(Exception):
    """A rule refused a command; `code` is the stable problem code callers see."""

    code: RefusalCode
    message: str
    details: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def can_read(owner_id: str, actor: Actor) -> bool:
    """Tells whether the actor may see a session: its owner or any supervisor."""
    return actor.user_id == owner_id or actor.is_supervisor


def authorize_change(owner_id: str, actor: Actor) -> None:
    """Only the owner changes a session; others learn nothing or are forbidden."""
    if actor.user_id == owner_id:
        return
    if actor.is_supervisor:
        raise DomainError(RefusalCode.FORBIDDEN, "Only the session's owner may change it.")
    # A worker must not learn that someone else's session exists.
    raise DomainError(RefusalCode.SESSION_NOT_FOUND, "No such session.")


def durations(summary: SessionSummary, now: datetime) -> tuple[float, float]:
    """Returns (active_seconds, paused_seconds) as of `now`; paused time is never active."""
    end = summary.ended_at or now
    paused = summary.paused_seconds_closed
    if summary.paused_at is not None and summary.ended_at is None:
        paused += max(0.0, (now - summary.paused_at).total_seconds())
    total = max(0.0, (end - summary.started_at).total_seconds())
    return round(max(0.0, total - paused), 3), round(paused, 3)


@dataclass(frozen=True)
class Outcome:
    """What an accepted command did.

    `event` is None when a check record was repeated under its idempotency key:
    nothing changed and `change.check` is the first record made with that key.
    """

    event: AuditEvent | None
    change: SessionChange


class WorkSession:
    """One execution of one SOP by one worker, with every rule that governs it.

    `refuse(command)` raises the reason a command is not allowed now and never
    mutates; `apply(command, now)` refuses the same way, then changes the session.
    """

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self._checks_by_id: dict[str, tuple[str, CheckDefinition]] = {
            check.id: (step.id, check) for step in state.sop.steps for check in step.checks
        }
        # Kept as records arrive so that a summary costs the same at record 1 and 500.
        self._latest: dict[str, bool] = {r.check_id: r.passed for r in state.checks}
        self._text_bytes = sum(_stored_bytes(r.note) for r in state.checks) + sum(
            _stored_bytes(change.reason) for change in state.history
        )

    @classmethod
    def start(
        cls,
        session_id: str,
        worker_id: str,
        sop: SopSnapshot,
        now: datetime,
        worker_name: str | None = None,
    ) -> tuple[WorkSession, AuditEvent]:
        """Creates a session in progress and the audit event that records it."""
        state = SessionState(
            session_id=session_id,
            worker_id=worker_id,
            sop=sop,
            status=SessionStatus.IN_PROGRESS,
            started_at=now,
            updated_at=now,
            history=[StatusChange(SessionStatus.IN_PROGRESS, now, worker_id)],
            worker_name=worker_name,
        )
        session = cls(state)
        event = session._audit(
            AuditEventType.SESSION_STARTED,
            worker_id,
            now,
            {"sop_version": sop.version, "sop_title": sop.title},
        )
        return session, event

    @property
    def status(self) -> SessionStatus:
        return self.state.status

    @property
    def is_terminal(self) -> bool:
        return self.state.status in TERMINAL_STATUSES

    @property
    def version(self) -> int:
        """Counts the changes: every change writes exactly one audit event."""
        return self.state.audit_seq

    # -- validation (never mutates) -------------------------------------------

    def refuse(self, command: SessionCommand) -> None:
        """Raises a DomainError when the command is not allowed now; changes nothing."""
        if self._replayed(command) is None:
            self._refuse_new(command)

    def _refuse_new(self, command: SessionCommand) -> None:
        """Refuses a command that is not the repeat of a check record."""
        rule = COMMAND_RULES[type(command)]
        authorize_change(self.state.worker_id, command.actor)
        if self.state.status not in rule.allowed_from:
            allowed = " or ".join(STATUS_WORDS[s] for s in rule.allowed_from)
            raise DomainError(
                RefusalCode.INVALID_TRANSITION,
                f"You cannot {rule.verb} a session that is {STATUS_WORDS[self.state.status]}; "
                f"it must be {allowed}.",
                {"status": self.state.status.value},
            )
        match command:
            case PauseRequest(reason=reason):
                _check_text("reason", reason, MAX_REASON_LENGTH)
                self._check_room(
                    status_changes=1 + _STATUS_CHANGES_AFTER_A_PAUSE, text=_stored_bytes(reason)
                )
            case AbortRequest(reason=reason):
                # An abort always has room: the bounds leave space for the end.
                _check_text("reason", reason, MAX_REASON_LENGTH)
            case ResumeRequest():
                pass
            case CompleteRequest():
                self._refuse_completion()
            case RecordCheckRequest():
                self._refuse_record(command)
            case _:
                assert_never(command)

    def _refuse_completion(self) -> None:
        missing = self.missing_required_checks()
        if missing:
            raise DomainError(
                RefusalCode.CHECKS_INCOMPLETE,
                f"{len(missing)} required check(s) have not passed yet: {', '.join(missing)}.",
                {"missing_check_ids": missing},
            )

    def _refuse_record(self, command: RecordCheckRequest) -> None:
        _check_text("note", command.note, MAX_NOTE_LENGTH)
        found = self._checks_by_id.get(command.check_id)
        if found is None:
            raise DomainError(
                RefusalCode.UNKNOWN_CHECK,
                f"The SOP has no check '{command.check_id}'.",
                {"check_id": command.check_id},
            )
        _step_id, check = found
        _refuse_answer(check, command.passed, command.value)
        if len(self.state.checks) >= MAX_RECORDS_PER_SESSION:
            raise DomainError(
                RefusalCode.SESSION_LIMIT_REACHED,
                f"A session keeps at most {MAX_RECORDS_PER_SESSION} check records; "
                "complete or abort this one and start a new session.",
                {"limit": "records", "max": MAX_RECORDS_PER_SESSION},
            )
        self._check_room(status_changes=0, text=_stored_bytes(command.note))

    def _check_room(self, *, status_changes: int, text: int) -> None:
        if len(self.state.history) + status_changes > MAX_STATUS_CHANGES_PER_SESSION:
            raise DomainError(
                RefusalCode.SESSION_LIMIT_REACHED,
                f"A session keeps at most {MAX_STATUS_CHANGES_PER_SESSION} status changes; "
                "complete or abort this one and start a new session.",
                {"limit": "status_changes", "max": MAX_STATUS_CHANGES_PER_SESSION},
            )
        if self._text_bytes + text > MAX_SESSION_TEXT_BYTES:
            raise DomainError(
                RefusalCode.SESSION_LIMIT_REACHED,
                f"The notes and reasons of a session may hold at most "
                f"{MAX_SESSION_TEXT_BYTES // 1024} KiB; this one has "
                f"{(MAX_SESSION_TEXT_BYTES - self._text_bytes) // 1024} KiB left. "
                "Shorten the text, or complete this session and start a new one.",
                {"limit": "text_bytes", "max": MAX_SESSION_TEXT_BYTES},
            )

    def _replayed(self, command: SessionCommand) -> CheckRecord | None:
        """The record the caller already made with this command's key, if any.

        The same key with another check, answer or note is refused: a key names one record.
        """
        if not isinstance(command, RecordCheckRequest) or command.idempotency_key is None:
            return None
        seq = self.state.idempotency_keys.get(self._key(command.actor, command.idempotency_key))
        if seq is None:
            return None
        authorize_change(self.state.worker_id, command.actor)
        first = self.state.checks[seq - 1]
        same = (
            first.check_id == command.check_id
            and first.note == command.note
            and (command.passed is None or first.passed == command.passed)
            and first.value == command.value
        )
        if not same:
            raise DomainError(
                RefusalCode.IDEMPOTENCY_KEY_REUSED,
                "This Idempotency-Key was already used for a different check record.",
                {"check_seq": seq},
            )
        return first

    # -- changes ---------------------------------------------------------------

    def apply(self, command: SessionCommand, now: datetime) -> Outcome:
        """Applies a command: its audit event and what changed, or the first record of a key."""
        replayed = self._replayed(command)
        if replayed is not None:
            return Outcome(None, self._change(check=replayed))
        self._refuse_new(command)
        event = self._carry_out(command, now)
        if event.type == AuditEventType.CHECK_RECORDED:
            return Outcome(event, self._change(check=self.state.checks[-1]))
        return Outcome(event, self._change(status_change=self.state.history[-1]))

    def _carry_out(self, command: SessionCommand, now: datetime) -> AuditEvent:
        match command:
            case RecordCheckRequest():
                return self._record(command, now)
            case PauseRequest(reason=reason):
                self.state.paused_at = now
                self.state.pause_reason = reason
                return self._transition(command, now, reason, {"reason": reason})
            case ResumeRequest():
                paused_for = self._close_pause(now)
                return self._transition(command, now, None, {"paused_seconds": paused_for})
            case AbortRequest(reason=reason):
                self._close_pause(now)
                self.state.ended_at = now
                self.state.abort_reason = reason
                return self._transition(command, now, reason, {"reason": reason})
            case CompleteRequest():
                self.state.ended_at = now
                data: dict[str, object] = {
                    "checks_passed": self.progress().checks_passed,
                    "checks_recorded": len(self.state.checks),
                }
                return self._transition(command, now, None, data)
            case _:
                assert_never(command)

    def end_in_temporal(self, ending: TemporalEnding, now: datetime) -> AuditEvent | None:
        """Aborts a session that was ended in Temporal's own tools; None if it had ended already.

        A cancellation requested there, or a workflow terminated, timed out or failed
        there, is an abort: the checks stay, the paused time closes, the abort reason
        says how Temporal ended it and the history names who, where the engine tells.
        """
        if self.is_terminal:
            return None
        reason, by, data = _ending_told(ending)
        self._close_pause(now)
        self.state.ended_at = now
        self.state.abort_reason = reason
        return self._enter(
            SessionStatus.ABORTED, AuditEventType.SESSION_ABORTED, by, now, reason, data
        )

    def name_who_ended_it(self, event: AuditEvent, ending: TemporalEnding) -> AuditEvent:
        """The ending `end_in_temporal` made, now naming who asked, as the engine told later."""
        reason, by, data = _ending_told(ending)
        ended = self.state.history[-1]
        self._text_bytes += _stored_bytes(reason) - _stored_bytes(ended.reason)
        self.state.history[-1] = dataclasses.replace(ended, by=by, reason=reason)
        self.state.abort_reason = reason
        return dataclasses.replace(event, actor=by, data=data)

    def _record(self, command: RecordCheckRequest, now: datetime) -> AuditEvent:
        step_id, check = self._checks_by_id[command.check_id]
        passed = _judge(check, command.passed, command.value)
        self.state.check_seq += 1
        record = CheckRecord(
            seq=self.state.check_seq,
            check_id=command.check_id,
            step_id=step_id,
            passed=passed,
            value=command.value,
            note=command.note,
            recorded_at=now,
            recorded_by=command.actor.user_id,
        )
        self.state.checks.append(record)
        self._latest[record.check_id] = passed
        self._text_bytes += _stored_bytes(record.note)
        if command.idempotency_key is not None:
            self.state.idempotency_keys[self._key(command.actor, command.idempotency_key)] = (
                record.seq
            )
        self.state.updated_at = now
        return self._audit(
            AuditEventType.CHECK_RECORDED,
            command.actor.user_id,
            now,
            {
                "check_seq": record.seq,
                "check_id": record.check_id,
                "step_id": step_id,
                "passed": passed,
                "value": record.value,
                "note": record.note,
            },
        )

    # -- reading ---------------------------------------------------------------

    def latest_results(self) -> dict[str, bool]:
        """Maps each recorded check id to whether its latest record passed."""
        return dict(self._latest)

    def missing_required_checks(self) -> list[str]:
        """Lists required check ids whose latest record did not pass, in SOP order."""
        return [
            check.id
            for step in self.state.sop.steps
            for check in step.checks
            if check.required and not self._latest.get(check.id, False)
        ]

    def progress(self) -> Progress:
        """Counts required checks passed, required checks, all checks and failed checks."""
        required = [c for _s, c in self._checks_by_id.values() if c.required]
        return Progress(
            checks_passed=sum(1 for c in required if self._latest.get(c.id, False)),
            checks_required=len(required),
            checks_total=len(self._checks_by_id),
            checks_failed=sum(1 for passed in self._latest.values() if not passed),
        )

    def current_step_id(self) -> str | None:
        """The first step with a required check not yet passed, if any."""
        if self.is_terminal:
            return None
        for step in self.state.sop.steps:
            if any(c.required and not self._latest.get(c.id, False) for c in step.checks):
                return step.id
        return None

    def summary(self) -> SessionSummary:
        """The session as a list shows it."""
        s = self.state
        return SessionSummary(
            id=s.session_id,
            worker_id=s.worker_id,
            sop_id=s.sop.id,
            sop_version=s.sop.version,
            sop_title=s.sop.title,
            status=s.status,
            started_at=s.started_at,
            updated_at=s.updated_at,
            paused_at=s.paused_at,
            ended_at=s.ended_at,
            abort_reason=s.abort_reason,
            paused_seconds_closed=s.paused_seconds_closed,
            progress=self.progress(),
            current_step_id=self.current_step_id(),
            pause_reason=s.pause_reason if s.status == SessionStatus.PAUSED else None,
            worker_name=s.worker_name,
        )

    def view(self) -> SessionView:
        """The whole session: summary, every check record and the status history."""
        return SessionView(
            summary=self.summary(),
            safety_checks=list(self.state.checks),
            history=list(self.state.history),
            version=self.version,
        )

    def _change(
        self, *, check: CheckRecord | None = None, status_change: StatusChange | None = None
    ) -> SessionChange:
        """A command's answer, small at any session size."""
        return SessionChange(
            version=self.version, summary=self.summary(), check=check, status_change=status_change
        )

    # -- internals -------------------------------------------------------------

    @staticmethod
    def _key(actor: Actor, idempotency_key: str) -> str:
        return f"{actor.user_id}:{idempotency_key}"

    def _close_pause(self, now: datetime) -> float:
        if self.state.paused_at is None:
            return 0.0
        paused_for = max(0.0, (now - self.state.paused_at).total_seconds())
        self.state.paused_seconds_closed += paused_for
        self.state.paused_at = None
        self.state.pause_reason = None
        return paused_for

    def _transition(
        self,
        command: PauseRequest | ResumeRequest | AbortRequest | CompleteRequest,
        now: datetime,
        reason: str | None,
        data: dict[str, object],
    ) -> AuditEvent:
        rule = COMMAND_RULES[type(command)]
        assert rule.target is not None
        return self._enter(rule.target, rule.audit_type, command.actor.user_id, now, reason, data)

    def _enter(
        self,
        status: SessionStatus,
        audit_type: AuditEventType,
        by: str,
        now: datetime,
        reason: str | None,
        data: dict[str, object],
    ) -> AuditEvent:
        self.state.status = status
        self.state.updated_at = now
        self.state.history.append(StatusChange(status, now, by, reason))
        self._text_bytes += _stored_bytes(reason)
        return self._audit(audit_type, by, now, data)

    def _audit(
        self, event_type: AuditEventType, actor_id: str, now: datetime, data: dict[str, object]
    ) -> AuditEvent:
        self.state.audit_seq += 1
        return AuditEvent(
            session_id=self.state.session_id,
            seq=self.state.audit_seq,
            type=event_type,
            actor=actor_id,
            at=now,
            worker_id=self.state.worker_id,
            sop_id=self.state.sop.id,
            data=dict(data),
        )


def _ending_told(ending: TemporalEnding) -> tuple[str, str, dict[str, object]]:
    """The abort reason, the actor and the audit data of an ending in Temporal."""
    reason = temporal_abort_reason(ending)
    data: dict[str, object] = {
        "reason": reason,
        "ended_in_temporal": ending.closure.value,
        "identity": ending.identity,
    }
    return reason, ending.identity or TEMPORAL_ACTOR, data


def temporal_abort_reason(ending: TemporalEnding) -> str:
    """The abort reason a session ended in Temporal shows: how, by whom and why, if told."""
    by = f" by {ending.identity}" if ending.identity else ""
    why = f": {ending.reason}" if ending.reason else ""
    text = f"{_ENDING_WORDS[ending.closure]}{by}{why}"
    # The engine's text is anyone's input: keep it printable and within a reason's bound.
    return "".join(ch if ch.isprintable() else " " for ch in text)[:MAX_REASON_LENGTH]


def ended_in_temporal(
    view: SessionView, ending: TemporalEnding
) -> tuple[SessionView, AuditEvent | None]:
    """A session whose workflow Temporal closed outside the API, as the API shows it.

    The same rule as a cancellation the workflow itself sees (`end_in_temporal`),
    applied at the closing time to the last state the workflow held; the audit
    event takes the next sequence number, so writing it again changes nothing.
    """
    summary = view.summary
    session = WorkSession(
        SessionState(
            session_id=summary.id,
            worker_id=summary.worker_id,
            # The view carries no steps; the progress below is the workflow's own.
            sop=SopSnapshot(summary.sop_id, summary.sop_version, summary.sop_title),
            status=summary.status,
            started_at=summary.started_at,
            updated_at=summary.updated_at,
            paused_at=summary.paused_at,
            ended_at=summary.ended_at,
            abort_reason=summary.abort_reason,
            pause_reason=summary.pause_reason,
            paused_seconds_closed=summary.paused_seconds_closed,
            checks=list(view.safety_checks),
            history=list(view.history),
            audit_seq=view.version,
            worker_name=summary.worker_name,
        )
    )
    event = session.end_in_temporal(ending, max(ending.at, summary.updated_at))
    if event is None:
        return view, None
    ended = session.view()
    ended.summary = dataclasses.replace(ended.summary, progress=summary.progress)
    return ended, event


def _refuse_answer(check: CheckDefinition, passed: bool | None, value: float | None) -> None:
    """Refuses an answer that does not fit the kind of check."""
    match check.kind:
        case CheckKind.CONFIRM:
            if passed is None or value is not None:
                raise DomainError(
                    RefusalCode.INVALID_CHECK_ANSWER,
                    f"Check '{check.id}' is a confirmation: answer with `passed` only.",
                )
        case CheckKind.MEASUREMENT:
            if value is None or passed is not None:
                raise DomainError(
                    RefusalCode.INVALID_CHECK_ANSWER,
                    f"Check '{check.id}' is a measurement: answer with `value` only; "
                    "the server decides whether it passed.",
                )
            if not math.isfinite(value):
                raise DomainError(
                    RefusalCode.INVALID_CHECK_ANSWER, "A measurement must be a finite number."
                )
        case _:
            assert_never(check.kind)


def _judge(check: CheckDefinition, passed: bool | None, value: float | None) -> bool:
    """Whether an answer that fits the check passed it."""
    match check.kind:
        case CheckKind.CONFIRM:
            assert passed is not None
            return passed
        case CheckKind.MEASUREMENT:
            assert value is not None
            return _within_limits(check, value)
        case _:
            assert_never(check.kind)


def _stored_bytes(text: str | None) -> int:
    """The bytes a text takes in a JSON payload, escapes included."""
    return 0 if text is None else len(json.dumps(text, ensure_ascii=False).encode())


def _within_limits(check: CheckDefinition, value: float) -> bool:
    if check.min is not None and value < check.min:
        return False
    return not (check.max is not None and value > check.max)


def _check_text(name: str, text: str | None, max_length: int) -> None:
    if text is not None and len(text) > max_length:
        raise DomainError(
            RefusalCode.TEXT_TOO_LONG, f"The {name} may be at most {max_length} characters long."
        )

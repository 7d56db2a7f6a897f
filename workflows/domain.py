"""The session state machine: who may do what in which status.

Plain Python with no Temporal imports, so every rule is unit-testable without a
server. The workflow owns one `WorkSession`; its update validators call the
`check_*` methods (which never mutate) and its handlers call the mutating ones.
The API asks the same object for rules it needs before talking to Temporal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from workflows.shared import (
    Actor,
    AuditEvent,
    AuditEventType,
    CheckDefinition,
    CheckKind,
    CheckRecord,
    Progress,
    SessionState,
    SessionStatus,
    SessionSummary,
    SessionView,
    SopSnapshot,
    StatusChange,
)

ACTIVE_STATUSES = (SessionStatus.IN_PROGRESS, SessionStatus.PAUSED)
TERMINAL_STATUSES = (SessionStatus.COMPLETED, SessionStatus.ABORTED)

# The only statuses each command may start from; everything else is a 409.
ALLOWED_FROM: dict[str, tuple[SessionStatus, ...]] = {
    "pause": (SessionStatus.IN_PROGRESS,),
    "resume": (SessionStatus.PAUSED,),
    "abort": (SessionStatus.IN_PROGRESS, SessionStatus.PAUSED),
    "complete": (SessionStatus.IN_PROGRESS,),
    "record_check": (SessionStatus.IN_PROGRESS,),
}

MAX_NOTE_LENGTH = 2000
MAX_REASON_LENGTH = 500


@dataclass
class DomainError(Exception):
    """A rule refused a command; `code` is the stable problem code callers see."""

    code: str
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
        raise DomainError("forbidden", "Only the session's owner may change it.")
    # A worker must not learn that someone else's session exists.
    raise DomainError("session_not_found", "No such session.")


def durations(summary: SessionSummary, now: datetime) -> tuple[float, float]:
    """Returns (active_seconds, paused_seconds) as of `now`; paused time is never active."""
    end = summary.ended_at or now
    paused = summary.paused_seconds_closed
    if summary.paused_at is not None and summary.ended_at is None:
        paused += max(0.0, (now - summary.paused_at).total_seconds())
    total = max(0.0, (end - summary.started_at).total_seconds())
    return round(max(0.0, total - paused), 3), round(paused, 3)


class WorkSession:
    """One execution of one SOP by one worker, with every rule that governs it."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self._checks_by_id: dict[str, tuple[str, CheckDefinition]] = {
            check.id: (step.id, check) for step in state.sop.steps for check in step.checks
        }

    @classmethod
    def start(
        cls, session_id: str, worker_id: str, sop: SopSnapshot, now: datetime
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

    # -- validation (never mutates) -------------------------------------------

    def _check_allowed(self, command: str, actor: Actor) -> None:
        authorize_change(self.state.worker_id, actor)
        if self.state.status not in ALLOWED_FROM[command]:
            allowed = " or ".join(s.value for s in ALLOWED_FROM[command])
            raise DomainError(
                "invalid_transition",
                f"Cannot {command.replace('_', ' ')} a session that is "
                f"{self.state.status.value}; it must be {allowed}.",
                {"status": self.state.status.value},
            )

    def check_pause(self, actor: Actor, reason: str | None) -> None:
        """Refuses a pause unless the owner asks while the session is in progress."""
        self._check_allowed("pause", actor)
        _check_text("reason", reason, MAX_REASON_LENGTH)

    def check_resume(self, actor: Actor) -> None:
        """Refuses a resume unless the owner asks while the session is paused."""
        self._check_allowed("resume", actor)

    def check_abort(self, actor: Actor, reason: str | None) -> None:
        """Refuses an abort of a finished session or by anyone but the owner."""
        self._check_allowed("abort", actor)
        _check_text("reason", reason, MAX_REASON_LENGTH)

    def check_complete(self, actor: Actor) -> None:
        """Refuses completion until every required check's latest record passed."""
        self._check_allowed("complete", actor)
        missing = self.missing_required_checks()
        if missing:
            raise DomainError(
                "checks_incomplete",
                f"{len(missing)} required check(s) have not passed yet: {', '.join(missing)}.",
                {"missing_check_ids": missing},
            )

    def check_record(
        self,
        actor: Actor,
        check_id: str,
        passed: bool | None,
        value: float | None,
        note: str | None,
        idempotency_key: str | None = None,
    ) -> None:
        """Refuses a check record that is not allowed now or does not fit the check."""
        if idempotency_key is not None and self._key(actor, idempotency_key) in (
            self.state.idempotency_keys
        ):
            authorize_change(self.state.worker_id, actor)
            return
        self._check_allowed("record_check", actor)
        _check_text("note", note, MAX_NOTE_LENGTH)
        found = self._checks_by_id.get(check_id)
        if found is None:
            raise DomainError(
                "unknown_check",
                f"The SOP has no check '{check_id}'.",
                {"check_id": check_id},
            )
        _step_id, check = found
        if check.kind == CheckKind.CONFIRM:
            if passed is None or value is not None:
                raise DomainError(
                    "invalid_check_answer",
                    f"Check '{check_id}' is a confirmation: answer with `passed` only.",
                )
        else:
            if value is None or passed is not None:
                raise DomainError(
                    "invalid_check_answer",
                    f"Check '{check_id}' is a measurement: answer with `value` only; "
                    "the server decides whether it passed.",
                )
            if not math.isfinite(value):
                raise DomainError("invalid_check_answer", "A measurement must be a finite number.")

    # -- transitions -----------------------------------------------------------

    def pause(self, actor: Actor, reason: str | None, now: datetime) -> AuditEvent:
        """Pauses the session; no check can be recorded until it is resumed."""
        self.check_pause(actor, reason)
        self.state.paused_at = now
        self.state.pause_reason = reason
        return self._transition(SessionStatus.PAUSED, actor, now, reason, {"reason": reason})

    def resume(self, actor: Actor, now: datetime) -> AuditEvent:
        """Resumes a paused session with every check intact."""
        self.check_resume(actor)
        paused_for = self._close_pause(now)
        return self._transition(
            SessionStatus.IN_PROGRESS, actor, now, None, {"paused_seconds": paused_for}
        )

    def abort(self, actor: Actor, reason: str | None, now: datetime) -> AuditEvent:
        """Aborts the session for good; its checks stay on record."""
        self.check_abort(actor, reason)
        self._close_pause(now)
        self.state.ended_at = now
        self.state.abort_reason = reason
        return self._transition(SessionStatus.ABORTED, actor, now, reason, {"reason": reason})

    def complete(self, actor: Actor, now: datetime) -> AuditEvent:
        """Completes the session once every required check passed."""
        self.check_complete(actor)
        self.state.ended_at = now
        progress = self.progress()
        return self._transition(
            SessionStatus.COMPLETED,
            actor,
            now,
            None,
            {"checks_passed": progress.checks_passed, "checks_recorded": len(self.state.checks)},
        )

    def record_check(
        self,
        actor: Actor,
        check_id: str,
        passed: bool | None,
        value: float | None,
        note: str | None,
        now: datetime,
        idempotency_key: str | None = None,
    ) -> AuditEvent | None:
        """Records one answer to a check; returns None when the key was already used."""
        self.check_record(actor, check_id, passed, value, note, idempotency_key)
        if idempotency_key is not None and self._key(actor, idempotency_key) in (
            self.state.idempotency_keys
        ):
            return None
        step_id, check = self._checks_by_id[check_id]
        if check.kind == CheckKind.MEASUREMENT:
            assert value is not None
            passed = _within_limits(check, value)
        assert passed is not None
        self.state.check_seq += 1
        record = CheckRecord(
            seq=self.state.check_seq,
            check_id=check_id,
            step_id=step_id,
            passed=passed,
            value=value,
            note=note,
            recorded_at=now,
            recorded_by=actor.user_id,
        )
        self.state.checks.append(record)
        if idempotency_key is not None:
            self.state.idempotency_keys[self._key(actor, idempotency_key)] = record.seq
        self.state.updated_at = now
        return self._audit(
            AuditEventType.CHECK_RECORDED,
            actor.user_id,
            now,
            {
                "check_seq": record.seq,
                "check_id": check_id,
                "step_id": step_id,
                "passed": passed,
                "value": value,
                "note": note,
            },
        )

    # -- reading ---------------------------------------------------------------

    def latest_results(self) -> dict[str, bool]:
        """Maps each recorded check id to whether its latest record passed."""
        return {record.check_id: record.passed for record in self.state.checks}

    def missing_required_checks(self) -> list[str]:
        """Lists required check ids whose latest record did not pass, in SOP order."""
        latest = self.latest_results()
        return [
            check.id
            for step in self.state.sop.steps
            for check in step.checks
            if check.required and not latest.get(check.id, False)
        ]

    def progress(self) -> Progress:
        """Counts required checks passed, required checks, and all checks."""
        latest = self.latest_results()
        required = [c for _s, c in self._checks_by_id.values() if c.required]
        return Progress(
            checks_passed=sum(1 for c in required if latest.get(c.id, False)),
            checks_required=len(required),
            checks_total=len(self._checks_by_id),
        )

    def current_step_id(self) -> str | None:
        """The first step with a required check not yet passed, if any."""
        if self.is_terminal:
            return None
        latest = self.latest_results()
        for step in self.state.sop.steps:
            if any(c.required and not latest.get(c.id, False) for c in step.checks):
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
        )

    def view(self) -> SessionView:
        """The whole session: summary, every check record and the status history."""
        return SessionView(
            summary=self.summary(),
            safety_checks=list(self.state.checks),
            history=list(self.state.history),
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
        status: SessionStatus,
        actor: Actor,
        now: datetime,
        reason: str | None,
        data: dict[str, object],
    ) -> AuditEvent:
        self.state.status = status
        self.state.updated_at = now
        self.state.history.append(StatusChange(status, now, actor.user_id, reason))
        event_type = {
            SessionStatus.PAUSED: AuditEventType.SESSION_PAUSED,
            SessionStatus.IN_PROGRESS: AuditEventType.SESSION_RESUMED,
            SessionStatus.ABORTED: AuditEventType.SESSION_ABORTED,
            SessionStatus.COMPLETED: AuditEventType.SESSION_COMPLETED,
        }[status]
        return self._audit(event_type, actor.user_id, now, data)

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


def _within_limits(check: CheckDefinition, value: float) -> bool:
    if check.min is not None and value < check.min:
        return False
    return not (check.max is not None and value > check.max)


def _check_text(name: str, text: str | None, max_length: int) -> None:
    if text is not None and len(text) > max_length:
        raise DomainError(
            "text_too_long", f"The {name} may be at most {max_length} characters long."
        )

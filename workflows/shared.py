"""Payload types shared by the API, the worker, the workflow and the activities.

Standard library only: this module is loaded inside Temporal's workflow sandbox.
Every field here ends up in workflow histories, so changes must stay
backward-compatible (add optional fields with defaults, never rename).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

TASK_QUEUE_DEFAULT = "work-sessions"
SUMMARY_MEMO_KEY = "summary"


class SessionStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    ABORTED = "ABORTED"


class CheckKind(StrEnum):
    CONFIRM = "confirm"
    MEASUREMENT = "measurement"


class AuditEventType(StrEnum):
    SESSION_STARTED = "session_started"
    CHECK_RECORDED = "check_recorded"
    SESSION_PAUSED = "session_paused"
    SESSION_RESUMED = "session_resumed"
    SESSION_ABORTED = "session_aborted"
    SESSION_COMPLETED = "session_completed"


@dataclass
class CheckDefinition:
    id: str
    prompt: str
    kind: CheckKind
    required: bool = True
    unit: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass
class StepDefinition:
    id: str
    title: str
    instructions: str = ""
    checks: list[CheckDefinition] = field(default_factory=list)


@dataclass
class SopSnapshot:
    """The SOP version a session started with; later versions never change it."""

    id: str
    version: int
    title: str
    description: str = ""
    steps: list[StepDefinition] = field(default_factory=list)


@dataclass
class Actor:
    """Who sends a message: the caller's `sub` and roles from the bearer token."""

    user_id: str
    roles: list[str] = field(default_factory=list)

    @property
    def is_supervisor(self) -> bool:
        return "supervisor" in self.roles


@dataclass
class CheckRecord:
    seq: int
    check_id: str
    step_id: str
    passed: bool
    value: float | None
    note: str | None
    recorded_at: datetime
    recorded_by: str


@dataclass
class StatusChange:
    status: SessionStatus
    at: datetime
    by: str
    reason: str | None = None


@dataclass
class Progress:
    checks_passed: int
    checks_required: int
    checks_total: int
    # Checks, optional ones included, whose latest record failed.
    checks_failed: int = 0


@dataclass
class SessionSummary:
    """What a session list shows; kept in the workflow memo so lists need no query."""

    id: str
    worker_id: str
    sop_id: str
    sop_version: int
    sop_title: str
    status: SessionStatus
    started_at: datetime
    updated_at: datetime
    paused_at: datetime | None
    ended_at: datetime | None
    abort_reason: str | None
    paused_seconds_closed: float
    progress: Progress
    current_step_id: str | None
    pause_reason: str | None = None
    worker_name: str | None = None


@dataclass
class SessionView:
    """The whole session as callers see it, returned by the query.

    Workers before the compact update results returned it from every update too.
    """

    summary: SessionSummary
    safety_checks: list[CheckRecord]
    history: list[StatusChange]
    # The number of changes the session has seen; 0 from workers that did not count.
    version: int = 0


@dataclass
class SessionChange:
    """What one update changed: small whatever the size of the session.

    `version` counts the session's changes; a caller holding the view at
    `version - 1` gets the new view by appending `check` or `status_change`
    and taking `summary`.
    """

    version: int
    summary: SessionSummary
    check: CheckRecord | None = None
    status_change: StatusChange | None = None
    # The change's audit event, when its sender is to write it (`Command.writes_audit`).
    audit_event: AuditEvent | None = None


# What an update answers: a change, or the whole view from workers before the change.
UpdateResult = SessionChange | SessionView


class TemporalClosure(StrEnum):
    """How a session's workflow was ended in Temporal itself, outside the API."""

    CANCELLED = "cancelled"
    TERMINATED = "terminated"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


@dataclass
class TemporalEnding:
    """An ending done in Temporal's own tools, with what its history tells about it."""

    closure: TemporalClosure
    at: datetime
    # The caller's identity as the engine recorded it (`temporal-cli:user@host`, say).
    identity: str | None = None
    reason: str | None = None


@dataclass
class WorkflowRun:
    """One run of one workflow, as the engine names it."""

    workflow_id: str
    run_id: str


@dataclass
class AuditEvent:
    session_id: str
    seq: int
    type: AuditEventType
    actor: str
    at: datetime
    worker_id: str
    sop_id: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class SessionState:
    """Everything a session knows; carried whole across continue-as-new."""

    session_id: str
    worker_id: str
    sop: SopSnapshot
    status: SessionStatus
    started_at: datetime
    updated_at: datetime
    paused_at: datetime | None = None
    ended_at: datetime | None = None
    abort_reason: str | None = None
    pause_reason: str | None = None
    paused_seconds_closed: float = 0.0
    checks: list[CheckRecord] = field(default_factory=list)
    history: list[StatusChange] = field(default_factory=list)
    audit_seq: int = 0
    check_seq: int = 0
    idempotency_keys: dict[str, int] = field(default_factory=dict)
    worker_name: str | None = None


@dataclass
class StartSessionInput:
    session_id: str
    worker_id: str
    sop: SopSnapshot
    # The start time the API already showed the caller; the workflow keeps it.
    started_at: datetime | None = None
    # Set only by continue-as-new: the state to carry on with.
    carried_state: SessionState | None = None
    # Audit events accepted but not yet written when continuing as new.
    pending_audit: list[AuditEvent] = field(default_factory=list)
    # The `name` claim of the token that started the session.
    worker_name: str | None = None
    # How long a paused session waits before it continues in a fresh run (None: the default).
    paused_run_after_seconds: float | None = None


@dataclass
class Command:
    """What every change carries: who sends it, and whether the sender writes the
    change's audit event itself as soon as it has the answer (the API does). The run
    then answers a change after a quiet second with its event, and its own write of
    it only makes sure, later."""

    actor: Actor
    writes_audit: bool = field(default=False, kw_only=True)


@dataclass
class PauseRequest(Command):
    reason: str | None = None


@dataclass
class ResumeRequest(Command):
    """Resumes a paused session."""


@dataclass
class AbortRequest(Command):
    reason: str | None = None


@dataclass
class CompleteRequest(Command):
    """Completes a session whose required checks have all passed."""


@dataclass
class RecordCheckRequest(Command):
    check_id: str
    passed: bool | None = None
    value: float | None = None
    note: str | None = None
    idempotency_key: str | None = None


# Every message that changes a session.
SessionCommand = PauseRequest | ResumeRequest | AbortRequest | CompleteRequest | RecordCheckRequest

"""The words the page shows for the contract's codes, so it keeps no copies of its own."""

from __future__ import annotations

from typing import assert_never

from fastapi import APIRouter
from pydantic import BaseModel

from workflows.domain import ACTIVE_STATUSES, STATUS_WORDS
from workflows.shared import AuditEventType, CheckKind, SessionStatus

router = APIRouter(prefix="/api/v1/vocabulary", tags=["vocabulary"])


class Term(BaseModel):
    value: str
    label: str


class StatusTerm(Term):
    # Listed by default and still open to changes; every other status has ended.
    active: bool


class Vocabulary(BaseModel):
    statuses: list[StatusTerm]
    check_kinds: list[Term]
    audit_event_types: list[Term]


def check_kind_label(kind: CheckKind) -> str:
    """The word a reader sees for a kind of check."""
    match kind:
        case CheckKind.CONFIRM:
            return "Confirmation"
        case CheckKind.MEASUREMENT:
            return "Measurement"
        case _:
            assert_never(kind)


def audit_event_label(event_type: AuditEventType) -> str:
    """The words a reader sees for a kind of audit event."""
    match event_type:
        case AuditEventType.SESSION_STARTED:
            return "Session started"
        case AuditEventType.CHECK_RECORDED:
            return "Check recorded"
        case AuditEventType.SESSION_PAUSED:
            return "Session paused"
        case AuditEventType.SESSION_RESUMED:
            return "Session resumed"
        case AuditEventType.SESSION_ABORTED:
            return "Session aborted"
        case AuditEventType.SESSION_COMPLETED:
            return "Session completed"
        case _:
            assert_never(event_type)


@router.get("")
async def get_vocabulary() -> Vocabulary:
    """Lists session statuses (which are active), check kinds and audit event types, in words."""
    return Vocabulary(
        statuses=[
            StatusTerm(
                value=s.value, label=STATUS_WORDS[s].capitalize(), active=s in ACTIVE_STATUSES
            )
            for s in SessionStatus
        ],
        check_kinds=[Term(value=k.value, label=check_kind_label(k)) for k in CheckKind],
        audit_event_types=[Term(value=t.value, label=audit_event_label(t)) for t in AuditEventType],
    )

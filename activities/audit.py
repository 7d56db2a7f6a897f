"""Writes session audit events to the append-only audit trail."""

from collections.abc import Sequence
from typing import Protocol

from temporalio import activity

from workflows.shared import AuditEvent


class AuditSink(Protocol):
    """Where audit events are appended; the SQL audit log in production.

    A protocol keeps SQL out of every module the workflow sandbox imports.
    """

    async def append(self, events: Sequence[AuditEvent]) -> int: ...


class AuditActivities:
    """Audit activities bound to the audit log they write to."""

    def __init__(self, audit_log: AuditSink) -> None:
        self._audit_log = audit_log

    @activity.defn(name="append_audit_events")
    async def append_audit_events(self, events: list[AuditEvent]) -> int:
        """Appends events once each: a retry after a crash inserts nothing twice."""
        inserted = await self._audit_log.append(events)
        activity.logger.info(
            "audit events appended",
            extra={
                "session_id": events[0].session_id if events else None,
                "worker_id": events[0].worker_id if events else None,
                "inserted": inserted,
            },
        )
        return inserted

"""Writes session audit events to the append-only audit trail."""

from temporalio import activity

from store.audit import AuditLog
from workflows.shared import AuditEvent


class AuditActivities:
    """Audit activities bound to the audit log they write to."""

    def __init__(self, audit_log: AuditLog) -> None:
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

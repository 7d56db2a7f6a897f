"""Writes session audit events to the append-only audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from temporalio import activity

from workflows.shared import AuditEvent

if TYPE_CHECKING:
    from store.audit import AuditAppend

DEAD_LETTER_METRIC = "audit_events_dead_lettered"


class AuditSink(Protocol):
    """Where audit events are appended; the SQL audit log in production.

    A protocol keeps SQL out of every module the workflow sandbox imports.
    """

    async def append(self, events: Sequence[AuditEvent]) -> AuditAppend: ...


class AuditActivities:
    """Audit activities bound to the audit log they write to."""

    def __init__(self, audit_log: AuditSink) -> None:
        self._audit_log = audit_log

    @activity.defn(name="append_audit_events")
    async def append_audit_events(self, events: list[AuditEvent]) -> int:
        """Appends events once each: a retry after a crash inserts nothing twice.

        An event the database refuses for good is kept as a dead letter, counted and
        logged, so it never holds back the events after it; other failures retry.
        """
        outcome = await self._audit_log.append(events)
        if outcome.dead_lettered:
            activity.metric_meter().create_counter(
                DEAD_LETTER_METRIC,
                "Audit events the database refused for good, kept in audit_dead_letters.",
            ).add(len(outcome.dead_lettered))
        for refused in outcome.dead_lettered:
            activity.logger.error(
                "audit event refused by the database; kept as a dead letter",
                extra={
                    "session_id": refused.event.session_id,
                    "seq": refused.event.seq,
                    "refusal": refused.refusal,
                },
            )
        activity.logger.info(
            "audit events appended",
            extra={
                "session_id": events[0].session_id if events else None,
                "worker_id": events[0].worker_id if events else None,
                "inserted": outcome.inserted,
            },
        )
        return outcome.inserted

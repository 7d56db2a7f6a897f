"""Writes session audit events to the append-only audit trail."""

import logging
from collections.abc import Sequence
from typing import Protocol

from temporalio import activity

from workflows.shared import AuditEvent

log = logging.getLogger(__name__)


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
        if events:
            # One short line a batch; the module logger, since the activity logger
            # would append the whole activity info to the message.
            first, last = min(e.seq for e in events), max(e.seq for e in events)
            log.info(
                "audit of session %s seq %d-%d appended, %d new",
                events[0].session_id,
                first,
                last,
                inserted,
                extra={
                    "session_id": events[0].session_id,
                    "first_seq": first,
                    "last_seq": last,
                    "inserted": inserted,
                },
            )
        return inserted

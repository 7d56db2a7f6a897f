"""Writes session audit events to the append-only audit trail."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from temporalio import activity

from workflows.shared import AuditEvent

if TYPE_CHECKING:
    from store.audit import AuditAppend

APPEND_AUDIT_EVENTS = "append_audit_events"
DEAD_LETTER_METRIC = "audit_events_dead_lettered"
WRITTEN_METRIC = "work_session_audit_events_written"
LAG_METRIC = "work_session_audit_lag"
AUDIT_LAG_BUCKETS_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)

log = logging.getLogger(__name__)


class AuditSink(Protocol):
    """Where audit events are appended; the SQL audit log in production.

    A protocol keeps SQL out of every module the workflow sandbox imports.
    """

    async def append(self, events: Sequence[AuditEvent]) -> AuditAppend: ...


class AuditActivities:
    """Audit activities bound to the audit log they write to."""

    def __init__(self, audit_log: AuditSink) -> None:
        self._audit_log = audit_log

    @activity.defn(name=APPEND_AUDIT_EVENTS)
    async def append_audit_events(self, events: list[AuditEvent]) -> int:
        """Appends events once each: a retry after a crash inserts nothing twice.

        An event the database refuses for good is kept as a dead letter, counted and
        logged, so it never holds back the events after it; other failures retry.
        """
        outcome = await self._audit_log.append(events)
        meter = activity.metric_meter()
        if outcome.dead_lettered:
            meter.create_counter(
                DEAD_LETTER_METRIC,
                "Audit events the database refused for good, kept in audit_dead_letters.",
            ).add(len(outcome.dead_lettered))
        for refused in outcome.dead_lettered:
            log.error(
                "audit event %s/%d refused by the database; kept as a dead letter: %s",
                refused.event.session_id,
                refused.event.seq,
                refused.refusal,
                extra={"session_id": refused.event.session_id, "seq": refused.event.seq},
            )
        if not events:
            return outcome.inserted
        # Accepted minus written (the workflows count what they accept) is the backlog.
        meter.create_counter(WRITTEN_METRIC, "Audit events written or found written.").add(
            len(events)
        )
        oldest = min(e.at for e in events)
        meter.create_histogram_float(
            LAG_METRIC, "Seconds from a change's acceptance to its audit row.", "s"
        ).record(max(0.0, (datetime.now(UTC) - oldest).total_seconds()))
        # One short line a batch; the module logger, since the activity logger
        # would append the whole activity info to the message.
        first, last = min(e.seq for e in events), max(e.seq for e in events)
        log.info(
            "audit of session %s seq %d-%d appended, %d new",
            events[0].session_id,
            first,
            last,
            outcome.inserted,
            extra={
                "session_id": events[0].session_id,
                "first_seq": first,
                "last_seq": last,
                "inserted": outcome.inserted,
            },
        )
        return outcome.inserted

"""Records in the audit trail how Temporal's own tools ended a session's workflow.

A workflow terminated, timed out or failed in Temporal runs no code of its own,
so nothing in it can write that ending down. Each worker looks for such sessions
every `reconcile_interval_seconds` and appends, for each one not yet recorded,
the audit events it had accepted but not written and one `session_aborted`
event saying how it ended. The audit log keeps each (session, seq) once, so
several workers, or a sweep repeated after a crash, never write anything twice.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client, RPCTimeoutOrCancelledError, WorkflowQueryFailedError
from temporalio.service import RPCError

from engine.history import temporal_ending
from engine.visibility import ended_in_temporal_clause
from workflows.domain import ended_in_temporal
from workflows.shared import AuditEvent, AuditEventType
from workflows.work_session import WorkSessionWorkflow

log = logging.getLogger(__name__)

# Visibility shows a closed workflow a moment after it closes: each sweep looks back this far
# before the previous one started.
_VISIBILITY_LAG = timedelta(minutes=1)
# The task queue goes into a visibility query as is: nothing that could widen it.
_TASK_QUEUE = re.compile(r"[\w.:/-]{1,200}")
_ENDS = (AuditEventType.SESSION_ABORTED, AuditEventType.SESSION_COMPLETED)
# What recording an ending may meet; the next sweep tries again.
RECORDING_FAILURES = (
    RPCError,
    RPCTimeoutOrCancelledError,
    WorkflowQueryFailedError,
    SQLAlchemyError,
)


@dataclass
class Sweep:
    """What one sweep did: sessions whose ending it recorded, and those it could not read."""

    recorded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class AuditTrail(Protocol):
    """The part of the audit log a sweep uses."""

    async def append(self, events: Sequence[AuditEvent]) -> object: ...

    async def for_session(self, session_id: str) -> list[AuditEvent]: ...


async def record_ending(client: Client, audit_trail: AuditTrail, session_id: str) -> bool:
    """Records how Temporal's tools ended the session, unless recorded or not so ended.

    Appends the events the workflow accepted but never wrote, then its
    `session_aborted` event; True if this call found the ending missing.
    """
    trail = await audit_trail.for_session(session_id)
    if any(event.type in _ENDS for event in trail):
        return False
    ending = await temporal_ending(client, client.namespace, session_id)
    if ending is None:
        return False
    handle = client.get_workflow_handle(session_id)
    view = await handle.query(WorkSessionWorkflow.get_session)
    unwritten = await handle.query(WorkSessionWorkflow.get_unwritten_audit)
    _shown, event = ended_in_temporal(view, ending)
    if event is None:
        return False
    await audit_trail.append([*unwritten, event])
    log.info(
        "session %s was %s in Temporal; its ending is in the audit trail",
        session_id,
        ending.closure.value,
        extra={"session_id": session_id, "seq": event.seq},
    )
    return True


class EndingsReconciler:
    """Finds sessions ended in Temporal's tools and records their ending, idempotently."""

    def __init__(
        self, client: Client, task_queue: str, audit_trail: AuditTrail, interval: timedelta
    ) -> None:
        if not _TASK_QUEUE.fullmatch(task_queue):
            raise ValueError(f"task queue {task_queue!r} cannot be named in a visibility query")
        self._client = client
        self._task_queue = task_queue
        self._audit_trail = audit_trail
        self._interval = interval

    async def sweep(self, closed_since: datetime | None = None) -> Sweep:
        """Records every ending not recorded yet, one session's failure holding back no other."""
        query = (
            f"WorkflowType = '{WorkSessionWorkflow.__name__}' "
            f"AND TaskQueue = '{self._task_queue}' AND {ended_in_temporal_clause()}"
        )
        if closed_since is not None:
            query += f" AND CloseTime >= '{closed_since.astimezone(UTC).isoformat()}'"
        done = Sweep()
        async for execution in self._client.list_workflows(query):
            try:
                if await record_ending(self._client, self._audit_trail, execution.id):
                    done.recorded.append(execution.id)
            except RECORDING_FAILURES as err:
                log.warning("could not record how session %s ended: %s", execution.id, err)
                done.failed.append(execution.id)
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Sweeps every interval until `stop` is set; the first sweep looks at every session."""
        closed_since: datetime | None = None
        while not stop.is_set():
            started = datetime.now(UTC)
            try:
                done = await self.sweep(closed_since)
            except RECORDING_FAILURES as err:
                log.warning("sweep for sessions ended in Temporal failed: %s", err)
            except Exception:
                # A fault in one sweep must not end the sweeps for the worker's lifetime.
                log.exception("sweep for sessions ended in Temporal failed")
            else:
                # After a failure the next sweep looks back as far as this one did.
                if not done.failed:
                    closed_since = started - _VISIBILITY_LAG
            try:
                await asyncio.wait_for(stop.wait(), self._interval.total_seconds())
            except TimeoutError:
                pass

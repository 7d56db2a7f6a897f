"""The append-only audit trail of work sessions."""

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.models import AuditEventRow
from workflows.shared import AuditEvent

# Keeps a multi-row INSERT well under SQLite's limit of bound parameters.
INSERT_BATCH_SIZE = 500


# A row has every field of the event under the same name; pydantic turns `type` back
# into its enum and checks the rest.
_AUDIT_EVENT = TypeAdapter(AuditEvent)
_EVENT_FIELDS = [field.name for field in dataclasses.fields(AuditEvent)]


def _event(row: AuditEventRow) -> AuditEvent:
    return _AUDIT_EVENT.validate_python({name: getattr(row, name) for name in _EVENT_FIELDS})


def _values(event: AuditEvent) -> dict[str, Any]:
    return {**dataclasses.asdict(event), "type": str(event.type)}


class AuditLog:
    """Appends audit events exactly once each and reads them back for audit."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def append(self, events: Sequence[AuditEvent]) -> int:
        """Inserts the events not stored yet, keyed by (session_id, seq); returns how many."""
        inserted = 0
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            for start in range(0, len(events), INSERT_BATCH_SIZE):
                batch = events[start : start + INSERT_BATCH_SIZE]
                statement = self._insert(dialect).values([_values(event) for event in batch])
                result = await session.execute(
                    statement.on_conflict_do_nothing(
                        index_elements=["session_id", "seq"]
                    ).returning(AuditEventRow.id)
                )
                inserted += len(result.all())
            await session.commit()
        return inserted

    @staticmethod
    def _insert(dialect: str) -> postgresql.Insert | sqlite.Insert:
        if dialect == "postgresql":
            return postgresql.insert(AuditEventRow)
        if dialect == "sqlite":
            return sqlite.insert(AuditEventRow)
        raise NotImplementedError(f"audit append does not support the {dialect} dialect")

    async def for_session(self, session_id: str) -> list[AuditEvent]:
        """Lists a session's events, oldest first."""
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.session_id == session_id)
            .order_by(AuditEventRow.seq)
        )
        async with self._sessions() as session:
            return [_event(row) for row in await session.scalars(query)]

    async def search(
        self,
        *,
        worker_id: str | None = None,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[AuditEvent]:
        """Finds events by worker, session and time (since inclusive, until exclusive)."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        query = select(AuditEventRow)
        if worker_id is not None:
            query = query.where(AuditEventRow.worker_id == worker_id)
        if session_id is not None:
            query = query.where(AuditEventRow.session_id == session_id)
        if since is not None:
            query = query.where(AuditEventRow.at >= since)
        if until is not None:
            query = query.where(AuditEventRow.at < until)
        query = query.order_by(AuditEventRow.at, AuditEventRow.session_id, AuditEventRow.seq)
        async with self._sessions() as session:
            return [_event(row) for row in await session.scalars(query.limit(limit))]

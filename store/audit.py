"""The append-only audit trail of work sessions."""

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import Table, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.db import insert_statement
from store.models import ID_LENGTH, AuditDeadLetterRow, AuditEventRow
from workflows.shared import AuditEvent

# Keeps a multi-row INSERT well under SQLite's limit of bound parameters.
INSERT_BATCH_SIZE = 500

# SQLSTATE classes that say "this row can never be stored", whatever the retries:
# data exception (NUL in JSONB, bad encoding, too long), integrity violation,
# program limit exceeded. Anything else (a lost connection, a failover) is retried.
_REFUSED_FOR_GOOD_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})
MAX_REFUSAL_LENGTH = 1000
_SEQ_TAKEN = (
    "the trail already holds a different {} event under this sequence number "
    "(was the session's workflow reset in Temporal without its updates?)"
)


@dataclass(frozen=True)
class RefusedEvent:
    """An audit event the database refused for good, and why (in ASCII, safe to store and log)."""

    event: AuditEvent
    refusal: str


@dataclass(frozen=True)
class AuditAppend:
    """What an append did: events stored in the trail, and events newly kept as dead letters."""

    inserted: int
    dead_lettered: list[RefusedEvent]


def _refused_for_good(error: StatementError) -> bool:
    if not isinstance(error, DBAPIError):
        # Raised while binding the event's values: this event can never be written.
        return True
    if error.connection_invalidated:
        return False
    if isinstance(error, DataError | IntegrityError):
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _REFUSED_FOR_GOOD_SQLSTATE_CLASSES


def _escaped(text: str) -> str:
    """The text with control characters and everything beyond ASCII as JSON escapes."""
    return json.dumps(text)[1:-1]


def _dead_letter_values(refused: RefusedEvent) -> dict[str, Any]:
    event = refused.event
    document = {**_values(event), "at": event.at.isoformat()}
    return {
        "session_id": _escaped(event.session_id)[:ID_LENGTH],
        "seq": event.seq,
        # ASCII JSON: every character a text column could refuse arrives escaped.
        "event_json": json.dumps(document, sort_keys=True, default=str),
        "refusal": refused.refusal,
    }


# A row has every field of the event under the same name; pydantic turns `type` back
# into its enum and checks the rest.
_AUDIT_EVENT = TypeAdapter(AuditEvent)
_EVENT_FIELDS = [field.name for field in dataclasses.fields(AuditEvent)]
_AUDIT_TABLE = cast(Table, AuditEventRow.__table__)


def _event(row: AuditEventRow) -> AuditEvent:
    return _AUDIT_EVENT.validate_python({name: getattr(row, name) for name in _EVENT_FIELDS})


def _values(event: AuditEvent) -> dict[str, Any]:
    return {**dataclasses.asdict(event), "type": str(event.type)}


@dataclass(eq=False)
class _QueuedAppend:
    """One caller's events waiting for the next write, and what it will be told."""

    events: Sequence[AuditEvent]
    outcome: asyncio.Future[AuditAppend]
    keeps_refused: bool
    keys: frozenset[tuple[str, int]] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = frozenset((e.session_id, e.seq) for e in self.events)

    def succeed(self, stored: set[tuple[str, int]], refused: list[RefusedEvent]) -> None:
        if self.outcome.done():
            # The caller stopped waiting (its attempt timed out); the write stands.
            return
        self.outcome.set_result(
            AuditAppend(
                inserted=len(self.keys & stored),
                dead_lettered=[
                    r for r in refused if (r.event.session_id, r.event.seq) in self.keys
                ],
            )
        )

    def fail(self, error: Exception) -> None:
        if not self.outcome.done():
            self.outcome.set_exception(error)


def _without_repeated_keys(queued: list[_QueuedAppend]) -> list[_QueuedAppend]:
    """The appends, oldest first, that one transaction can take: none repeats an event
    of another (a retried batch waits for the next write), so a collision is never
    mistaken for the row written in the same statement."""
    group: list[_QueuedAppend] = []
    taken: set[tuple[str, int]] = set()
    for append in queued:
        keys = append.keys
        if keys.isdisjoint(taken):
            group.append(append)
            taken |= keys
    return group


class AuditLog:
    """Appends audit events exactly once each and reads them back for audit."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._queued: list[_QueuedAppend] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, events: Sequence[AuditEvent]) -> AuditAppend:
        """Inserts the events not stored yet, keyed by (session_id, seq).

        An event the database refuses for good is kept as a dead letter instead, so
        the events after it still land; any other failure is raised for a retry.
        Appends that arrive while a write is in flight wait for it and then go
        together in one transaction: one commit for many sessions' events, and no
        two connections of this process contending for SQLite's single writer lock.
        """
        return await self._queue(events, keeps_refused=True)

    async def append_unless_refused(self, events: Sequence[AuditEvent]) -> int:
        """Inserts the events not stored yet; returns how many it stored.

        An event the database refuses, or whose number holds another event, is left
        as it is: for a writer ahead of the session's own run, which writes every
        event again, keeps the refused as dead letters and counts them.
        """
        outcome = await self._queue(events, keeps_refused=False)
        return outcome.inserted

    async def _queue(self, events: Sequence[AuditEvent], *, keeps_refused: bool) -> AuditAppend:
        queued = _QueuedAppend(events, asyncio.get_running_loop().create_future(), keeps_refused)
        self._queued.append(queued)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        return await queued.outcome

    async def _write_queued(self) -> None:
        while self._queued:
            group = _without_repeated_keys(self._queued)
            self._queued = [q for q in self._queued if q not in group]
            left_to_others = {key for q in group if not q.keeps_refused for key in q.keys}
            try:
                stored, refused = await self._append_now(
                    [e for q in group for e in q.events], left_to_others
                )
            except Exception as error:
                for queued in group:
                    queued.fail(error)
                continue
            for queued in group:
                queued.succeed(stored, refused)

    async def _append_now(
        self, events: Sequence[AuditEvent], left_to_others: set[tuple[str, int]]
    ) -> tuple[set[tuple[str, int]], list[RefusedEvent]]:
        """The (session_id, seq) of the events stored now, and those newly dead-lettered
        (never one of `left_to_others`)."""
        try:
            stored = await self._insert_all(events)
        except StatementError as error:
            if not _refused_for_good(error):
                raise
        else:
            unstored = [e for e in events if (e.session_id, e.seq) not in stored]
            unstored = [e for e in unstored if (e.session_id, e.seq) not in left_to_others]
            return stored, await self._kept_as_dead_letters(await self._collisions(unstored))
        # One at a time, to set aside only the events that cannot be stored.
        stored = set()
        refused: list[RefusedEvent] = []
        for event in events:
            try:
                stored |= await self._insert_all([event])
            except StatementError as error:
                if not _refused_for_good(error):
                    raise
                if (event.session_id, event.seq) in left_to_others:
                    continue
                refusal = _escaped(str(error.orig))[:MAX_REFUSAL_LENGTH]
                refused.append(RefusedEvent(event, refusal))
        return stored, await self._kept_as_dead_letters(refused)

    async def _collisions(self, unstored: Sequence[AuditEvent]) -> list[RefusedEvent]:
        """The events whose (session_id, seq) already holds a different event.

        A retry or a carried batch sends the same event again, which is no news.
        Another event under the same number happens only when a workflow was reset
        in Temporal without its later updates: it is kept aside, never dropped.
        """
        if not unstored:
            return []
        query = select(AuditEventRow).where(
            AuditEventRow.session_id.in_({e.session_id for e in unstored}),
            AuditEventRow.seq.in_({e.seq for e in unstored}),
        )
        async with self._sessions() as session:
            rows = {(r.session_id, r.seq): r for r in await session.scalars(query)}
        collisions = []
        for event in unstored:
            row = rows.get((event.session_id, event.seq))
            if row is not None and (row.type, row.data) != (str(event.type), event.data):
                collisions.append(RefusedEvent(event, _SEQ_TAKEN.format(row.type)))
        return collisions

    async def _kept_as_dead_letters(self, refused: list[RefusedEvent]) -> list[RefusedEvent]:
        """Stores the refused events once each; returns those not kept before."""
        if not refused:
            return []
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            statement = insert_statement(dialect, AuditDeadLetterRow).values(
                [_dead_letter_values(r) for r in refused]
            )
            result = await session.execute(
                statement.on_conflict_do_nothing(index_elements=["session_id", "seq"]).returning(
                    AuditDeadLetterRow.session_id, AuditDeadLetterRow.seq
                )
            )
            kept = {(row.session_id, row.seq) for row in result}
            await session.commit()
        return [
            r for r in refused if (_escaped(r.event.session_id)[:ID_LENGTH], r.event.seq) in kept
        ]

    async def dead_letters(self) -> list[AuditDeadLetterRow]:
        """Lists the events kept as dead letters, oldest first, for an operator to repair."""
        async with self._sessions() as session:
            query = select(AuditDeadLetterRow).order_by(AuditDeadLetterRow.id)
            return list(await session.scalars(query))

    async def _insert_all(self, events: Sequence[AuditEvent]) -> set[tuple[str, int]]:
        """Inserts the events; returns the (session_id, seq) of those not stored before."""
        inserted: set[tuple[str, int]] = set()
        if not events:
            return inserted
        async with self._sessions() as session:
            # A Core statement with the rows as parameters: compiled once per process and
            # sent as multi-row INSERTs, where an ORM statement with the rows as its VALUES
            # is compiled again for every batch (half the CPU of a one-event write).
            statement = (
                insert_statement(session.get_bind().dialect.name, _AUDIT_TABLE)
                .on_conflict_do_nothing(index_elements=["session_id", "seq"])
                .returning(_AUDIT_TABLE.c.session_id, _AUDIT_TABLE.c.seq)
            )
            for start in range(0, len(events), INSERT_BATCH_SIZE):
                batch = events[start : start + INSERT_BATCH_SIZE]
                result = await session.execute(statement, [_values(event) for event in batch])
                inserted.update((row.session_id, row.seq) for row in result)
            await session.commit()
        return inserted

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

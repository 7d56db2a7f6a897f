"""The audit trail: idempotent appends, ordering, search filters and timestamps."""

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.event import listen
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.audit import AuditAppend, AuditLog
from store.models import AuditEventRow
from workflows.shared import AuditEvent, AuditEventType

pytestmark = pytest.mark.asyncio

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def event(
    session_id: str,
    seq: int,
    *,
    minutes: float = 0,
    worker_id: str = "worker-1",
    type: AuditEventType = AuditEventType.CHECK_RECORDED,
) -> AuditEvent:
    return AuditEvent(
        session_id=session_id,
        seq=seq,
        type=type,
        actor=worker_id,
        at=T0 + timedelta(minutes=minutes),
        worker_id=worker_id,
        sop_id="loto-press-7",
        data={"check_id": f"check-{seq}", "value": seq * 1.5, "nested": {"ok": True}},
    )


async def test_appending_the_same_events_twice_stores_each_once(audit_store: AuditLog) -> None:
    events = [event("s1", seq, minutes=seq) for seq in (1, 2, 3)]
    assert (await audit_store.append(events)).inserted == 3
    assert (await audit_store.append(events)).inserted == 0
    assert await audit_store.for_session("s1") == events


async def test_a_mixed_batch_inserts_only_the_new_events(audit_store: AuditLog) -> None:
    await audit_store.append([event("s1", 1), event("s1", 2)])
    retried = [event("s1", 2), event("s1", 3), event("s2", 1), event("s2", 1)]
    assert (await audit_store.append(retried)).inserted == 2
    assert [e.seq for e in await audit_store.for_session("s1")] == [1, 2, 3]
    assert [e.seq for e in await audit_store.for_session("s2")] == [1]


async def test_a_retried_event_keeps_its_first_content(audit_store: AuditLog) -> None:
    original = event("s1", 1)
    await audit_store.append([original])
    changed = event("s1", 1, type=AuditEventType.SESSION_ABORTED)
    assert (await audit_store.append([changed])).inserted == 0
    assert await audit_store.for_session("s1") == [original]


async def test_another_event_under_a_taken_number_is_kept_apart_and_a_repeat_is_not(
    audit_store: AuditLog,
) -> None:
    original = event("s1", 1)
    await audit_store.append([original])
    # The same change once more, replayed later (a reset that reapplies updates): no news.
    replayed = event("s1", 1, minutes=5)
    assert await audit_store.append([replayed, original]) == AuditAppend(0, [])
    # Another change under the same number (a reset that drops later updates).
    other = AuditEvent(**{**vars(event("s1", 1)), "data": {"check_id": "another"}})

    appended = await audit_store.append([other, event("s1", 2)])

    assert appended.inserted == 1
    assert [r.event for r in appended.dead_lettered] == [other]
    assert "different check_recorded event" in appended.dead_lettered[0].refusal
    assert await audit_store.for_session("s1") == [original, event("s1", 2)]
    assert [(row.session_id, row.seq) for row in await audit_store.dead_letters()] == [("s1", 1)]


async def test_a_writer_ahead_of_the_run_leaves_a_colliding_event_for_the_run_to_set_aside(
    audit_store: AuditLog,
) -> None:
    original = event("s1", 1)
    await audit_store.append([original])
    other = dataclasses.replace(original, data={"check_id": "another"})

    assert await audit_store.append_unless_refused([other, event("s1", 2)]) == 1
    assert await audit_store.dead_letters() == []

    # The session's run writes the same events later: it is told of the dead letter.
    appended = await audit_store.append([other, event("s1", 2)])
    assert [r.event for r in appended.dead_lettered] == [other]
    assert await audit_store.for_session("s1") == [original, event("s1", 2)]


async def test_a_writer_ahead_of_the_run_shares_a_write_without_dead_lettering_for_others(
    audit_store: AuditLog,
) -> None:
    await audit_store.append([event("s1", 1), event("s2", 1)])
    ahead = dataclasses.replace(event("s1", 1), data={"check_id": "ahead"})
    behind = dataclasses.replace(event("s2", 1), data={"check_id": "behind"})

    inserted, appended = await asyncio.gather(
        audit_store.append_unless_refused([ahead, event("s1", 2)]),
        audit_store.append([behind, event("s2", 2)]),
    )

    assert (inserted, appended.inserted) == (1, 1)
    assert [r.event for r in appended.dead_lettered] == [behind]
    assert [(row.session_id, row.seq) for row in await audit_store.dead_letters()] == [("s2", 1)]


async def test_appending_nothing_inserts_nothing(audit_store: AuditLog) -> None:
    assert (await audit_store.append([])).inserted == 0


async def test_a_batch_larger_than_one_insert_statement_is_stored_whole(
    audit_store: AuditLog,
) -> None:
    events = [event("long", seq, minutes=seq) for seq in range(1, 1202)]
    assert (await audit_store.append(events)).inserted == 1201
    assert (await audit_store.append(events[-10:] + [event("long", 1202)])).inserted == 1
    assert len(await audit_store.for_session("long")) == 1202


async def test_session_events_come_back_by_seq_whatever_the_insert_order(
    audit_store: AuditLog,
) -> None:
    await audit_store.append([event("s1", 3, minutes=1), event("s1", 1, minutes=3)])
    await audit_store.append([event("s1", 2, minutes=2), event("other", 1)])
    events = await audit_store.for_session("s1")
    assert [e.seq for e in events] == [1, 2, 3]
    assert all(isinstance(e.type, AuditEventType) for e in events)
    assert await audit_store.for_session("unknown") == []


async def test_search_filters_by_worker_session_and_time(audit_store: AuditLog) -> None:
    await audit_store.append(
        [
            event("a", 1, minutes=0, worker_id="ann"),
            event("a", 2, minutes=10, worker_id="ann"),
            event("b", 1, minutes=5, worker_id="bob"),
            event("c", 1, minutes=10, worker_id="ann"),
            event("c", 2, minutes=20, worker_id="ann"),
        ]
    )

    def keys(events: list[AuditEvent]) -> list[tuple[str, int]]:
        return [(e.session_id, e.seq) for e in events]

    assert keys(await audit_store.search()) == [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("c", 2)]
    assert keys(await audit_store.search(worker_id="bob")) == [("b", 1)]
    assert keys(await audit_store.search(session_id="c")) == [("c", 1), ("c", 2)]
    assert keys(await audit_store.search(worker_id="ann", session_id="b")) == []
    assert keys(await audit_store.search(since=T0 + timedelta(minutes=10))) == [
        ("a", 2),
        ("c", 1),
        ("c", 2),
    ]
    assert keys(await audit_store.search(until=T0 + timedelta(minutes=10))) == [("a", 1), ("b", 1)]
    window = await audit_store.search(
        worker_id="ann", since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=20)
    )
    assert keys(window) == [("a", 2), ("c", 1)]
    assert keys(await audit_store.search(limit=2)) == [("a", 1), ("b", 1)]


async def test_search_bounds_in_another_timezone_mean_the_same_instant(
    audit_store: AuditLog,
) -> None:
    await audit_store.append([event("a", 1, minutes=0), event("a", 2, minutes=30)])
    berlin = timezone(timedelta(hours=1))
    since = (T0 + timedelta(minutes=15)).astimezone(berlin)
    assert [e.seq for e in await audit_store.search(since=since)] == [2]


async def test_search_rejects_a_limit_below_one(audit_store: AuditLog) -> None:
    with pytest.raises(ValueError, match="limit"):
        await audit_store.search(limit=0)


async def test_timestamps_come_back_aware_in_utc(
    audit_store: AuditLog, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    local = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    stored = event("s1", 1)
    stored.at = local
    before = datetime.now(UTC).replace(microsecond=0)
    await audit_store.append([stored])

    [loaded] = await audit_store.for_session("s1")
    assert loaded.at == local
    assert loaded.at.utcoffset() == timedelta(0)
    assert loaded.at == datetime(2025, 3, 1, 7, 30, 15, 123456, tzinfo=UTC)
    async with session_factory() as session:
        row = (await session.scalars(select(AuditEventRow))).one()
    assert row.recorded_at.utcoffset() == timedelta(0)
    assert (
        before - timedelta(seconds=5) <= row.recorded_at <= datetime.now(UTC) + timedelta(seconds=5)
    )


async def test_a_naive_timestamp_is_kept_apart_as_a_dead_letter(audit_store: AuditLog) -> None:
    naive = event("s1", 1)
    naive.at = datetime(2025, 3, 1, 8, 0)

    appended = await audit_store.append([naive])

    assert appended.inserted == 0
    assert [r.event for r in appended.dead_lettered] == [naive]
    assert "naive datetime" in appended.dead_lettered[0].refusal
    assert await audit_store.for_session("s1") == []


async def test_appends_at_once_share_transactions_and_each_caller_hears_its_own_outcome(
    audit_store: AuditLog, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    commits: list[object] = []
    engine = session_factory.kw["bind"]
    listen(engine.sync_engine, "commit", commits.append)
    batches = [[event(f"s-{n}", seq) for seq in range(1, n % 3 + 2)] for n in range(40)]

    outcomes = await asyncio.gather(*(audit_store.append(batch) for batch in batches))

    assert [o.inserted for o in outcomes] == [len(batch) for batch in batches]
    for batch in batches:
        stored = await audit_store.for_session(batch[0].session_id)
        assert [e.seq for e in stored] == [e.seq for e in batch]
    assert len(commits) < len(batches) / 2


async def test_a_batch_sent_again_while_its_first_write_waits_is_stored_once(
    audit_store: AuditLog,
) -> None:
    batch = [event("s-retried", seq) for seq in (1, 2, 3)]

    first, again = await asyncio.gather(audit_store.append(batch), audit_store.append(batch))

    assert (first.inserted, again.inserted) == (3, 0)
    assert again.dead_lettered == []
    assert [e.seq for e in await audit_store.for_session("s-retried")] == [1, 2, 3]


async def test_two_events_under_one_number_sent_at_once_keep_the_first_and_set_aside_the_other(
    audit_store: AuditLog,
) -> None:
    first = event("s-clash", 1)
    other = dataclasses.replace(first, data={"check_id": "another"})

    kept, clashed = await asyncio.gather(audit_store.append([first]), audit_store.append([other]))

    assert (kept.inserted, clashed.inserted) == (1, 0)
    assert [r.event for r in clashed.dead_lettered] == [other]
    assert await audit_store.for_session("s-clash") == [first]

"""An audit event PostgreSQL refuses for good is kept apart; the events after it still land."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import make_url
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment

from activities.audit import DEAD_LETTER_METRIC, AuditActivities
from devstack.processes import free_port
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from workflows.shared import AuditEvent, AuditEventType

pytestmark = [pytest.mark.asyncio, pytest.mark.parametrize("backend", ["postgresql"])]

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def event(seq: int, *, actor: str = "worker-1", note: str = "ok") -> AuditEvent:
    return AuditEvent(
        session_id="s-dead-letters",
        seq=seq,
        type=AuditEventType.CHECK_RECORDED,
        actor=actor,
        at=T0 + timedelta(seconds=seq),
        worker_id="worker-1",
        sop_id="loto-press-7",
        data={"check_id": "breaker-off", "passed": True, "note": note},
    )


REFUSED = {
    2: event(2, note="NUL \x00 in JSONB"),
    4: event(4, actor="nul\x00actor"),
    5: event(5, note="unpaired \ud800 surrogate"),
    6: event(6, actor="a" * 300),
}
BATCH = [event(1), REFUSED[2], event(3), REFUSED[4], REFUSED[5], REFUSED[6], event(7)]


async def test_refused_events_are_kept_apart_and_the_rest_of_the_batch_lands(
    audit_store: AuditLog,
) -> None:
    appended = await audit_store.append(BATCH)

    assert appended.inserted == 3
    assert [r.event.seq for r in appended.dead_lettered] == [2, 4, 5, 6]
    assert [e.seq for e in await audit_store.for_session("s-dead-letters")] == [1, 3, 7]
    kept = await audit_store.dead_letters()
    assert [(row.session_id, row.seq) for row in kept] == [("s-dead-letters", s) for s in REFUSED]
    for row in kept:
        original = REFUSED[row.seq]
        document = json.loads(row.event_json)
        assert document["actor"] == original.actor
        assert document["data"] == original.data
        assert datetime.fromisoformat(document["at"]) == original.at
        assert row.refusal


async def test_a_retried_batch_keeps_each_refused_event_once(audit_store: AuditLog) -> None:
    await audit_store.append(BATCH)

    retried = await audit_store.append(BATCH)

    assert retried.inserted == 0
    assert retried.dead_lettered == []
    assert len(await audit_store.dead_letters()) == len(REFUSED)
    assert [e.seq for e in await audit_store.for_session("s-dead-letters")] == [1, 3, 7]


async def test_a_database_that_cannot_be_reached_fails_the_append_for_a_retry(
    database_url: str, audit_store: AuditLog
) -> None:
    unreachable = make_url(database_url).set(port=free_port()).render_as_string(False)
    engine = create_engine(unreachable)
    try:
        with pytest.raises(OSError):
            await AuditLog(create_transaction_factory(engine)).append(BATCH)
    finally:
        await engine.dispose()

    assert await audit_store.dead_letters() == []
    assert (await audit_store.append(BATCH)).inserted == 3


async def test_a_writer_ahead_of_the_run_stores_what_it_can_and_leaves_refused_events_to_the_run(
    audit_store: AuditLog,
) -> None:
    assert await audit_store.append_unless_refused(BATCH) == 3
    assert await audit_store.dead_letters() == []

    appended = await audit_store.append(BATCH)

    assert appended.inserted == 0
    assert [r.event.seq for r in appended.dead_lettered] == [2, 4, 5, 6]


async def test_the_activity_counts_and_logs_each_dead_letter(
    audit_store: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    metrics_port = free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"127.0.0.1:{metrics_port}")
        )
    )
    environment = ActivityEnvironment()
    environment.metric_meter = runtime.metric_meter
    activities = AuditActivities(audit_store)

    with caplog.at_level(logging.ERROR):
        inserted = await environment.run(activities.append_audit_events, BATCH)

    assert inserted == 3
    refused_lines = [r for r in caplog.records if "kept as a dead letter" in r.getMessage()]
    assert sorted(r.__dict__["seq"] for r in refused_lines) == sorted(REFUSED)
    async with httpx.AsyncClient() as client:
        scraped = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    [sample] = [line for line in scraped.splitlines() if line.startswith(DEAD_LETTER_METRIC)]
    assert float(sample.rsplit(" ", 1)[1]) == len(REFUSED)

"""One Idempotency-Key, one answer: in one run, across continue-as-new, around pauses.

The sessions here run on a dev server that suggests continue-as-new after a few
dozen events, so a handful of requests moves a session into a new run.
Every answer must be the contract's: no 5xx, a repeat of a key's first body
replays it, any other body under the key is 409 `idempotency_key_reused`, and
the session ends holding one record per key.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import Client

from api.deps import Services
from api.main import create_app
from engine.client import register_search_attributes
from runtime.settings import Settings
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from tests.helpers import (
    assert_eventually,
    bearer,
    new_user,
    start_dev_server,
    suggest_continue_as_new_after,
)
from tests.helpers.api import publish_sop
from worker import build_worker
from workflows.work_session import AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER, WorkSessionWorkflow

EXAMPLES = int(os.environ.get("PROPERTY_IDEMPOTENCY_EXAMPLES", "12"))
CAN_THRESHOLD_EVENTS = 40

# Bodies one key may be sent with: the first, another answer, another check and note.
BODIES: list[dict[str, Any]] = [
    {"check_id": "breaker-off", "passed": True},
    {"check_id": "breaker-off", "passed": False},
    {"check_id": "residual-v", "value": 1.0, "note": "read twice"},
]
UNKEYED_BODY: dict[str, Any] = {"check_id": "try-start", "passed": True}


@dataclass
class ShortRuns:
    """An API whose sessions continue as new every few requests, and its engine client."""

    api: httpx.AsyncClient
    client: Client
    sop_id: str


@pytest.fixture(scope="module")
async def short_runs(settings: Settings, services: Services) -> AsyncIterator[ShortRuns]:
    env = await start_dev_server(*suggest_continue_as_new_after(CAN_THRESHOLD_EVENTS))
    try:
        await register_search_attributes(env.client, "default")
        own = settings.model_copy(
            update={
                "temporal_address": env.client.service_client.config.target_host,
                "temporal_task_queue": f"short-runs-{uuid.uuid4().hex[:8]}",
            }
        )
        engine = create_engine(own.database_url)
        api_services = await Services.create(own)
        transport = httpx.ASGITransport(app=create_app(own, api_services))
        async with (
            build_worker(env.client, own, AuditLog(create_transaction_factory(engine))),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as api,
        ):
            sop = await publish_sop(api)
            yield ShortRuns(api, env.client, sop["id"])
        await api_services.close()
        await engine.dispose()
    finally:
        await env.shutdown()


async def start(runs: ShortRuns, worker: str) -> str:
    response = await runs.api.post(
        "/api/v1/sessions", json={"sop_id": runs.sop_id}, headers=bearer(worker)
    )
    assert response.status_code == 201, response.text
    session_id: str = response.json()["id"]
    return session_id


async def check(
    runs: ShortRuns, worker: str, session_id: str, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {**bearer(worker), **({"Idempotency-Key": key} if key else {})}
    return await runs.api.post(f"/api/v1/sessions/{session_id}/checks", json=body, headers=headers)


async def records(runs: ShortRuns, worker: str, session_id: str) -> list[dict[str, Any]]:
    response = await runs.api.get(f"/api/v1/sessions/{session_id}", headers=bearer(worker))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["safety_checks"]
    return found


def answer_of(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the body that made it."""
    body = {"check_id": record["check_id"], "note": record["note"]}
    if record["value"] is None:
        return {**body, "passed": record["passed"]}
    return {**body, "value": record["value"]}


def as_answer(body: dict[str, Any]) -> dict[str, Any]:
    return answer_of({"passed": None, "value": None, "note": None, **body})


async def run_id(runs: ShortRuns, session_id: str) -> str:
    return (await runs.client.get_workflow_handle(session_id).describe()).run_id


async def settle_into_a_new_run_if_due(runs: ShortRuns, session_id: str) -> None:
    """Lets a session whose run has grown long continue as new before the next request.

    A long run moves at its next workflow task: the next request's, or its audit
    write's when events are pending (the API wrote them at once, so the run's own
    write waits up to `AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER`). Waiting for that write
    puts the hand-over between requests.
    """
    handle = runs.client.get_workflow_handle(session_id)
    described = await handle.describe()
    if described.raw_description.workflow_execution_info.history_length < CAN_THRESHOLD_EVENTS:
        return
    if not await handle.query(WorkSessionWorkflow.get_unwritten_audit):
        return

    async def continued() -> None:
        assert await run_id(runs, session_id) != described.run_id

    await assert_eventually(
        continued, timeout=AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER.total_seconds() + 10
    )


async def test_a_key_with_another_check_answer_or_note_is_refused_in_the_same_run(
    short_runs: ShortRuns,
) -> None:
    worker = new_user()
    session_id = await start(short_runs, worker)
    first = await check(short_runs, worker, session_id, BODIES[0], "k-1")
    assert first.status_code == 201, first.text
    run = await run_id(short_runs, session_id)

    refused = [await check(short_runs, worker, session_id, body, "k-1") for body in BODIES[1:]]
    note_only = {**BODIES[0], "note": "another note"}
    refused.append(await check(short_runs, worker, session_id, note_only, "k-1"))
    replayed = await check(short_runs, worker, session_id, BODIES[0], "k-1")

    assert await run_id(short_runs, session_id) == run
    for response in refused:
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "idempotency_key_reused"
    assert replayed.status_code == 201, replayed.text
    assert replayed.json()["safety_checks"] == first.json()["safety_checks"]
    assert [answer_of(r) for r in await records(short_runs, worker, session_id)] == [
        as_answer(BODIES[0])
    ]


async def test_a_key_names_one_record_after_the_session_continued_as_new(
    short_runs: ShortRuns,
) -> None:
    worker = new_user()
    session_id = await start(short_runs, worker)
    first = await check(short_runs, worker, session_id, BODIES[2], "k-1")
    assert first.status_code == 201, first.text
    first_run = await run_id(short_runs, session_id)
    while await run_id(short_runs, session_id) == first_run:
        filler = await check(short_runs, worker, session_id, UNKEYED_BODY)
        assert filler.status_code == 201, filler.text
        await settle_into_a_new_run_if_due(short_runs, session_id)
    before = await records(short_runs, worker, session_id)

    refused = await check(short_runs, worker, session_id, {**BODIES[2], "value": 2.0}, "k-1")
    replayed = await check(short_runs, worker, session_id, BODIES[2], "k-1")

    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "idempotency_key_reused"
    assert replayed.status_code == 201, replayed.text
    assert replayed.json()["safety_checks"] == before
    assert await records(short_runs, worker, session_id) == before


async def test_a_key_refused_while_paused_records_once_the_session_resumes(
    short_runs: ShortRuns,
) -> None:
    worker = new_user()
    session_id = await start(short_runs, worker)
    actions = f"/api/v1/sessions/{session_id}"
    assert (await short_runs.api.post(f"{actions}/pause", headers=bearer(worker))).is_success

    refused = await check(short_runs, worker, session_id, BODIES[0], "k-1")
    assert (await short_runs.api.post(f"{actions}/resume", headers=bearer(worker))).is_success
    recorded = await check(short_runs, worker, session_id, BODIES[0], "k-1")

    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "invalid_transition"
    assert recorded.status_code == 201, recorded.text
    assert [answer_of(r) for r in recorded.json()["safety_checks"]] == [as_answer(BODIES[0])]


async def test_a_start_key_with_another_sop_or_version_is_refused(
    short_runs: ShortRuns,
) -> None:
    worker = new_user()
    sop = await publish_sop(short_runs.api)
    await publish_sop(short_runs.api, sop_id=sop["id"])
    headers = {**bearer(worker), "Idempotency-Key": "start-1"}

    async def start_with(**body: Any) -> httpx.Response:
        return await short_runs.api.post("/api/v1/sessions", json=body, headers=headers)

    first = await start_with(sop_id=sop["id"], sop_version=1)
    same = await start_with(sop_id=sop["id"], sop_version=1)
    other_version = await start_with(sop_id=sop["id"], sop_version=2)
    other_sop = await start_with(sop_id=short_runs.sop_id)

    assert first.status_code == same.status_code == 201, (first.text, same.text)
    assert (same.json()["id"], same.json()["sop_version"]) == (first.json()["id"], 1)
    for refused in (other_version, other_sop):
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "idempotency_key_reused"


@dataclass
class Expected:
    """What the contract says a session holds after the requests sent so far."""

    paused: bool = False
    bodies_by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    unkeyed: int = 0

    def answers(self) -> list[dict[str, Any]]:
        return sorted(
            (
                *(as_answer(b) for b in self.bodies_by_key.values()),
                *[as_answer(UNKEYED_BODY)] * self.unkeyed,
            ),
            key=repr,
        )


KEYS = st.sampled_from(["k-1", "k-2", "k-3"])
BODY_INDEXES = st.integers(min_value=0, max_value=len(BODIES) - 1)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("check"), KEYS, BODY_INDEXES),
        st.tuples(st.just("twice"), KEYS, BODY_INDEXES, BODY_INDEXES),
        st.tuples(st.just("unkeyed")),
        st.tuples(st.just("pause")),
        st.tuples(st.just("resume")),
        st.tuples(st.just("settle")),
    ),
    min_size=1,
    max_size=16,
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=STEPS)
async def test_repeated_keys_never_fail_the_server_and_each_names_one_record(
    short_runs: ShortRuns, steps: list[tuple[Any, ...]]
) -> None:
    worker = new_user()
    session_id = await start(short_runs, worker)
    expected = Expected()

    for step in steps:
        match step:
            case ("check", key, body_index):
                response = await check(short_runs, worker, session_id, BODIES[body_index], key)
                answer_check(expected, key, body_index, response)
            case ("twice", key, first_index, second_index):
                responses = await asyncio.gather(
                    check(short_runs, worker, session_id, BODIES[first_index], key),
                    check(short_runs, worker, session_id, BODIES[second_index], key),
                )
                answer_burst(expected, key, (first_index, second_index), responses)
            case ("unkeyed",):
                response = await check(short_runs, worker, session_id, UNKEYED_BODY)
                assert response.status_code == (409 if expected.paused else 201), response.text
                expected.unkeyed += 0 if expected.paused else 1
            case ("pause" | "resume" as action,):
                response = await short_runs.api.post(
                    f"/api/v1/sessions/{session_id}/{action}", headers=bearer(worker)
                )
                allowed = expected.paused == (action == "resume")
                assert response.status_code == (200 if allowed else 409), response.text
                if allowed:
                    expected.paused = action == "pause"
            case ("settle",):
                await settle_into_a_new_run_if_due(short_runs, session_id)

    held = await records(short_runs, worker, session_id)
    assert sorted((answer_of(r) for r in held), key=repr) == expected.answers()


def answer_check(expected: Expected, key: str, body_index: int, response: httpx.Response) -> None:
    """Checks one keyed request's answer against the contract and notes what it recorded."""
    assert response.status_code < 500, response.text
    body = BODIES[body_index]
    first = expected.bodies_by_key.get(key)
    if first is not None:
        if first == body:
            assert response.status_code == 201, response.text
        else:
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "idempotency_key_reused"
    elif expected.paused:
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "invalid_transition"
    else:
        assert response.status_code == 201, response.text
        expected.bodies_by_key[key] = body


def answer_burst(
    expected: Expected,
    key: str,
    body_indexes: tuple[int, int],
    responses: Sequence[httpx.Response],
) -> None:
    """Two requests with one key at once: at most one record, and only the contract's codes."""
    for response in responses:
        assert response.status_code < 500, response.text
    if key in expected.bodies_by_key or expected.paused:
        for body_index, response in zip(body_indexes, responses, strict=True):
            answer_check(expected, key, body_index, response)
        return
    accepted = [i for i, r in zip(body_indexes, responses, strict=True) if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert accepted, [r.text for r in responses]
    assert len(set(map(str, accepted))) == 1
    expected.bodies_by_key[key] = BODIES[accepted[0]]
    for response in refused:
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "idempotency_key_reused"

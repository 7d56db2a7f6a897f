"""Session ids a supervisor reads in the Web UI list; old UUID ids keep working."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from temporalio.client import Client

from api.schemas import ID_PATTERN, SOP_ID_PATTERN
from engine.session_ids import readable_session_id
from engine.starting import start_session_workflow
from runtime.settings import Settings
from tests.helpers import bearer, new_user, sop_snapshot
from tests.helpers.api import act, publish_sop, record, start_session

READABLE = re.compile(
    r"^(?P<worker>[a-z0-9-]+)\.(?P<sop>[a-z0-9-]+)\.(?P<minute>\d{8}-\d{4})\.[a-z2-7]{8}$"
)


@pytest.fixture
async def sop(api: httpx.AsyncClient) -> dict[str, Any]:
    return await publish_sop(api)


@given(worker_id=st.text(max_size=200), sop_id=st.from_regex(SOP_ID_PATTERN, fullmatch=True))
def test_every_readable_id_is_a_valid_bounded_session_id(worker_id: str, sop_id: str) -> None:
    session_id = readable_session_id(worker_id, sop_id, datetime.now(UTC))

    assert re.fullmatch(ID_PATTERN, session_id)
    assert len(session_id) <= 80
    assert READABLE.match(session_id)


@pytest.mark.parametrize(
    ("worker_id", "shown"),
    [
        ("alice", "alice"),
        ("Ana.Muller@plant.example", "ana-muller-plant-example"),
        ("auth0|64b1f0c2e4", "auth0-64b1f0c2e4"),
        ("Ana Müller", "ana-muller"),
        ("@@@", "worker"),
        ("x" * 60, "x" * 24),
    ],
)
def test_the_worker_part_keeps_what_an_id_can_carry(worker_id: str, shown: str) -> None:
    parts = READABLE.match(readable_session_id(worker_id, "loto-press-7", datetime.now(UTC)))

    assert parts is not None and parts["worker"] == shown


async def test_a_new_session_id_names_the_worker_the_sop_and_the_start_minute(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker = f"Ana.Muller-{uuid.uuid4().hex[:6]}@plant"
    session = await start_session(api, worker, sop["id"])

    parts = READABLE.match(session["id"])
    assert parts is not None, session["id"]
    assert parts["worker"] == re.sub(r"[^a-z0-9]+", "-", worker.lower())[:24].strip("-")
    assert parts["sop"] == sop["id"]
    started = datetime.fromisoformat(session["started_at"])
    assert parts["minute"] == started.astimezone(UTC).strftime("%Y%m%d-%H%M")

    paused = await act(api, worker, session["id"], "pause", {"reason": "break"})
    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED"


async def test_the_same_key_names_one_session_and_another_request_with_it_is_refused(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker, other_worker = new_user(), new_user()
    key = {"Idempotency-Key": f"start-{uuid.uuid4()}"}
    first = await start_session(api, worker, sop["id"], **key)
    again = await start_session(api, worker, sop["id"], **key)
    someone_else = await start_session(api, other_worker, sop["id"], **key)

    assert again["id"] == first["id"]
    assert someone_else["id"] != first["id"]
    for body in ({"sop_id": "forklift-preshift"}, {"sop_id": sop["id"], "sop_version": 1}):
        refused = await api.post("/api/v1/sessions", json=body, headers={**bearer(worker), **key})
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "idempotency_key_reused"
    mine = await api.get("/api/v1/sessions", headers=bearer(worker))
    assert [item["id"] for item in mine.json()["items"]] in ([], [first["id"]])


async def test_a_session_with_an_old_uuid_id_works_through_the_api(
    api: httpx.AsyncClient, temporal_client: Client, settings: Settings, sop: dict[str, Any]
) -> None:
    worker = new_user()
    session_id = str(uuid.uuid4())
    await start_session_workflow(
        temporal_client,
        session_id=session_id,
        worker_id=worker,
        sop=sop_snapshot(sop["id"], sop["version"], sop["title"]),
        task_queue=settings.temporal_task_queue,
    )

    read = await api.get(f"/api/v1/sessions/{session_id}", headers=bearer(worker))
    assert read.status_code == 200 and read.json()["id"] == session_id
    assert (await record(api, worker, session_id, "breaker-off", passed=True)).status_code == 201
    assert (await act(api, worker, session_id, "pause")).status_code == 200
    trail = await api.get(f"/api/v1/sessions/{session_id}/audit", headers=bearer(worker))
    assert trail.status_code == 200

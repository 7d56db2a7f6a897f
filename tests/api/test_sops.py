"""The SOP catalog over HTTP, and the snapshot a session keeps of its SOP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from runtime.settings import Settings
from tests.helpers import bearer, new_user, sop_definition
from tests.helpers.api import api_of_its_own, publish_sop, record, start_session

SUPERVISOR = bearer("sup-catalog", "supervisor")
PUBLISHES = 30


async def test_the_example_sops_are_in_the_catalog(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/sops", headers=bearer(new_user()))

    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["items"]}
    assert {"loto-press-7", "confined-space-entry", "forklift-preshift"} <= set(items)
    assert all(i["step_count"] > 0 and i["check_count"] > 0 for i in items.values())


async def test_publishing_again_adds_a_version_and_keeps_the_old_one(
    api: httpx.AsyncClient,
) -> None:
    first = await publish_sop(api)
    changed = sop_definition(first["id"], title="Lockout/Tagout: Test Press (rev B)")
    second = await api.post("/api/v1/sops", json=changed, headers=SUPERVISOR)

    assert second.status_code == 201
    assert second.json()["version"] == first["version"] + 1
    latest = await api.get(f"/api/v1/sops/{first['id']}", headers=bearer(new_user()))
    assert latest.json()["title"] == "Lockout/Tagout: Test Press (rev B)"
    old = await api.get(
        f"/api/v1/sops/{first['id']}", params={"version": 1}, headers=bearer(new_user())
    )
    assert old.json()["title"] == first["title"]
    missing = await api.get(
        f"/api/v1/sops/{first['id']}", params={"version": 99}, headers=bearer(new_user())
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "sop_not_found"


async def test_concurrent_publishes_through_two_apis_all_succeed_with_consecutive_versions(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    first = await publish_sop(api)
    revision = sop_definition(first["id"], title="Lockout/Tagout: Test Press (rev C)")
    # A second API process on the same database, as when the API is scaled out.
    async with api_of_its_own(settings) as (other_api, _):
        responses = await asyncio.gather(
            *(
                (api, other_api)[i % 2].post("/api/v1/sops", json=revision, headers=SUPERVISOR)
                for i in range(PUBLISHES)
            )
        )

    assert [r.status_code for r in responses] == [201] * PUBLISHES, [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == list(range(2, PUBLISHES + 2))


async def test_a_running_session_keeps_the_sop_version_it_started_with(
    api: httpx.AsyncClient,
) -> None:
    sop = await publish_sop(api)
    worker = new_user()
    session = await start_session(api, worker, sop["id"])
    revised = sop_definition(sop["id"], title="Renamed")
    revised["steps"][0]["checks"] = revised["steps"][0]["checks"][:1]
    assert (await api.post("/api/v1/sops", json=revised, headers=SUPERVISOR)).status_code == 201

    answered = await record(api, worker, session["id"], "residual-v", value=1.0)

    assert answered.status_code == 201
    assert answered.json()["sop_title"] == sop["title"]
    assert answered.json()["sop_version"] == 1
    newer = await start_session(api, worker, sop["id"])
    assert newer["sop_version"] == 2
    assert newer["progress"]["checks_total"] == 3


async def test_a_session_can_start_on_an_older_version(api: httpx.AsyncClient) -> None:
    sop = await publish_sop(api)
    await api.post("/api/v1/sops", json=sop_definition(sop["id"], title="v2"), headers=SUPERVISOR)

    response = await api.post(
        "/api/v1/sessions",
        json={"sop_id": sop["id"], "sop_version": 1},
        headers=bearer(new_user()),
    )

    assert response.status_code == 201
    assert response.json()["sop_title"] == sop["title"]


def broken(change: str) -> dict[str, Any]:
    definition = sop_definition()
    steps = definition["steps"]
    if change == "no-steps":
        definition["steps"] = []
    elif change == "duplicate-step":
        steps[1]["id"] = steps[0]["id"]
    elif change == "duplicate-check":
        steps[1]["checks"][0]["id"] = steps[0]["checks"][0]["id"]
    elif change == "measurement-without-unit":
        del steps[0]["checks"][1]["unit"]
    elif change == "min-above-max":
        steps[0]["checks"][1]["min"] = 10
    elif change == "unknown-kind":
        steps[0]["checks"][0]["kind"] = "photo"
    elif change == "bad-id":
        definition["id"] = "../etc/passwd"
    return definition


@pytest.mark.parametrize(
    "change",
    [
        "no-steps",
        "duplicate-step",
        "duplicate-check",
        "measurement-without-unit",
        "min-above-max",
        "unknown-kind",
        "bad-id",
    ],
)
async def test_invalid_definitions_are_refused_and_publish_nothing(
    api: httpx.AsyncClient, change: str
) -> None:
    definition = broken(change)

    response = await api.post("/api/v1/sops", json=definition, headers=SUPERVISOR)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"
    if change != "bad-id":
        lookup = await api.get(f"/api/v1/sops/{definition['id']}", headers=SUPERVISOR)
        assert lookup.status_code == 404


async def test_health_and_readiness(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}

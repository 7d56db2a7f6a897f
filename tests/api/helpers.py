"""Building blocks for API tests: a small SOP and a client that speaks as one user."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import bearer


def sop_definition(
    sop_id: str | None = None, title: str = "Lockout/Tagout: Test Press"
) -> dict[str, Any]:
    """Two steps: a required confirmation and measurement, then one required and one optional."""
    return {
        "id": sop_id or f"test-sop-{uuid.uuid4().hex[:8]}",
        "title": title,
        "description": "Used by the tests.",
        "steps": [
            {
                "id": "isolate",
                "title": "Isolate energy",
                "instructions": "Switch off and lock the main breaker.",
                "checks": [
                    {"id": "breaker-off", "prompt": "Breaker off and locked", "kind": "confirm"},
                    {
                        "id": "residual-v",
                        "prompt": "Residual voltage",
                        "kind": "measurement",
                        "unit": "V",
                        "min": 0,
                        "max": 5,
                    },
                ],
            },
            {
                "id": "verify",
                "title": "Verify zero energy",
                "checks": [
                    {"id": "try-start", "prompt": "Start button does nothing", "kind": "confirm"},
                    {
                        "id": "photo",
                        "prompt": "Photo of the tag taken",
                        "kind": "confirm",
                        "required": False,
                    },
                ],
            },
        ],
    }


async def publish_sop(api: httpx.AsyncClient, **kwargs: Any) -> dict[str, Any]:
    """Publishes a fresh test SOP as a supervisor."""
    response = await api.post(
        "/api/v1/sops", json=sop_definition(**kwargs), headers=bearer("sup-publisher", "supervisor")
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def start_session(
    api: httpx.AsyncClient, worker: str, sop_id: str, **headers: str
) -> dict[str, Any]:
    """Starts a session as `worker` and returns it."""
    response = await api.post(
        "/api/v1/sessions", json={"sop_id": sop_id}, headers={**bearer(worker), **headers}
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def act(
    api: httpx.AsyncClient, worker: str, session_id: str, action: str, body: Any = None
) -> httpx.Response:
    """Sends one session command as `worker`."""
    return await api.post(
        f"/api/v1/sessions/{session_id}/{action}", json=body, headers=bearer(worker)
    )


async def record(
    api: httpx.AsyncClient, worker: str, session_id: str, check_id: str, **answer: Any
) -> httpx.Response:
    """Records one check answer as `worker`."""
    return await api.post(
        f"/api/v1/sessions/{session_id}/checks",
        json={"check_id": check_id, **answer},
        headers=bearer(worker),
    )

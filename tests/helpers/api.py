"""API calls as one user: publish the test SOP, start a session, send a command or a check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from api.deps import Services
from api.main import create_app
from runtime.settings import Settings
from tests.helpers import bearer, new_user, sop_definition


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


async def new_session(api: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    """A new worker's session of a newly published SOP: the worker's id and the session."""
    sop = await publish_sop(api)
    worker = new_user()
    return worker, await start_session(api, worker, sop["id"])


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


@asynccontextmanager
async def api_of_its_own(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """An API built from `settings` with services of its own (closed at the end), and no worker."""
    services = await Services.create(settings)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            yield api, services
    finally:
        await services.close()

"""An unexpected error answers the problem 500 on a real server and keeps the connection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from api.deps import Services
from api.main import create_app
from runtime.settings import Settings
from tests.helpers.uvicorn_server import served_on_loopback


def app_with_a_fault(settings: Settings, services: Services) -> FastAPI:
    """The API plus a route that fails as a bug would, and one naming the caller's port."""
    app = create_app(settings, services)

    async def fail() -> None:
        raise LookupError("a fault nobody anticipated")

    async def peer(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}

    app.add_api_route("/fault", fail)
    app.add_api_route("/peer", peer)
    return app


@pytest.fixture
async def server_url(settings: Settings, services: Services) -> AsyncIterator[str]:
    async with served_on_loopback(app_with_a_fault(settings, services)) as url:
        yield url


async def test_an_unexpected_error_is_a_problem_and_the_connection_stays_usable(
    server_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        before = (await client.get("/peer")).json()["port"]

        failed = await client.get("/fault")
        after = await client.get("/peer")

    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["code"] == "internal_error"
    assert "nobody anticipated" not in failed.text
    assert failed.headers["X-Request-ID"]
    assert failed.headers.get("connection") != "close"
    assert after.status_code == 200
    assert after.json()["port"] == before, "the client had to open a new connection"

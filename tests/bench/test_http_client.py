"""The load generator's HTTP client against a real uvicorn server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from bench.http import HttpClient
from tests.helpers.uvicorn_server import served_on_loopback

# Short, so that a test can wait for the server to close an idle connection.
KEEP_ALIVE_SECONDS = 1


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo", status_code=201)
    async def echo(request: Request) -> dict[str, object]:
        return {
            "body": await request.json(),
            "content_type": request.headers.get("content-type"),
            "key": request.headers.get("idempotency-key"),
        }

    @app.get("/peer")
    async def peer(request: Request, tag: str = "") -> dict[str, object]:
        assert request.client is not None
        return {"port": request.client.port, "tag": tag}

    @app.get("/chunks")
    async def chunks() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"one,", b"two,", b"three"):
                yield part

        return StreamingResponse(parts(), media_type="text/plain")

    return app


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    async with served_on_loopback(echo_app(), timeout_keep_alive=KEEP_ALIVE_SECONDS) as url:
        yield url


async def test_a_json_request_gets_its_status_headers_and_body(server_url: str) -> None:
    async with HttpClient(server_url) as http:
        body = {"check_id": "breaker-off", "note": "Ω"}
        response = await http.post("/echo", json=body, headers={"Idempotency-Key": "k1"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "body": {"check_id": "breaker-off", "note": "Ω"},
        "content_type": "application/json",
        "key": "k1",
    }


async def test_requests_one_after_another_share_one_connection(server_url: str) -> None:
    async with HttpClient(server_url) as http:
        ports = {(await http.get(f"/peer?tag={n}")).json()["port"] for n in range(5)}
        assert (await http.get("/peer?tag=x")).json()["tag"] == "x"
    assert len(ports) == 1


async def test_a_chunked_answer_is_read_whole(server_url: str) -> None:
    async with HttpClient(server_url) as http:
        response = await http.get("/chunks")
        again = await http.get("/peer")
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.text == "one,two,three"
    assert again.status_code == 200, "the connection is usable after a chunked answer"


async def test_a_connection_the_server_closed_while_idle_is_replaced(server_url: str) -> None:
    async with HttpClient(server_url) as http:
        first = (await http.get("/peer")).json()["port"]
        await asyncio.sleep(KEEP_ALIVE_SECONDS + 0.5)
        second = await http.get("/peer")
    assert second.status_code == 200
    assert second.json()["port"] != first


async def test_concurrent_requests_stay_within_the_connection_limit(server_url: str) -> None:
    async with HttpClient(server_url, max_connections=2) as http:
        answers = await asyncio.gather(*(http.get(f"/peer?tag={n}") for n in range(10)))
    assert [a.json()["tag"] for a in answers] == [str(n) for n in range(10)]
    assert len({a.json()["port"] for a in answers}) <= 2

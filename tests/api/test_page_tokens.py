"""Page tokens are sealed for one caller and one list: forged or foreign ones are 422 at once."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.deps import Services
from api.main import create_app
from api.page_tokens import PageTokens
from devstack.processes import free_port
from runtime.settings import DEV_PAGE_TOKEN_SECRET, Settings
from tests.helpers import TEST_SECRET, assert_eventually, bearer, new_user
from tests.helpers.api import publish_sop, start_session

SUPERVISOR = ("sup-pages", "supervisor")


async def first_page(
    api: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    async def with_a_next_page() -> dict[str, Any]:
        response = await api.get("/api/v1/sessions", params={"limit": 1, **params}, headers=headers)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        assert page["next_page_token"], page
        return page

    return await assert_eventually(with_a_next_page)


@pytest.fixture(scope="module")
async def two_workers(api: httpx.AsyncClient) -> tuple[str, str]:
    sop = await publish_sop(api)
    workers = (new_user(), new_user())
    for worker in workers:
        for _ in range(2):
            await start_session(api, worker, sop["id"])
    return workers


async def test_a_worker_cannot_continue_another_workers_list(
    api: httpx.AsyncClient, two_workers: tuple[str, str]
) -> None:
    alice, bob = two_workers
    token = (await first_page(api, bearer(alice)))["next_page_token"]

    own = await api.get(
        "/api/v1/sessions", params={"limit": 1, "page_token": token}, headers=bearer(alice)
    )
    foreign = await api.get(
        "/api/v1/sessions", params={"limit": 1, "page_token": token}, headers=bearer(bob)
    )

    assert own.status_code == 200, own.text
    assert foreign.status_code == 422
    assert foreign.json()["code"] == "validation_error"


async def test_a_supervisors_token_serves_neither_another_supervisor_nor_another_filter(
    api: httpx.AsyncClient, two_workers: tuple[str, str]
) -> None:
    alice, bob = two_workers
    token = (await first_page(api, bearer(*SUPERVISOR), worker_id=alice))["next_page_token"]

    for headers, worker_id in [
        (bearer("sup-other", "supervisor"), alice),
        (bearer(*SUPERVISOR), bob),
        (bearer(*SUPERVISOR), None),
    ]:
        params = {"limit": 1, "page_token": token, "worker_id": worker_id}
        response = await api.get(
            "/api/v1/sessions", params={k: v for k, v in params.items() if v}, headers=headers
        )
        assert response.status_code == 422, (worker_id, response.text)


@pytest.fixture
async def api_without_temporal(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An API whose Temporal server is gone: only an answer made without Temporal is a 4xx."""
    unreachable = settings.model_copy(
        update={"temporal_address": f"127.0.0.1:{free_port()}", "temporal_rpc_timeout_seconds": 1}
    )
    services = await Services.create(unreachable)
    transport = httpx.ASGITransport(app=create_app(unreachable, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await services.close()


def unkeyed_token(query: str, inner: bytes) -> str:
    """A token built as anyone reading the source could build one without a key."""
    digest = hashlib.sha256(query.encode() + b"\0" + inner).digest()[:12]
    return base64.urlsafe_b64encode(digest + inner).decode()


@pytest.mark.parametrize(
    "page_token",
    [
        PageTokens(b"a key this deployment never had").seal("mallory", "any", b"\x0a\x02forged")
        or "",
        PageTokens(DEV_PAGE_TOKEN_SECRET.encode()).seal("mallory", "any", b"\x0a\x02forged") or "",
        unkeyed_token("WorkflowType = 'WorkSessionWorkflow'", b"\x0a\x02forged"),
    ],
    ids=["wrong-key", "embedded-default-key", "unkeyed-digest"],
)
async def test_a_forged_token_is_refused_without_calling_temporal(
    api_without_temporal: httpx.AsyncClient, page_token: str
) -> None:
    forged = await api_without_temporal.get(
        "/api/v1/sessions", params={"page_token": page_token}, headers=bearer("mallory")
    )

    assert forged.status_code == 422
    assert forged.json()["code"] == "validation_error"


async def test_every_replica_with_the_same_settings_continues_the_others_lists(
    settings: Settings, two_workers: tuple[str, str]
) -> None:
    alice, _bob = two_workers
    replicas = [await Services.create(settings) for _ in range(2)]
    transports = [httpx.ASGITransport(app=create_app(settings, s)) for s in replicas]
    try:
        async with (
            httpx.AsyncClient(transport=transports[0], base_url="http://a") as first,
            httpx.AsyncClient(transport=transports[1], base_url="http://b") as second,
        ):
            token = (await first_page(first, bearer(alice)))["next_page_token"]
            continued = await second.get(
                "/api/v1/sessions", params={"limit": 1, "page_token": token}, headers=bearer(alice)
            )
    finally:
        for services in replicas:
            await services.close()

    assert continued.status_code == 200, continued.text
    assert len(continued.json()["items"]) == 1


def test_the_page_token_key_comes_from_configuration() -> None:
    configured = Settings(page_token_secret="p" * 32)
    from_jwt_secret = Settings(auth_jwt_secret=TEST_SECRET)

    assert configured.page_token_key() == b"p" * 32
    assert (
        from_jwt_secret.page_token_key() == Settings(auth_jwt_secret=TEST_SECRET).page_token_key()
    )
    assert from_jwt_secret.page_token_key() != TEST_SECRET.encode()
    assert Settings(embedded=True).page_token_key() == DEV_PAGE_TOKEN_SECRET.encode()
    provider_only = Settings(auth_jwks_url="https://idp.example/jwks")
    assert provider_only.page_token_key() != Settings(auth_jwks_url="x").page_token_key()


async def test_an_api_that_never_reached_temporal_answers_503_not_500(
    api_without_temporal: httpx.AsyncClient,
) -> None:
    session = "2f1c0a59-5d0c-4c8e-9a51-3e7b2b9f6a10"
    answers = [
        await api_without_temporal.get("/api/v1/sessions", headers=bearer("walter")),
        await api_without_temporal.get(f"/api/v1/sessions/{session}", headers=bearer("walter")),
        await api_without_temporal.post(
            f"/api/v1/sessions/{session}/pause", json={}, headers=bearer("walter")
        ),
    ]

    assert [a.status_code for a in answers] == [503, 503, 503]
    assert {a.json()["code"] for a in answers} == {"temporal_unavailable"}
    assert all(a.headers["Retry-After"] for a in answers)

"""The codec endpoints the Web UI decrypts with: supervisors only, loopback under `make run`,
CORS for the Web UI's origin alone."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api.deps import Services
from api.main import create_app
from engine.codec import KEY_ID_METADATA
from runtime.settings import Settings
from tests.helpers import bearer

KEYS = ",".join(f"{name}:{base64.b64encode(os.urandom(32)).decode()}" for name in ("old", "new"))
UI = "http://localhost:8233"
REMOTE = ("203.0.113.7", 50000)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


NOTE = {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(b'{"note":"meter M-12"}')}


@asynccontextmanager
async def codec_api(
    settings: Settings, *, client: tuple[str, int] = ("127.0.0.1", 40000), **changes: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings.model_copy(
        update={"payload_encryption_keys": SecretStr(KEYS), "temporal_ui_url": UI, **changes}
    )
    services = await Services.create(settings)
    transport = httpx.ASGITransport(app=create_app(settings, services), client=client)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
    finally:
        await services.close()


def supervisor() -> dict[str, str]:
    return {**bearer("sup-codec", "supervisor"), "X-Namespace": "default"}


async def test_a_supervisor_encrypts_and_decrypts_payloads_with_the_newest_key(
    settings: Settings,
) -> None:
    async with codec_api(settings, client=REMOTE) as http:
        encoded = await http.post("/codec/encode", json={"payloads": [NOTE]}, headers=supervisor())
        assert encoded.status_code == 200, encoded.text
        [sealed] = encoded.json()["payloads"]
        assert base64.b64decode(sealed["metadata"][KEY_ID_METADATA]) == b"new"
        assert b"meter" not in base64.b64decode(sealed["data"])

        decoded = await http.post(
            "/codec/decode", json={"payloads": [sealed, NOTE]}, headers=supervisor()
        )
        assert decoded.status_code == 200, decoded.text
        assert decoded.json() == {"payloads": [NOTE, NOTE]}


async def test_only_supervisors_may_decode(settings: Settings) -> None:
    body = {"payloads": [NOTE]}
    async with codec_api(settings, client=REMOTE) as http:
        anonymous = await http.post("/codec/decode", json=body)
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
        worker = await http.post("/codec/decode", json=body, headers=bearer("w-codec", "worker"))
        assert (worker.status_code, worker.json()["code"]) == (403, "forbidden")
        other = await http.post(
            "/codec/decode", json=body, headers={**supervisor(), "X-Namespace": "elsewhere"}
        )
        assert other.status_code == 403
        stranger = await http.post("/codec/decode", json=body, headers={"X-Namespace": "x"})
        assert stranger.status_code == 401, "the namespace is named to supervisors only"


async def test_under_make_run_tokenless_callers_on_this_machine_only(settings: Settings) -> None:
    dev: dict[str, Any] = {"auth_jwt_secret": None}
    body = {"payloads": [NOTE]}
    async with codec_api(settings, **dev) as http:
        assert (await http.post("/codec/decode", json=body)).status_code == 200
        relayed = await http.post(
            "/codec/decode", json=body, headers={"X-Forwarded-For": REMOTE[0]}
        )
        assert relayed.status_code == 403
    async with codec_api(settings, client=REMOTE, **dev) as http:
        refused = await http.post("/codec/decode", json=body)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    async with codec_api(settings) as http:
        # With a real secret configured, a loopback caller needs a supervisor's token too.
        assert (await http.post("/codec/decode", json=body)).status_code == 401


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
    }


async def test_cors_answers_the_web_ui_origin_on_the_codec_paths_only(settings: Settings) -> None:
    async with codec_api(settings) as http:
        for ui in (UI, "http://127.0.0.1:8233"):
            allowed = await http.options("/codec/decode", headers=preflight(ui))
            assert allowed.status_code == 200
            assert allowed.headers["access-control-allow-origin"] == ui
            assert "x-namespace" in allowed.headers["access-control-allow-headers"].lower()
        stranger = await http.options("/codec/decode", headers=preflight("https://evil.example"))
        assert (stranger.status_code, stranger.json()["code"]) == (403, "forbidden")
        assert stranger.headers["content-type"] == "application/problem+json"
        assert "access-control-allow-origin" not in stranger.headers
        odd_header = {**preflight(UI), "Access-Control-Request-Headers": "x-something-else"}
        assert (await http.options("/codec/decode", headers=odd_header)).status_code == 403
        elsewhere = await http.options("/api/v1/sessions", headers=preflight(UI))
        assert "access-control-allow-origin" not in elsewhere.headers
        answer = await http.post(
            "/codec/decode", json={"payloads": [NOTE]}, headers={**supervisor(), "Origin": UI}
        )
        assert answer.headers["access-control-allow-origin"] == UI


async def test_the_ui_origin_is_a_setting(settings: Settings) -> None:
    origin = "https://temporal.plant.example"
    async with codec_api(settings, codec_allowed_origins=origin) as http:
        assert (await http.options("/codec/decode", headers=preflight(origin))).status_code == 200
        assert (await http.options("/codec/decode", headers=preflight(UI))).status_code == 403


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"metadata": {"encoding": "not base64!"}, "data": ""}, "validation_error"),
        ({"metadata": {}, "data": 7}, "validation_error"),
        (
            {
                "metadata": {"encoding": b64(b"binary/encrypted"), KEY_ID_METADATA: b64(b"new")},
                "data": b64(os.urandom(40)),
            },
            "undecryptable_payload",
        ),
        (
            {
                "metadata": {"encoding": b64(b"binary/encrypted"), KEY_ID_METADATA: b64(b"lost")},
                "data": b64(os.urandom(40)),
            },
            "undecryptable_payload",
        ),
    ],
)
async def test_a_payload_that_does_not_decode_is_a_clear_4xx(
    settings: Settings, payload: dict[str, Any], code: str
) -> None:
    async with codec_api(settings) as http:
        response = await http.post(
            "/codec/decode", json={"payloads": [payload]}, headers=supervisor()
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code


async def test_without_encryption_there_is_no_codec(settings: Settings) -> None:
    async with codec_api(settings, payload_encryption_keys=None) as http:
        response = await http.post("/codec/decode", json={"payloads": [NOTE]}, headers=supervisor())
        assert response.status_code == 404

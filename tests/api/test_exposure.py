"""Nothing is exposed the operator did not choose: listen address, dev sign-in, dev secret."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from api.auth import TokenVerifier, mint_token
from api.errors import ProblemError
from api.main import create_app
from devstack.processes import ROOT, ManagedProcess, free_port
from devstack.stack import api_process, build_stack
from embedded import banner
from runtime.settings import DEV_JWT_SECRET, Settings
from tests.helpers import TEST_SECRET

DEV_SETTINGS = Settings(embedded=True, database_url="sqlite+aiosqlite:///:memory:")
DEV_TOKEN_REQUEST = {"sub": "dana", "roles": ["worker"]}
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


def dev_secret_token(roles: list[str]) -> str:
    return mint_token(DEV_JWT_SECRET, "mallory", roles)


@pytest.mark.parametrize(
    "overrides",
    [
        {"embedded": False},
        {"auth_jwt_secret": TEST_SECRET},
        {"auth_jwks_url": "https://idp.example/jwks", "auth_issuer": "https://idp.example"},
        {"auth_issuer": "https://idp.example"},
    ],
    ids=["not-embedded", "operator-secret", "identity-provider", "issuer"],
)
async def test_the_public_dev_secret_is_refused_once_real_sign_in_is_configured(
    overrides: dict[str, object],
) -> None:
    settings = DEV_SETTINGS.model_copy(update=overrides)

    with pytest.raises(ProblemError) as refused:
        await TokenVerifier(settings).verify(dev_secret_token(["supervisor"]))

    assert refused.value.status == 401
    assert "/api/v1/dev/token" not in create_app(settings).openapi()["paths"]


async def test_the_public_dev_secret_as_auth_jwt_secret_counts_as_no_secret() -> None:
    embedded = DEV_SETTINGS.model_copy(update={"auth_jwt_secret": DEV_JWT_SECRET})
    outside_embedded = embedded.model_copy(update={"embedded": False})

    assert embedded.dev_secret_in_force()
    assert embedded.model_copy(update={"api_host": "0.0.0.0"}).exposure_refusal() is not None
    with pytest.raises(ProblemError):
        await TokenVerifier(outside_embedded).verify(dev_secret_token(["worker"]))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.2", "tablets.plant.example"])
def test_the_dev_secret_with_a_non_loopback_listen_address_refuses_to_serve(host: str) -> None:
    refusal = DEV_SETTINGS.model_copy(update={"api_host": host}).exposure_refusal()

    assert refusal is not None
    assert host in refusal


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_listen_addresses_serve_with_the_dev_secret(host: str) -> None:
    assert DEV_SETTINGS.model_copy(update={"api_host": host}).exposure_refusal() is None


def test_an_operator_secret_allows_any_listen_address() -> None:
    settings = DEV_SETTINGS.model_copy(update={"api_host": "0.0.0.0", "auth_jwt_secret": "s" * 40})

    assert settings.exposure_refusal() is None


def test_make_run_refuses_to_listen_beyond_loopback_with_the_dev_secret(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AUTH_", "API_", "EMBEDDED"))
    }
    finished = subprocess.run(
        [sys.executable, str(ROOT / "embedded.py")],
        cwd=ROOT,
        env={**env, "API_HOST": "0.0.0.0", "EMBEDDED_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert "Refusing to listen on API_HOST=0.0.0.0" in finished.stdout


def test_the_banner_shows_dev_tokens_only_while_the_dev_secret_is_in_force() -> None:
    with_dev_secret = banner(DEV_SETTINGS)
    with_operator_secret = banner(DEV_SETTINGS.model_copy(update={"auth_jwt_secret": TEST_SECRET}))

    assert JWT.search(with_dev_secret)
    assert not JWT.search(with_operator_secret)
    assert TEST_SECRET not in with_operator_secret
    assert "dev sign-in is off" in with_operator_secret


@pytest.fixture
async def dev_api() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(DEV_SETTINGS), client=("127.0.0.1", 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


async def test_the_dev_sign_in_mints_dev_secret_tokens_for_loopback_callers(
    dev_api: httpx.AsyncClient,
) -> None:
    minted = await dev_api.post("/api/v1/dev/token", json=DEV_TOKEN_REQUEST)

    assert minted.status_code == 200, minted.text
    user = await TokenVerifier(DEV_SETTINGS).verify(minted.json()["access_token"])
    assert user.id == "dana"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "192.168.1.77"},
        {"X-Forwarded-For": "127.0.0.1, 192.168.1.77"},
        {"X-Real-IP": "192.168.1.77"},
        {"Forwarded": "for=192.168.1.77;proto=http"},
        {"Forwarded": 'for="[2001:db8::77]:4711"'},
        {"Forwarded": "for=_hidden"},
        {"Forwarded": "proto=https"},
    ],
    ids=["xff", "xff-chain", "x-real-ip", "forwarded", "forwarded-ipv6", "obfuscated", "no-for"],
)
async def test_the_dev_sign_in_refuses_requests_forwarded_from_elsewhere(
    dev_api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await dev_api.post("/api/v1/dev/token", json=DEV_TOKEN_REQUEST, headers=headers)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "127.0.0.1"},
        {"Forwarded": 'for="[::1]:8080"'},
        {"X-Real-IP": "127.0.0.1:5050"},
    ],
    ids=["xff", "forwarded-ipv6", "x-real-ip-with-port"],
)
async def test_the_dev_sign_in_accepts_requests_forwarded_on_this_machine(
    dev_api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await dev_api.post("/api/v1/dev/token", json=DEV_TOKEN_REQUEST, headers=headers)

    assert response.status_code == 200, response.text


def _non_loopback_address() -> str | None:
    """This machine's address on its default route, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def _serve(tmp_path: Path, host: str) -> Iterator[str]:
    port = free_port()
    env = {"EMBEDDED": "true", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/app.db"}
    name = f"api-{host}"
    process: ManagedProcess = api_process(name, env, host, port, tmp_path / f"{name}.log")
    process.start()
    base_url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.running, process.log_tail()
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, process.log_tail()
                time.sleep(0.1)
        yield base_url
    finally:
        process.stop()


@pytest.fixture
def loopback_api_process(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, "127.0.0.1")


@pytest.fixture
def network_api_process(tmp_path: Path) -> Iterator[tuple[str, str]]:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback interface")
    for base_url in _serve(tmp_path, address):
        yield base_url, address


def test_the_dev_sign_in_refuses_a_caller_on_the_network(
    network_api_process: tuple[str, str],
) -> None:
    base_url, address = network_api_process
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, base_url=base_url) as client:
        response = client.post("/api/v1/dev/token", json=DEV_TOKEN_REQUEST)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_the_api_process_refuses_a_dev_sign_in_forwarded_from_elsewhere(
    loopback_api_process: str,
) -> None:
    with httpx.Client(base_url=loopback_api_process) as client:
        forwarded = client.post(
            "/api/v1/dev/token",
            json=DEV_TOKEN_REQUEST,
            headers={"X-Forwarded-For": "192.168.1.77"},
        )
        direct = client.post("/api/v1/dev/token", json=DEV_TOKEN_REQUEST)

    assert forwarded.status_code == 403
    assert direct.status_code == 200


def test_make_run_serves_the_temporal_web_ui_on_loopback_only(tmp_path: Path) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback interface")
    ui_port = free_port()
    settings = Settings(
        embedded=True,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_ui_url=f"http://{address}:{ui_port}",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/app.db",
    )
    server = build_stack(settings, tmp_path, web_ui=True).server
    assert server is not None
    server.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.running, server.log_tail()
            try:
                if httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, server.log_tail()
                time.sleep(0.2)

        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{address}:{ui_port}/", timeout=2)
    finally:
        server.stop()

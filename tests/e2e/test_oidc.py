"""OpenID Connect sign-in in Chromium, through a real provider process's own sign-in page."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Request,
    ViewportSize,
    expect,
)

from devstack.processes import ManagedProcess, free_port, port_in_use
from devstack.stack import api_process, wait_until
from runtime.settings import Settings
from tests.e2e.pages import (
    DESK,
    LOTO,
    PHONE,
    capture,
    confirm,
    expect_result,
    noting_failed_responses,
    show_check,
    start_session,
)

pytestmark = pytest.mark.slow

SHOTS = Path("/tmp/shots/oidc")
PROVIDER_START_SECONDS = 20
AUDIENCE = "work-sessions-api"
CLIENT_ID = "work-sessions-web"


@dataclass(frozen=True)
class Provider:
    issuer: str
    worker: str


def start_provider(folder: Path, *users: dict[str, Any]) -> ManagedProcess:
    port = free_port()
    claims = [arg for user in users for arg in ("--user-claims", json.dumps(user))]
    provider = ManagedProcess(
        name=f"oidc-provider:{port}",
        command=[sys.executable, "-m", "tests.oidc_provider", "--port", str(port)]
        + ["--audience", AUDIENCE, *claims],
        env={},
        log_path=folder / f"oidc-provider-{port}.log",
    ).start()
    deadline = time.monotonic() + PROVIDER_START_SECONDS
    while not port_in_use(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the OIDC provider did not listen on {port}")
        time.sleep(0.05)
    return provider


def issuer_of(provider: ManagedProcess) -> str:
    port = provider.name.rpartition(":")[2]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oidc")


@pytest.fixture(scope="module")
def provider(logs: Path) -> Iterator[Provider]:
    """The identity provider, with a worker whose roles sit where Keycloak puts them."""
    worker = f"oidc-{uuid.uuid4().hex[:8]}"
    process = start_provider(
        logs,
        {"sub": worker, "name": "Olive Field", "realm_access": {"roles": ["worker"]}},
        {"sub": "mallory", "aud": "another-api", "realm_access": {"roles": ["worker"]}},
    )
    try:
        yield Provider(issuer_of(process), worker)
    finally:
        process.stop()


@pytest.fixture(scope="module")
async def oidc_url(
    chromium: Path, settings: Settings, worker: None, provider: Provider, logs: Path
) -> AsyncIterator[str]:
    """An API process on the test session's Temporal server, worker and database that trusts
    only the provider, which it finds through its discovery document."""
    env = {
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "DATABASE_URL": settings.database_url,
        "LOG_FORMAT": "text",
        "AUTH_ISSUER": provider.issuer,
        "AUTH_AUDIENCE": AUDIENCE,
        "AUTH_OIDC_CLIENT_ID": CLIENT_ID,
        "AUTH_ROLES_CLAIM": "realm_access.roles",
    }
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    api = api_process("api-oidc", env, "127.0.0.1", port, logs / "api-oidc.log").start()
    try:
        async with httpx.AsyncClient(timeout=2) as http:

            async def ready() -> bool:
                try:
                    return (await http.get(f"{base_url}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(ready, "the OIDC API answers /readyz", timeout=30)
        yield base_url
    finally:
        api.stop()


@asynccontextmanager
async def browser_context(
    browser: Browser, base_url: str, viewport: ViewportSize
) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile; fails if a page throws or any request meets a server error."""
    context = await browser.new_context(base_url=base_url, viewport=viewport)
    problems: list[str] = []
    context.on("weberror", lambda error: problems.append(f"uncaught: {error.error}"))
    context.on("response", noting_failed_responses(problems, from_status=500))
    try:
        yield context
    finally:
        await context.close()
    assert problems == []


async def sign_in_at_provider(page: Page, subject: str) -> None:
    """Clicks through the provider's own page as the given predefined user."""
    await page.get_by_test_id("oidc-signin").click()
    await expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    await page.get_by_role("button", name=subject, exact=True).click()


def provider_tokens(issuer: str, subject: str) -> dict[str, Any]:
    """Tokens for a user, got from the provider without a browser, as any other client might."""
    redirect_uri = "http://127.0.0.1:1/"
    verifier = base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).decode().rstrip("=")
    authorized = httpx.post(
        f"{issuer}/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": redirect_uri,
            "scope": "openid profile",
            "state": "s",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        },
        data={"sub": subject},
    )
    code = parse_qs(urlparse(authorized.headers["location"]).query)["code"][0]
    tokens = httpx.post(
        f"{issuer}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        },
    )
    tokens.raise_for_status()
    result: dict[str, Any] = tokens.json()
    return result


def s256(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode().rstrip("=")


async def stored_sign_in(page: Page) -> dict[str, Any]:
    stored = await page.evaluate("() => JSON.parse(localStorage.getItem('ws.signin'))")
    assert isinstance(stored, dict)
    return stored


async def status_with(base_url: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{base_url}/api/v1/sessions", headers=headers)).status_code


async def test_worker_signs_in_at_the_provider_records_a_check_and_every_tab_follows(
    browser: Browser, oidc_url: str, provider: Provider, logs: Path
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    to_provider: list[Request] = []
    async with browser_context(browser, oidc_url, PHONE) as context:
        context.on(
            "request",
            lambda r: to_provider.append(r) if r.url.startswith(provider.issuer) else None,
        )
        page = await context.new_page()
        await page.goto("/")
        await expect(page.get_by_test_id("oidc-signin")).to_be_visible()
        await expect(page.get_by_test_id("signin-submit")).to_have_count(0)
        await capture(page, SHOTS / "sign-in-390.png")
        await page.set_viewport_size(DESK)
        await capture(page, SHOTS / "sign-in-1440.png")
        await page.set_viewport_size(PHONE)

        await sign_in_at_provider(page, provider.worker)
        await expect(page.get_by_role("heading", name="My sessions")).to_be_visible()
        await expect(page.locator("#account-name")).to_contain_text("Olive Field")
        assert "code=" not in page.url

        session_id = await start_session(page, "loto-press-7", LOTO)
        await confirm(page, "affected-notified", passed=True)
        await expect_result(page, "affected-notified", "PASSED")
        await page.evaluate("() => window.scrollTo(0, 0)")
        await capture(page, SHOTS / "signed-in-390.png", full_page=False)
        await page.set_viewport_size(DESK)
        await capture(page, SHOTS / "signed-in-1440.png", full_page=False)

        signed_in = await stored_sign_in(page)
        access_token = signed_in["accessToken"]
        session = await session_as_page_sees_it(page, oidc_url, session_id)
        assert session["worker_id"] == provider.worker
        assert [r["recorded_by"] for r in session["safety_checks"]] == [provider.worker]

        authorize = next(r for r in to_provider if "/oauth2/authorize" in r.url)
        asked = parse_qs(urlparse(authorize.url).query)
        token_request = next(r for r in to_provider if r.url.endswith("/oauth2/token"))
        sent = parse_qs(token_request.post_data or "")
        assert asked["code_challenge_method"] == ["S256"]
        assert asked["client_id"] == [CLIENT_ID]
        assert s256(sent["code_verifier"][0]) == asked["code_challenge"][0]
        assert "client_secret" not in sent

        second = await context.new_page()
        await second.goto(f"/#/sessions/{session_id}")
        await expect(second.get_by_test_id("session-title")).to_have_text(LOTO)
        await expect_result(second, "affected-notified", "PASSED")

        await page.get_by_test_id("signout").click()
        await expect(second.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
        await expect(second.get_by_test_id("session-title")).to_have_count(0)
        await expect(page.get_by_role("heading", name="End Session")).to_be_visible()
        await page.get_by_role("button", name="End session").click()
        await expect(page.get_by_test_id("oidc-signin")).to_be_visible()

    assert await status_with(oidc_url, access_token) == 200
    for_another_api = await asyncio.to_thread(provider_tokens, provider.issuer, "mallory")
    assert await status_with(oidc_url, for_another_api["access_token"]) == 401
    assert await status_with(oidc_url, signed_in["idToken"]) == 401
    other = await asyncio.to_thread(start_provider, logs, {"sub": provider.worker})
    try:
        foreign = await asyncio.to_thread(provider_tokens, issuer_of(other), provider.worker)
    finally:
        other.stop()
    assert await status_with(oidc_url, foreign["access_token"]) == 401


async def test_an_expired_sign_in_renews_silently_and_a_new_one_keeps_what_was_typed(
    browser: Browser, oidc_url: str, provider: Provider
) -> None:
    async with browser_context(browser, oidc_url, PHONE) as context:
        page = await context.new_page()
        await page.goto("/")
        await sign_in_at_provider(page, provider.worker)
        session_id = await start_session(page, "loto-press-7", LOTO)
        accumulator = await show_check(page, "accumulator-pressure")
        await accumulator.get_by_test_id("measurement-input").fill("0.4")

        refused = await expire_access_token(page)
        await accumulator.get_by_test_id("measurement-submit").click()
        await expect_result(page, "accumulator-pressure", "PASSED")
        assert (await stored_sign_in(page))["accessToken"] != refused
        await expect(page.locator("#account-name")).to_contain_text("Olive Field")

        clutch = await show_check(page, "clutch-air-pressure")
        await clutch.get_by_test_id("measurement-input").fill("0.05")
        await add_note(clutch, "Vented twice")
        typed_only = await show_check(page, "try-start")
        await add_note(typed_only, "Console key removed")
        async with httpx.AsyncClient() as client:
            revoked = await client.post(f"{provider.issuer}/users/{provider.worker}/revoke-tokens")
        revoked.raise_for_status()
        await expire_access_token(page)
        clutch = await show_check(page, "clutch-air-pressure")
        await clutch.get_by_test_id("measurement-submit").click()
        await expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
        await expect(page.get_by_test_id("error-alert")).to_contain_text("Please sign in again")

        await sign_in_at_provider(page, provider.worker)
        await expect(page.get_by_test_id("session-title")).to_have_text(LOTO)
        await expect_result(page, "clutch-air-pressure", "PASSED")
        typed_only = await show_check(page, "try-start")
        await expect(typed_only.get_by_label("Note (optional)")).to_have_value(
            "Console key removed"
        )
        session = await session_as_page_sees_it(page, oidc_url, session_id)
        notes = {r["check_id"]: r["note"] for r in session["safety_checks"]}
        assert notes == {"accumulator-pressure": None, "clutch-air-pressure": "Vented twice"}


async def add_note(check: Locator, note: str) -> None:
    await check.get_by_test_id("add-note").click()
    await check.get_by_label("Note (optional)").fill(note)


async def session_as_page_sees_it(page: Page, base_url: str, session_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {(await stored_sign_in(page))['accessToken']}"}
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{base_url}/api/v1/sessions/{session_id}", headers=headers)
    session: dict[str, Any] = answer.json()
    return session


async def expire_access_token(page: Page) -> str:
    """Makes the stored access token one the API refuses, as it will once it has expired."""
    refused: str = await page.evaluate(
        """() => {
            const signIn = JSON.parse(localStorage.getItem('ws.signin'));
            signIn.accessToken = signIn.accessToken.slice(0, -4) + 'AAAA';
            localStorage.setItem('ws.signin', JSON.stringify(signIn));
            return signIn.accessToken;
        }"""
    )
    return refused

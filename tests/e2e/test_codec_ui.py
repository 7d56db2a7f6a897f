"""A supervisor reads an encrypted session in the dev server's Web UI through the codec
endpoint; without it, the same page shows only ciphertext."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from pydantic import SecretStr

from api.auth import mint_token
from devstack.processes import free_port
from devstack.stack import Stack, build_stack
from runtime.settings import DEV_JWT_SECRET, Settings
from tests.e2e.test_temporal_ui import UI_FIRST_SCREEN_MS

pytestmark = pytest.mark.slow

INSTRUCTIONS = "walk around it. Look for leaks under the truck"
CIPHERTEXT = re.compile(r'^\s*"[A-Za-z0-9+/=]{200,}"\s*$')


@pytest.fixture
async def encrypted_stack(chromium: Path, tmp_path: Path) -> AsyncIterator[Stack]:
    """`make run`'s stack with payload encryption on: the UI is given the codec endpoint."""
    settings = Settings(
        embedded=True,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_task_queue=f"codec-{uuid.uuid4().hex[:8]}",
        temporal_ui_url=f"http://localhost:{free_port()}",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/app.db",
        api_port=free_port(),
        log_format="text",
        payload_encryption_keys=SecretStr(f"k1:{base64.b64encode(os.urandom(32)).decode()}"),
    )
    stack = build_stack(settings, tmp_path, web_ui=True)
    await stack.start()
    try:
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)


async def restart_server_without_codec(stack: Stack) -> None:
    server = stack.server
    assert server is not None
    at = server.command.index("--ui-codec-endpoint")
    del server.command[at : at + 2]
    server.stop()
    server.start()
    await stack.wait_for_server()


async def show_input(page: Page, ui_url: str, session_id: str) -> None:
    # A UI that has just started may answer its first pages with its own 500 screen
    # while it connects to the frontend: open the page again until it shows the input.
    heading = page.get_by_role("heading", name="Input")
    deadline = asyncio.get_running_loop().time() + UI_FIRST_SCREEN_MS / 1000
    while True:
        await page.goto(f"{ui_url}/namespaces/default/workflows/{session_id}")
        try:
            await expect(heading).to_be_visible(timeout=5_000)
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise


async def test_the_web_ui_decrypts_a_session_only_through_the_codec_endpoint(
    browser: Browser, encrypted_stack: Stack, screenshots: Path
) -> None:
    stack = encrypted_stack
    token = mint_token(DEV_JWT_SECRET, f"alice-{uuid.uuid4().hex[:6]}", ["worker"])
    async with httpx.AsyncClient(
        base_url=stack.api_url(), headers={"Authorization": f"Bearer {token}"}
    ) as api:
        started = await api.post("/api/v1/sessions", json={"sop_id": "forklift-preshift"})
        assert started.status_code == 201, started.text
        session_id = started.json()["id"]
    ui_url = stack.settings.temporal_ui_url
    shots = screenshots / "codec"
    shots.mkdir(exist_ok=True)
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    try:
        shown_input = page.get_by_role("textbox", name="Input")
        await show_input(page, ui_url, session_id)
        # The UI shows the input once the codec has answered.
        await expect(shown_input).to_contain_text(
            f'"session_id": "{session_id}"', timeout=UI_FIRST_SCREEN_MS
        )
        await expect(page.get_by_text(INSTRUCTIONS).first).to_be_attached()
        await page.screenshot(path=shots / "01-decrypted-through-the-codec.png", full_page=True)

        await restart_server_without_codec(stack)
        await show_input(page, ui_url, session_id)
        # Ciphertext: one long base64 string where the session's JSON was.
        await expect(shown_input).to_have_text(CIPHERTEXT)
        await expect(page.get_by_text(INSTRUCTIONS)).to_have_count(0)
        await page.screenshot(path=shots / "02-ciphertext-without-the-codec.png", full_page=True)
    finally:
        await context.close()

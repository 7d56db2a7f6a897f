"""A real stack (Temporal dev server, worker, API as separate processes) and Debian's Chromium."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from devstack.processes import ROOT, free_port
from devstack.stack import build_stack
from runtime.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# SCREENSHOTS_DIR puts them elsewhere, e.g. outside a shared checkout.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR", ROOT / "test-artifacts" / "screenshots"))

# Lists come from Temporal visibility, which lags a little behind each change.
expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; Playwright's own browser download does not work here."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install it with `apt-get install chromium`"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
async def stack_url(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Base URL of an API backed by its own Temporal dev server, worker and SQLite database."""
    data_dir = tmp_path_factory.mktemp("e2e")
    # No operator secret: the page signs in through the dev sign-in, as under `make run`.
    settings = Settings(
        embedded=True,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_task_queue=f"e2e-{uuid.uuid4().hex[:8]}",
        temporal_ui_url=f"http://127.0.0.1:{free_port()}",
        database_url=f"sqlite+aiosqlite:///{data_dir}/app.db",
        api_port=free_port(),
        log_format="text",
        session_gauge_interval_seconds=0.5,
    )
    stack = build_stack(settings, data_dir, web_ui=True)
    await stack.start()
    try:
        yield stack.api_url()
    finally:
        await asyncio.to_thread(stack.stop)


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """Headless Chromium, shared by every browser test."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The folder for screenshots, kept as test artifacts, emptied of earlier runs' shots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS

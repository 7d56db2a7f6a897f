"""The API docs in Chromium on a network without internet: every non-local request is blocked."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, expect

pytestmark = pytest.mark.slow

LOCAL = re.compile(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?/")
# ReDoc's "API docs by Redocly" footer logo; it hides itself when it cannot load.
COSMETIC = {"https://cdn.redoc.ly/redoc/logo-mini.svg"}


@asynccontextmanager
async def offline_page(browser: Browser, base_url: str) -> AsyncIterator[Page]:
    """A page that can reach only this machine; fails if it tried to reach anything else."""
    context = await browser.new_context(base_url=base_url)
    blocked: list[str] = []

    async def block_the_internet(route: Route) -> None:
        if LOCAL.match(route.request.url):
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", block_the_internet)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        await context.close()
    assert set(blocked) <= COSMETIC, blocked
    assert errors == []


async def test_swagger_ui_renders_and_tries_a_call_offline(
    browser: Browser, stack_url: str, screenshots: Path
) -> None:
    async with offline_page(browser, stack_url) as page:
        await page.goto("/docs")
        await expect(page.get_by_role("heading", name=re.compile("^Work sessions"))).to_be_visible()
        pause = page.locator("#operations-sessions-pause_session")
        await expect(pause).to_contain_text("/api/v1/sessions/{session_id}/pause")

        probe = page.locator("#operations-health-healthz")
        await probe.locator(".opblock-summary").click()
        await probe.get_by_role("button", name="Try it out").click()
        await probe.get_by_role("button", name="Execute").click()
        live = probe.locator(".live-responses-table tbody .response-col_status")
        await expect(live).to_have_text("200")
        await expect(probe.locator(".live-responses-table")).to_contain_text('"status": "ok"')
        await probe.screenshot(path=screenshots / "docs-swagger-tried-offline.png")
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=screenshots / "docs-swagger-offline.png")


async def test_redoc_renders_offline(browser: Browser, stack_url: str, screenshots: Path) -> None:
    async with offline_page(browser, stack_url) as page:
        await page.goto("/redoc")
        await expect(page.get_by_role("heading", name=re.compile("^Work sessions"))).to_be_visible()
        await expect(page.get_by_role("heading", name="Pause Session").first).to_be_visible()
        await expect(page.get_by_text("invalid_transition").first).to_be_attached()
        await page.screenshot(path=screenshots / "docs-redoc-offline.png")

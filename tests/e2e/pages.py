"""What the browser tests do on the page, the way a worker or a supervisor would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Locator, Page, Response, ViewportSize, expect

from tests.e2e.a11y import low_contrast_text, small_tap_targets, unlabelled_controls

PHONE = ViewportSize(width=390, height=844)
DESK = ViewportSize(width=1440, height=900)

LOTO = "Lockout/Tagout: Press 7"
FORKLIFT = "Forklift Pre-Shift Inspection"
FAILED_RESPONSE_LOGGED = "Failed to load resource: the server responded with a status of"


def noting_failed_responses(problems: list[str], *, from_status: int) -> Callable[[Response], None]:
    """A response listener noting each response of `from_status` or above among `problems`."""

    def note(response: Response) -> None:
        if response.status >= from_status:
            problems.append(f"{response.status} {response.request.method} {response.url}")

    return note


@asynccontextmanager
async def open_page(
    browser: Browser, base_url: str, viewport: ViewportSize, *, allowed_failures: int = 0
) -> AsyncIterator[Page]:
    """A page in a fresh context; fails if the page throws, logs an error or a request fails."""
    context = await browser.new_context(base_url=base_url, viewport=viewport)
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            # Chromium logs each failed response too: the response check below counts those.
            if message.type == "error" and not message.text.startswith(FAILED_RESPONSE_LOGGED)
            else None
        ),
    )
    page.on("response", noting_failed_responses(problems, from_status=400))
    try:
        yield page
    finally:
        await context.close()
    assert len(problems) == allowed_failures, problems


async def capture(page: Page, path: Path, *, full_page: bool = True) -> None:
    """Screenshots a main screen; checks it fits the width, is labelled, legible and tappable."""
    await page.screenshot(path=path, full_page=full_page)
    icon = await page.evaluate("() => document.querySelector('link[rel=icon]')?.href")
    assert icon, "the page names no icon"
    assert (await page.request.get(icon)).ok, icon
    assert await page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    assert await unlabelled_controls(page) == []
    assert await low_contrast_text(page) == []
    assert await small_tap_targets(page) == []


async def apply_filters(page: Page) -> None:
    """Applies the desk's filters and waits for the list they name, not the one before."""
    shown = await page.get_by_test_id("filters").element_handle()
    await page.get_by_test_id("filter-apply").click()
    await shown.wait_for_element_state("hidden")
    await expect(page.get_by_test_id("filters")).to_be_visible()


async def sign_in(page: Page, user: str, name: str, role: str) -> None:
    """Signs in with the embedded stack's dev sign-in form."""
    await page.goto("/")
    await expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    await page.get_by_label("User id").fill(user)
    await page.get_by_label("Display name (optional)").fill(name)
    await page.get_by_label("Role").select_option(role)
    await page.get_by_test_id("signin-submit").click()
    await expect(page.locator("#account-name")).to_contain_text(user)


async def start_session(page: Page, sop_id: str, title: str) -> str:
    """Starts a session from the SOP catalog and returns its id."""
    await page.get_by_test_id("nav-start").click()
    await page.get_by_test_id(f"start-sop-{sop_id}").click()
    await expect(page.get_by_test_id("session-title")).to_have_text(title)
    match = re.search(r"#/sessions/([^/?]+)$", page.url)
    assert match is not None, page.url
    return match.group(1)


async def open_step(page: Page, step_id: str) -> None:
    """Shows one step of the session, opening the folded step list on a phone first."""
    toggle = page.get_by_test_id("step-list-toggle")
    if await toggle.is_visible() and await toggle.get_attribute("aria-expanded") != "true":
        await toggle.click()
    await page.get_by_test_id(f"step-link-{step_id}").click()
    await expect(page.get_by_test_id(f"step-{step_id}")).to_be_visible()


def check(page: Page, check_id: str) -> Locator:
    return page.get_by_test_id(f"check-{check_id}")


async def show_check(page: Page, check_id: str) -> Locator:
    """Goes through the steps until the one holding the check is on screen."""
    await expect(page.get_by_test_id("session-title")).to_be_visible()
    item = check(page, check_id)
    if await item.count():
        return item
    toggle = page.get_by_test_id("step-list-toggle")
    links = page.get_by_test_id("step-list").locator("button")
    for index in range(await links.count()):
        if await toggle.is_visible() and await toggle.get_attribute("aria-expanded") != "true":
            await toggle.click()
        await links.nth(index).click()
        if await item.count():
            return item
    raise AssertionError(f"no step holds check {check_id}")


async def confirm(page: Page, check_id: str, *, passed: bool) -> None:
    item = await show_check(page, check_id)
    await item.get_by_test_id("confirm-pass" if passed else "confirm-fail").click()


async def measure(page: Page, check_id: str, value: str, *, outside_limits: bool = False) -> None:
    """Types a reading and records it, confirming it as FAILED when it is outside the limits."""
    item = await show_check(page, check_id)
    await item.get_by_test_id("measurement-input").fill(value)
    await item.get_by_test_id("measurement-submit").click()
    if outside_limits:
        dialog = page.get_by_test_id("outside-limits-dialog")
        await expect(dialog).to_be_visible()
        await dialog.get_by_test_id("dialog-confirm").click()


async def expect_result(page: Page, check_id: str, result: str) -> None:
    item = await show_check(page, check_id)
    await expect(item.get_by_test_id("check-result")).to_have_text(re.compile(rf"{result}$"))


async def expect_session(page: Page, status: str, progress: str) -> None:
    header = page.locator("header.session-header")
    await expect(header.get_by_test_id("status-badge")).to_have_text(status)
    await expect(header.get_by_test_id("progress")).to_have_text(progress)

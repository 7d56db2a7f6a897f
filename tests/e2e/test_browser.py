"""The web page in Debian's Chromium against the real API, worker and Temporal dev server."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Browser, Route, expect

from tests.e2e.a11y import tab_to
from tests.e2e.pages import (
    DESK,
    FORKLIFT,
    LOTO,
    PHONE,
    apply_filters,
    capture,
    check,
    confirm,
    expect_result,
    expect_session,
    measure,
    open_page,
    show_check,
    sign_in,
    start_session,
)

pytestmark = pytest.mark.slow


async def audit_not_written_yet(route: Route) -> None:
    """Answers an audit read as if the audit activity had written only the first event."""
    response = await route.fetch()
    audit = await response.json()
    await route.fulfill(response=response, json={"items": audit["items"][:1]})


async def test_worker_juggles_two_sessions_and_supervisor_audits_the_aborted_one(
    browser: Browser, stack_url: str, screenshots: Path
) -> None:
    worker = f"alice-{uuid.uuid4().hex[:8]}"
    async with open_page(browser, stack_url, PHONE) as page:
        await page.goto("/")
        await expect(page.get_by_test_id("signin-submit")).to_be_visible()
        await capture(page, screenshots / "01-sign-in.png")
        await sign_in(page, worker, "Alice Example", "worker")
        await expect(page.get_by_role("heading", name="My sessions")).to_be_visible()

        await page.get_by_test_id("nav-start").click()
        await expect(page.get_by_test_id("sop-list").get_by_role("listitem")).to_have_count(3)
        await capture(page, screenshots / "02-sop-catalog.png")
        loto = await start_session(page, "loto-press-7", LOTO)
        await expect_session(page, "In progress", "0 / 11 checks passed")

        await confirm(page, "affected-notified", passed=True)
        await expect_result(page, "affected-notified", "PASSED")
        await measure(page, "accumulator-pressure", "0.4")
        await expect_result(page, "accumulator-pressure", "PASSED")
        await measure(page, "residual-v", "12", outside_limits=True)
        await expect_result(page, "residual-v", "FAILED")
        await expect_session(page, "In progress", "2 / 11 checks passed")
        await capture(page, screenshots / "03-session-in-progress.png")

        await page.get_by_test_id("pause-button").click()
        await page.get_by_test_id("pause-reason").fill("Called to line 3")
        await capture(page, screenshots / "04-pause-dialog.png", full_page=False)
        await page.get_by_test_id("pause-confirm").click()
        await expect_session(page, "Paused", "2 / 11 checks passed")
        await expect(page.get_by_text("Reason: Called to line 3").first).to_be_visible()
        normal_stop = await show_check(page, "normal-stop")
        await expect(normal_stop.get_by_test_id("confirm-pass")).to_be_disabled()
        await expect(page.get_by_test_id("resume-button")).to_be_visible()
        await capture(page, screenshots / "05-session-paused.png")

        forklift = await start_session(page, "forklift-preshift", FORKLIFT)
        await confirm(page, "no-leaks", passed=True)
        await expect_result(page, "no-leaks", "PASSED")
        await expect_session(page, "In progress", "1 / 15 checks passed")

        await page.get_by_test_id("nav-my-sessions").click()
        sessions = page.get_by_test_id("session-list")
        paused_item = sessions.get_by_test_id(f"session-item-{loto}")
        await expect(paused_item.get_by_test_id("status-badge")).to_have_text("Paused")
        await expect(paused_item.get_by_test_id("progress")).to_have_text("2 / 11 checks passed")
        await expect(paused_item).to_contain_text("Called to line 3")
        forklift_item = sessions.get_by_test_id(f"session-item-{forklift}")
        await expect(forklift_item.get_by_test_id("status-badge")).to_have_text("In progress")
        await expect(forklift_item.get_by_test_id("progress")).to_have_text("1 / 15 checks passed")
        await capture(page, screenshots / "06-my-sessions.png")

        await paused_item.click()
        await expect_session(page, "Paused", "2 / 11 checks passed")
        await page.get_by_test_id("resume-button").click()
        await expect_session(page, "In progress", "2 / 11 checks passed")
        await expect_result(page, "affected-notified", "PASSED")
        await expect_result(page, "accumulator-pressure", "PASSED")
        await expect_result(page, "residual-v", "FAILED")
        normal_stop = await show_check(page, "normal-stop")
        await expect(normal_stop.get_by_test_id("confirm-pass")).to_be_enabled()

        await page.get_by_text("Switch session").click()
        await page.get_by_role("link", name=FORKLIFT).click()
        await expect(page.get_by_test_id("session-title")).to_have_text(FORKLIFT)
        await page.get_by_test_id("abort-button").click()
        await page.get_by_test_id("abort-reason").fill("Wrong truck")
        await page.get_by_test_id("abort-confirm").click()
        await expect_session(page, "Aborted", "1 / 15 checks passed")
        await expect(page.get_by_test_id("abort-button")).to_have_count(0)
        await expect(page.get_by_test_id("confirm-pass")).to_have_count(0)

        await page.get_by_test_id("nav-my-sessions").click()
        await expect(sessions.get_by_test_id(f"session-item-{forklift}")).to_have_count(0)
        await expect(paused_item.get_by_test_id("status-badge")).to_have_text("In progress")

    async with open_page(browser, stack_url, DESK) as page:
        await sign_in(page, "sam", "Sam Supervisor", "supervisor")
        await expect(page.get_by_role("heading", name="All sessions")).to_be_visible()
        await page.get_by_label("Worker id").fill(worker)
        await page.get_by_label("In progress").uncheck()
        await page.get_by_label("Paused").uncheck()
        await page.get_by_label("Aborted").check()
        await apply_filters(page)
        sessions = page.get_by_test_id("session-table")
        aborted_item = sessions.get_by_test_id(f"session-item-{forklift}")
        await expect(aborted_item.get_by_test_id("status-badge")).to_have_text("Aborted")
        await expect(sessions.locator("tbody tr")).to_have_count(1)
        await capture(page, screenshots / "07-supervisor-list.png")

        await page.route(re.compile(r"/audit$"), audit_not_written_yet, times=1)
        await aborted_item.get_by_role("link").click()
        await expect(page.get_by_test_id("session-title")).to_have_text(FORKLIFT)
        await expect_session(page, "Aborted", "1 / 15 checks passed")
        rows = page.get_by_test_id("audit-table").locator("tbody tr")
        await expect(rows).to_have_count(3)
        await expect(rows.nth(0)).to_contain_text("Session started")
        await expect(rows.nth(1)).to_contain_text("Check recorded")
        await expect(rows.nth(1)).to_contain_text("No hydraulic or battery leaks under the truck")
        await expect(rows.nth(2)).to_contain_text("Session aborted")
        await expect(rows.nth(2)).to_contain_text("Wrong truck")
        await expect(page.get_by_text("events written so far")).to_have_count(0)
        await expect(page.get_by_test_id("temporal-link")).to_have_attribute(
            "href", re.compile(re.escape(forklift))
        )
        await capture(page, screenshots / "08-supervisor-session.png")


async def test_keyboard_alone_signs_in_records_checks_pauses_and_resumes(
    browser: Browser, stack_url: str
) -> None:
    async with open_page(browser, stack_url, PHONE) as page:
        await page.goto("/")
        await expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_focused()
        await tab_to(page, page.get_by_label("User id"))
        await page.keyboard.type(f"kim-{uuid.uuid4().hex[:8]}")
        await tab_to(page, page.get_by_test_id("signin-submit"))
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="My sessions")).to_be_focused()

        await tab_to(page, page.get_by_test_id("nav-start"))
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Start a session")).to_be_focused()
        await tab_to(page, page.get_by_test_id("start-sop-confined-space-entry"))
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("session-title")).to_be_focused()

        passed = check(page, "permit-signed").get_by_test_id("confirm-pass")
        await tab_to(page, passed)
        await page.keyboard.press("Space")
        await expect_result(page, "permit-signed", "PASSED")
        await expect(passed).to_be_focused()
        await tab_to(page, page.get_by_test_id("step-list-toggle"))
        await page.keyboard.press("Enter")
        await tab_to(page, page.get_by_test_id("step-link-ventilate"))
        await page.keyboard.press("Enter")
        reading = check(page, "ventilation-time").get_by_label("Measured value (min)")
        await tab_to(page, reading)
        await page.keyboard.type("25")
        await page.keyboard.press("Enter")
        await expect_result(page, "ventilation-time", "PASSED")
        await expect_session(page, "In progress", "2 / 15 checks passed")

        await page.get_by_test_id("session-title").focus()
        await tab_to(page, page.get_by_test_id("pause-button"))
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("pause-reason")).to_be_focused()
        await page.keyboard.type("Gas alarm in the next bay")
        await tab_to(page, page.get_by_test_id("pause-confirm"))
        await page.keyboard.press("Enter")
        await expect_session(page, "Paused", "2 / 15 checks passed")
        await expect(page.get_by_test_id("resume-button")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect_session(page, "In progress", "2 / 15 checks passed")
        await expect(page.get_by_test_id("pause-button")).to_be_focused()


async def test_my_sessions_shows_own_changes_while_the_list_lags_behind(
    browser: Browser, stack_url: str
) -> None:
    async with open_page(browser, stack_url, PHONE) as page:
        await sign_in(page, f"lee-{uuid.uuid4().hex[:8]}", "Lee", "worker")
        first = await start_session(page, "loto-press-7", LOTO)
        await page.get_by_test_id("nav-my-sessions").click()
        active = page.get_by_test_id("session-list")
        item = active.get_by_test_id(f"session-item-{first}")
        await expect(item).to_be_visible()
        async with page.expect_response(re.compile(r"/api/v1/sessions\?")) as listed:
            await page.get_by_role("button", name="Refresh").click()
        stale = await (await listed.value).body()

        async def serve_stale(route: Route) -> None:
            await route.fulfill(status=200, content_type="application/json", body=stale)

        await page.route(re.compile(r"/api/v1/sessions\?"), serve_stale)
        await item.click()
        await page.get_by_test_id("abort-button").click()
        await page.get_by_test_id("abort-confirm").click()
        await expect_session(page, "Aborted", "0 / 11 checks passed")
        second = await start_session(page, "forklift-preshift", FORKLIFT)
        await page.get_by_test_id("nav-my-sessions").click()

        await expect(active.get_by_test_id(f"session-item-{second}")).to_be_visible()
        await expect(item).to_have_count(0)

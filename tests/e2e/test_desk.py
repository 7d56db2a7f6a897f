"""A supervisor at a desk: a table of sessions, failures found, the trail read and exported."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.e2e.pages import (
    DESK,
    FORKLIFT,
    LOTO,
    PHONE,
    apply_filters,
    capture,
    confirm,
    expect_result,
    measure,
    open_page,
    show_check,
    sign_in,
    start_session,
)

pytestmark = pytest.mark.slow


async def filter_sessions(page: Page, worker: str, *, failed_only: bool = False) -> None:
    await page.get_by_label("Worker id").fill(worker)
    await page.get_by_label("Only sessions with failed checks").set_checked(failed_only)
    await apply_filters(page)


async def test_supervisor_finds_failed_sessions_sorts_them_and_exports_the_trail(
    browser: Browser, stack_url: str, screenshots: Path
) -> None:
    worker = f"wes-{uuid.uuid4().hex[:8]}"
    async with open_page(browser, stack_url, PHONE) as phone:
        await sign_in(phone, worker, "Wes Worker", "worker")
        loto = await start_session(phone, "loto-press-7", LOTO)
        item = await show_check(phone, "clutch-air-pressure")
        await item.get_by_test_id("add-note").click()
        await item.get_by_label("Note (optional)").fill("=1+1 gauge G-7")
        await measure(phone, "clutch-air-pressure", "0,5", outside_limits=True)
        await expect_result(phone, "clutch-air-pressure", "FAILED")
        forklift = await start_session(phone, "forklift-preshift", FORKLIFT)
        await confirm(phone, "no-leaks", passed=True)
        await expect_result(phone, "no-leaks", "PASSED")

    async with open_page(browser, stack_url, DESK) as page:
        await sign_in(page, "sam", "Sam Supervisor", "supervisor")
        table = page.get_by_test_id("session-table")
        rows = table.locator("tbody tr")
        await filter_sessions(page, worker, failed_only=True)
        await expect(rows).to_have_count(1)
        failed_row = table.get_by_test_id(f"session-item-{loto}")
        await expect(failed_row).to_contain_text(LOTO)
        await expect(failed_row).to_contain_text(f"Wes Worker ({worker})")
        await expect(failed_row.get_by_test_id("failed-count")).to_have_text("✗ 1 FAILED")
        await capture(page, screenshots / "desk-failed-only-1440.png")

        await filter_sessions(page, worker)
        await expect(rows).to_have_count(2)
        await page.get_by_test_id("sort-sop").click()
        await expect(rows.locator("th")).to_have_text([LOTO, FORKLIFT])
        await page.get_by_test_id("sort-sop").click()
        await expect(rows.locator("th")).to_have_text([FORKLIFT, LOTO])
        await page.get_by_test_id("sort-progress").click()
        await expect(rows.first).to_have_attribute("data-testid", f"session-item-{loto}")
        await page.get_by_label("SOP").select_option(label=FORKLIFT)
        await apply_filters(page)
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-testid", f"session-item-{forklift}")

        await filter_sessions(page, worker, failed_only=True)
        await page.get_by_label("SOP").select_option(label="Every SOP")
        await apply_filters(page)
        await failed_row.get_by_role("link").click()
        audit = page.get_by_test_id("audit-table").locator("tbody tr")
        await expect(audit).to_have_count(2)
        await expect(audit.nth(1)).to_contain_text(
            "Clutch air line pressure after venting · ✗ FAILED · 0.5 bar · Limits: 0–0.1 bar"
        )
        await expect(audit.nth(1)).to_contain_text("Note: =1+1 gauge G-7")
        await capture(page, screenshots / "desk-session-audit-1440.png")

        async with page.expect_download() as downloading:
            await page.get_by_test_id("audit-csv").click()
        exported = Path(await (await downloading.value).path())
        with exported.open(newline="") as file:
            started, recorded = list(csv.DictReader(file))
    assert started["type"] == "session_started"
    assert recorded["at"].endswith("Z")
    assert {k: recorded[k] for k in ("check_id", "value", "unit", "min", "max", "passed")} == {
        "check_id": "clutch-air-pressure",
        "value": "0.5",
        "unit": "bar",
        "min": "0",
        "max": "0.1",
        "passed": "false",
    }
    assert recorded["prompt"] == "Clutch air line pressure after venting"
    assert recorded["note"] == "'=1+1 gauge G-7"


async def test_supervisor_list_shows_new_sessions_by_itself(
    browser: Browser, stack_url: str
) -> None:
    worker = f"wes-{uuid.uuid4().hex[:8]}"
    async with (
        open_page(browser, stack_url, DESK) as desk,
        open_page(browser, stack_url, PHONE) as phone,
    ):
        await sign_in(desk, "sam", "Sam Supervisor", "supervisor")
        await filter_sessions(desk, worker)
        await expect(desk.get_by_text("No sessions match these filters.")).to_be_visible()

        await sign_in(phone, worker, "Wes", "worker")
        session_id = await start_session(phone, "loto-press-7", LOTO)

        await expect(desk.get_by_test_id(f"session-item-{session_id}")).to_be_visible(
            timeout=30_000
        )


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["390", "1440"])
async def test_every_main_screen_fits_is_legible_and_tappable(
    browser: Browser, stack_url: str, screenshots: Path, viewport: ViewportSize
) -> None:
    width = viewport["width"]
    worker = f"wes-{uuid.uuid4().hex[:8]}"
    async with open_page(browser, stack_url, viewport) as page:
        await page.goto("/")
        await expect(page.get_by_test_id("signin-submit")).to_be_visible()
        await capture(page, screenshots / f"screen-sign-in-{width}.png")
        await sign_in(page, worker, "Wes Worker", "both")
        await page.get_by_test_id("nav-start").click()
        await expect(page.get_by_test_id("sop-list").get_by_role("listitem")).to_have_count(3)
        await capture(page, screenshots / f"screen-catalog-{width}.png")
        await start_session(page, "loto-press-7", LOTO)
        await capture(page, screenshots / f"screen-session-first-{width}.png", full_page=False)
        await confirm(page, "affected-notified", passed=False)
        await expect_result(page, "affected-notified", "FAILED")
        item = await show_check(page, "accumulator-pressure")
        await item.get_by_test_id("measurement-input").fill("0,05")
        await expect(item.get_by_test_id("measurement-submit")).to_have_text("Record 0.05 bar")
        await capture(page, screenshots / f"screen-reading-preview-{width}.png")
        await item.get_by_test_id("measurement-input").fill("1,234.5")
        await expect(item.get_by_test_id("reading-error")).to_be_visible()
        await capture(page, screenshots / f"screen-reading-refused-{width}.png", full_page=False)
        await page.get_by_test_id("pause-button").click()
        await page.get_by_test_id("pause-confirm").click()
        await expect(page.get_by_test_id("resume-button")).to_be_visible()
        await capture(page, screenshots / f"screen-session-paused-{width}.png")
        await page.get_by_test_id("nav-my-sessions").click()
        await expect(page.get_by_test_id("session-list").get_by_role("listitem")).to_have_count(1)
        await capture(page, screenshots / f"screen-my-sessions-{width}.png")
        await page.get_by_test_id("nav-supervisor").click()
        await filter_sessions(page, worker)
        await expect(page.get_by_test_id("session-table").locator("tbody tr")).to_have_count(1)
        await capture(page, screenshots / f"screen-supervisor-list-{width}.png")
        await page.get_by_test_id("session-table").locator("tbody a").click()
        await expect(page.get_by_test_id("audit-table")).to_be_visible()
        await capture(page, screenshots / f"screen-supervisor-session-{width}.png")

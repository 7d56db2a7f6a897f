"""A worker on a phone with gloves on: readings as typed, failures plain, a network that drops."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, ViewportSize, expect

from tests.e2e.a11y import covered_controls
from tests.e2e.pages import (
    DESK,
    LOTO,
    PHONE,
    capture,
    check,
    confirm,
    expect_result,
    expect_session,
    measure,
    open_page,
    open_step,
    show_check,
    sign_in,
    start_session,
)

pytestmark = pytest.mark.slow

CHECKS_POSTED = re.compile(r"/api/v1/sessions/[^/]+/checks$")


def new_worker() -> str:
    return f"wes-{uuid.uuid4().hex[:8]}"


async def reading_form(page: Page, check_id: str, typed: str) -> None:
    item = await show_check(page, check_id)
    await item.get_by_test_id("measurement-input").fill(typed)


async def test_comma_reading_is_recorded_as_typed_and_ambiguous_ones_are_refused(
    browser: Browser, stack_url: str
) -> None:
    async with open_page(browser, stack_url, PHONE) as page:
        await sign_in(page, new_worker(), "Wes", "worker")
        await start_session(page, "loto-press-7", LOTO)
        item = await show_check(page, "accumulator-pressure")
        reading = item.get_by_test_id("measurement-input")
        submit = item.get_by_test_id("measurement-submit")
        for ambiguous in ("1,234.5", "1.2.3", "0.5 bar", "abc"):
            await reading.fill(ambiguous)
            await expect(item.get_by_test_id("reading-error")).to_contain_text("is not a reading")
            await expect(submit).to_have_text("Record measurement")
            await submit.click()
            await expect(item).to_contain_text("Not recorded yet")

        await reading.fill("0,05")
        await expect(item.get_by_test_id("reading-error")).to_be_hidden()
        await expect(submit).to_have_text("Record 0.05 bar")
        await submit.click()

        await expect_result(page, "accumulator-pressure", "PASSED")
        await expect(item.locator(".latest")).to_contain_text("0.05 bar")
        await expect(item.locator(".records li")).to_have_count(1)


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["390", "1440"])
async def test_a_recorded_check_clears_what_was_typed_and_shows_the_recorded_value(
    browser: Browser, stack_url: str, screenshots: Path, viewport: ViewportSize
) -> None:
    width = viewport["width"]
    async with open_page(browser, stack_url, viewport) as page:
        await sign_in(page, new_worker(), "Wes", "worker")
        await start_session(page, "loto-press-7", LOTO)
        item = await show_check(page, "accumulator-pressure")
        reading = item.get_by_test_id("measurement-input")
        note = item.get_by_label("Note (optional)")
        submit = item.get_by_test_id("measurement-submit")
        await reading.fill("0,05")
        await item.get_by_test_id("add-note").click()
        await note.fill("gauge G-3")
        await expect(submit).to_have_text("Record 0.05 bar")
        await capture(page, screenshots / f"record-typed-{width}.png", full_page=False)

        await submit.click()

        await expect(item.get_by_test_id("check-result")).to_have_text(re.compile("PASSED$"))
        await expect(item.locator(".latest")).to_contain_text("0.05 bar")
        await expect(reading).to_have_value("")
        await expect(note).to_have_value("")
        await expect(submit).to_have_text("Record measurement")
        await expect(item.locator(".records li")).to_contain_text("Note: gauge G-3")
        await capture(page, screenshots / f"record-accepted-{width}.png", full_page=False)

        confirmed = await show_check(page, "affected-notified")
        await confirmed.get_by_test_id("add-note").click()
        await confirmed.get_by_label("Note (optional)").fill("shift lead told")
        await confirmed.get_by_test_id("confirm-pass").click()
        await expect(confirmed.get_by_test_id("check-result")).to_have_text(re.compile("PASSED$"))
        await expect(confirmed.get_by_label("Note (optional)")).to_have_value("")

        await page.reload()
        item = await show_check(page, "accumulator-pressure")
        await expect(item.get_by_test_id("measurement-input")).to_have_value("")


async def test_out_of_limit_reading_is_confirmed_and_shown_failed_everywhere(
    browser: Browser, stack_url: str, screenshots: Path
) -> None:
    async with open_page(browser, stack_url, PHONE) as page:
        await sign_in(page, new_worker(), "Wes", "worker")
        session_id = await start_session(page, "loto-press-7", LOTO)
        await reading_form(page, "clutch-air-pressure", "0,5")
        await check(page, "clutch-air-pressure").get_by_test_id("measurement-submit").click()
        question = page.get_by_test_id("outside-limits-dialog")
        await expect(question).to_contain_text("0.5 bar is outside 0–0.1 bar: record it as FAILED?")
        await capture(page, screenshots / "floor-outside-limits-390.png", full_page=False)
        await question.get_by_test_id("dialog-cancel").click()
        await expect(check(page, "clutch-air-pressure")).to_contain_text("Not recorded yet")

        await measure(page, "clutch-air-pressure", "0,5", outside_limits=True)

        await expect_result(page, "clutch-air-pressure", "FAILED")
        await expect(
            check(page, "clutch-air-pressure").get_by_test_id("check-result")
        ).to_have_text("✗ FAILED")
        await expect(page.get_by_test_id("step-dissipate").locator(".tag-failed")).to_have_text(
            "✗ 1 FAILED"
        )
        header = page.locator("header.session-header")
        await expect(header.get_by_test_id("failed-count")).to_have_text("✗ 1 FAILED")
        await capture(page, screenshots / "floor-failed-check-390.png")

        await page.get_by_test_id("nav-my-sessions").click()
        listed = page.get_by_test_id(f"session-item-{session_id}")
        await expect(listed.get_by_test_id("failed-count")).to_have_text("✗ 1 FAILED")


async def test_tap_made_offline_is_sent_once_after_reconnecting(
    browser: Browser, stack_url: str, screenshots: Path
) -> None:
    async with open_page(browser, stack_url, PHONE) as page:
        recorded: list[int] = []
        page.on(
            "response",
            lambda r: recorded.append(r.status) if CHECKS_POSTED.search(r.url) else None,
        )
        await sign_in(page, new_worker(), "Wes", "worker")
        await start_session(page, "loto-press-7", LOTO)

        await page.context.set_offline(True)
        await expect(page.get_by_test_id("offline-banner")).to_be_visible()
        await confirm(page, "affected-notified", passed=True)
        waiting = page.get_by_test_id("waiting-to-send")
        await expect(waiting).to_contain_text(
            "Operators and area lead notified of the lockout: Pass"
        )
        await expect(check(page, "affected-notified")).to_contain_text("Not recorded yet")
        await capture(page, screenshots / "floor-waiting-to-send-390.png")

        await page.context.set_offline(False)
        await expect_result(page, "affected-notified", "PASSED")
        await expect(waiting).to_have_count(0)
        await page.reload()
        await expect_result(page, "affected-notified", "PASSED")
        await expect(check(page, "affected-notified").locator(".records li")).to_have_count(1)
        assert recorded == [201]


async def test_change_refused_after_reconnecting_says_why_and_is_kept(
    browser: Browser, stack_url: str
) -> None:
    worker = new_worker()
    async with (
        open_page(browser, stack_url, PHONE, allowed_failures=1) as phone,
        open_page(browser, stack_url, PHONE) as tablet,
    ):
        await sign_in(phone, worker, "Wes", "worker")
        await start_session(phone, "loto-press-7", LOTO)
        await phone.context.set_offline(True)
        await confirm(phone, "affected-notified", passed=True)
        await expect(phone.get_by_test_id("waiting-to-send")).to_be_visible()

        await sign_in(tablet, worker, "Wes", "worker")
        await tablet.goto(f"/{phone.url[phone.url.index('#') :]}")
        await tablet.get_by_test_id("pause-button").click()
        await tablet.get_by_test_id("pause-confirm").click()
        await expect_session(tablet, "Paused", "0 / 11 checks passed")

        await phone.context.set_offline(False)
        refused = phone.get_by_test_id("refused-entry")
        await expect(refused).to_contain_text(
            "Could not record this check: the session is paused. Resume it first."
        )
        await expect(refused).to_contain_text("Operators and area lead notified of the lockout")
        await expect_session(phone, "Paused", "0 / 11 checks passed")
        await phone.reload()
        await expect(refused).to_be_visible()
        await refused.get_by_role("button", name="Dismiss").click()
        await expect(refused).to_have_count(0)


async def expired_token(route: Route) -> None:
    await route.fulfill(
        status=401,
        content_type="application/problem+json",
        json={
            "title": "Unauthorized",
            "status": 401,
            "detail": "Token expired",
            "code": "unauthorized",
        },
    )


async def test_typed_reading_survives_token_expiry_and_sign_in(
    browser: Browser, stack_url: str
) -> None:
    worker = new_worker()
    async with open_page(browser, stack_url, PHONE, allowed_failures=1) as page:
        await sign_in(page, worker, "Wes", "worker")
        await start_session(page, "loto-press-7", LOTO)
        await open_step(page, "dissipate")
        item = check(page, "accumulator-pressure")
        await item.get_by_test_id("measurement-input").fill("0,3")
        await item.get_by_test_id("add-note").click()
        await item.get_by_label("Note (optional)").fill("gauge G-2")

        await page.route(re.compile(r"/api/v1/sessions/[^/?]+$"), expired_token, times=1)
        await page.evaluate("() => window.dispatchEvent(new Event('focus'))")
        await expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
        await sign_in(page, worker, "Wes", "worker")

        await expect(page.get_by_test_id("session-title")).to_have_text(LOTO)
        await expect(item.get_by_test_id("measurement-input")).to_have_value("0,3")
        await expect(item.get_by_label("Note (optional)")).to_have_value("gauge G-2")
        await expect(item.get_by_test_id("measurement-submit")).to_have_text("Record 0.3 bar")


async def test_phone_shows_the_current_step_first_and_no_notice_covers_a_control(
    browser: Browser, stack_url: str, screenshots: Path
) -> None:
    async with open_page(browser, stack_url, PHONE) as page:
        await sign_in(page, new_worker(), "Wes", "worker")
        await start_session(page, "loto-press-7", LOTO)
        first_step = page.get_by_test_id("step-prepare")
        await expect(first_step).to_be_in_viewport()
        await expect(
            check(page, "affected-notified").get_by_test_id("confirm-pass")
        ).to_be_in_viewport()
        await expect(page.get_by_test_id("step-shutdown")).to_have_count(0)
        await expect(page.get_by_text("Review EC-P7 and identify")).to_be_visible()
        await expect(page.get_by_test_id("about-session")).not_to_have_attribute("open", "")
        assert await covered_controls(page) == []

        await confirm(page, "affected-notified", passed=True)
        await expect_result(page, "affected-notified", "PASSED")
        assert await covered_controls(page) == []
        await confirm(page, "energy-sources-reviewed", passed=True)
        await expect_result(page, "energy-sources-reviewed", "PASSED")
        await page.get_by_test_id("step-next").click()
        await expect(page.get_by_test_id("step-shutdown")).to_be_visible()
        assert await covered_controls(page) == []
        await capture(page, screenshots / "floor-step-mode-390.png", full_page=False)

        await page.get_by_test_id("step-prev").click()
        await expect_result(page, "energy-sources-reviewed", "PASSED")
        await page.get_by_test_id("step-next").click()
        await expect(page.get_by_test_id("step-shutdown")).to_be_visible()


async def test_open_screen_refreshes_itself_when_it_regains_focus(
    browser: Browser, stack_url: str
) -> None:
    worker = new_worker()
    async with (
        open_page(browser, stack_url, PHONE) as phone,
        open_page(browser, stack_url, PHONE) as tablet,
    ):
        await sign_in(phone, worker, "Wes", "worker")
        await start_session(phone, "loto-press-7", LOTO)
        await sign_in(tablet, worker, "Wes", "worker")
        await tablet.goto(f"/{phone.url[phone.url.index('#') :]}")
        await confirm(tablet, "affected-notified", passed=False)
        await expect_result(tablet, "affected-notified", "FAILED")

        await phone.evaluate("() => window.dispatchEvent(new Event('focus'))")
        await expect_result(phone, "affected-notified", "FAILED")


async def test_completing_lists_what_failed_and_the_session_stays_in_history(
    browser: Browser, stack_url: str, screenshots: Path
) -> None:
    async with open_page(browser, stack_url, PHONE) as page:
        await sign_in(page, new_worker(), "Wes", "worker")
        session_id = await start_session(page, "loto-press-7", LOTO)
        for check_id in (
            "affected-notified",
            "energy-sources-reviewed",
            "normal-stop",
            "ram-secured",
            "breaker-off",
            "air-valve-locked",
        ):
            await confirm(page, check_id, passed=True)
            await expect_result(page, check_id, "PASSED")
        await confirm(page, "lock-photo", passed=False)
        await expect_result(page, "lock-photo", "FAILED")
        await measure(page, "accumulator-pressure", "0,4")
        await expect_result(page, "accumulator-pressure", "PASSED")
        await measure(page, "clutch-air-pressure", "0.05")
        await expect_result(page, "clutch-air-pressure", "PASSED")
        for check_id in ("try-start", "tester-proven"):
            await confirm(page, check_id, passed=True)
            await expect_result(page, check_id, "PASSED")
        await measure(page, "residual-v", "1")
        await expect_session(page, "In progress", "11 / 11 checks passed")

        await page.get_by_test_id("complete-button").click()
        summary = page.get_by_test_id("complete-summary")
        await expect(summary).to_contain_text("1 FAILED")
        await expect(summary).to_contain_text(
            "Photo of the applied locks attached to the work order"
        )
        await capture(page, screenshots / "floor-complete-dialog-390.png", full_page=False)
        await page.get_by_test_id("complete-dialog").get_by_test_id("dialog-confirm").click()

        await expect_session(page, "Completed", "11 / 11 checks passed")
        await expect(page.get_by_test_id("completed-with-failures")).to_have_text(
            "✗ Completed with 1 failed check. Their records are kept below."
        )
        await page.get_by_test_id("nav-my-sessions").click()
        finished = page.get_by_test_id("history-list").get_by_test_id(f"session-item-{session_id}")
        await expect(finished.get_by_test_id("status-badge")).to_have_text("Completed")
        await expect(finished.get_by_test_id("failed-count")).to_have_text("✗ 1 FAILED")
        await capture(page, screenshots / "floor-history-390.png")
        await finished.click()
        await expect(page.get_by_test_id("completed-with-failures")).to_be_visible()
        await expect(page.get_by_test_id("confirm-pass")).to_have_count(0)


async def test_abort_reason_is_marked_optional(browser: Browser, stack_url: str) -> None:
    async with open_page(browser, stack_url, PHONE) as page:
        await sign_in(page, new_worker(), "Wes", "worker")
        await start_session(page, "loto-press-7", LOTO)
        await page.get_by_test_id("abort-button").click()
        await expect(page.get_by_role("dialog").get_by_label("Reason (optional)")).to_be_visible()
        await page.get_by_test_id("abort-confirm").click()
        await expect_session(page, "Aborted", "0 / 11 checks passed")

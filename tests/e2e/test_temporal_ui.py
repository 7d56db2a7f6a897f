"""A supervisor in the Temporal Web UI: the documented queries and columns, in Chromium."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from api.auth import mint_token
from devstack.processes import ROOT
from runtime.settings import DEV_JWT_SECRET

pytestmark = pytest.mark.slow

# Where supervisors read about the Web UI: the README and the pages under docs/.
DOCUMENTATION = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The documented queries, with their example worker `alice` standing for the test's own.
LIVE_OF_WORKER = 'ExecutionStatus = "Running" AND WorkerId = "alice"'
PAUSED_OF_WORKER = 'ExecutionStatus = "Running" AND SessionStatus = "PAUSED" AND WorkerId = "alice"'
ABORTED = 'ExecutionStatus = "Completed" AND SessionStatus = "ABORTED"'
# The documented snippet: where the Web UI keeps a browser's columns for a namespace.
COLUMNS_KEY = "namespace-workflow-table-columns"
COLUMNS = [
    {"label": "Status", "pinned": True},
    {"label": "Workflow ID", "pinned": True},
    {"label": "SessionStatus", "pinned": False},
    {"label": "WorkerId", "pinned": False},
    {"label": "SopTitle", "pinned": False},
    {"label": "Start", "pinned": False},
    {"label": "End", "pinned": False},
]


async def started_sessions(
    api: httpx.AsyncClient, count: int, sop_id: str = "forklift-preshift"
) -> list[str]:
    ids = []
    for _ in range(count):
        response = await api.post("/api/v1/sessions", json={"sop_id": sop_id})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


# The Web UI is a large single-page app: on a busy machine its first screen takes a while.
UI_FIRST_SCREEN_MS = 30_000


async def show_query(page: Page, ui_url: str, query: str) -> None:
    await page.goto(f"{ui_url}/namespaces/default/workflows?query={quote(query)}")
    await expect(page.get_by_role("columnheader", name="SessionStatus")).to_be_visible(
        timeout=UI_FIRST_SCREEN_MS
    )


def test_the_documentation_gives_these_queries_and_columns() -> None:
    documented = "\n".join(page.read_text() for page in DOCUMENTATION)
    for text in (LIVE_OF_WORKER, PAUSED_OF_WORKER, ABORTED, COLUMNS_KEY):
        assert text in documented, text


async def test_supervisor_finds_live_paused_and_aborted_sessions_in_the_web_ui(
    browser: Browser, stack_url: str, screenshots: Path
) -> None:
    worker = f"alice-{uuid.uuid4().hex[:8]}"
    token = mint_token(DEV_JWT_SECRET, worker, ["worker"])
    async with httpx.AsyncClient(
        base_url=stack_url, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        ui_url = (await api.get("/api/v1/config")).json()["temporal_ui_url"]
        working, resting, ended = await started_sessions(api, 3)
        pause = await api.post(f"/api/v1/sessions/{resting}/pause", json={"reason": "break"})
        abort = await api.post(f"/api/v1/sessions/{ended}/abort", json={"reason": "wrong truck"})
        assert pause.status_code == abort.status_code == 200

    def shown(query: str) -> str:
        return query.replace('"alice"', f'"{worker}"')

    context = await browser.new_context(viewport={"width": 1440, "height": 700})
    columns: dict[str, Any] = {"default": COLUMNS}
    await context.add_init_script(
        f"localStorage.setItem({json.dumps(COLUMNS_KEY)}, {json.dumps(json.dumps(columns))})"
    )
    page = await context.new_page()
    shots = screenshots / "webui"
    shots.mkdir(exist_ok=True)
    try:
        await show_query(page, ui_url, shown(LIVE_OF_WORKER))
        await expect(page.get_by_role("link", name=working)).to_be_visible()
        await expect(page.get_by_role("link", name=resting)).to_be_visible()
        await expect(page.get_by_text(ended)).to_have_count(0)
        await page.screenshot(path=shots / "01-live-sessions-of-a-worker.png")

        await show_query(page, ui_url, shown(PAUSED_OF_WORKER))
        await expect(page.get_by_role("link", name=resting)).to_be_visible()
        await expect(page.get_by_text(working)).to_have_count(0)
        await page.screenshot(path=shots / "02-paused-sessions-of-a-worker.png")

        await show_query(page, ui_url, f'{ABORTED} AND WorkerId = "{worker}"')
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=ended))
        await expect(row).to_contain_text("ABORTED")
        await expect(page.get_by_text(working)).to_have_count(0)
        await page.screenshot(path=shots / "03-aborted-sessions.png")
    finally:
        await context.close()


async def test_supervisor_tells_sessions_apart_in_the_list_as_it_comes(
    browser: Browser, stack_url: str, screenshots: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    started: dict[str, list[str]] = {}
    for worker, sop_id in (
        (f"ana-{run}", "loto-press-7"),
        (f"ben-{run}", "forklift-preshift"),
        (f"ana-{run}", "forklift-preshift"),
    ):
        token = mint_token(DEV_JWT_SECRET, worker, ["worker"])
        async with httpx.AsyncClient(
            base_url=stack_url, headers={"Authorization": f"Bearer {token}"}
        ) as api:
            ui_url = (await api.get("/api/v1/config")).json()["temporal_ui_url"]
            started.setdefault(worker, []).extend(await started_sessions(api, 1, sop_id))

    # A browser as it comes: no columns configured, nothing in its storage.
    context = await browser.new_context(viewport={"width": 1440, "height": 700})
    page = await context.new_page()
    try:
        query = f'WorkerId IN ("ana-{run}", "ben-{run}")'
        await page.goto(f"{ui_url}/namespaces/default/workflows?query={quote(query)}")
        rows = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"-{run}."))
        await expect(rows).to_have_count(3, timeout=UI_FIRST_SCREEN_MS)
        for worker, session_ids in started.items():
            for session_id in session_ids:
                assert session_id.startswith(f"{worker}.")
                await expect(page.get_by_role("link", name=session_id)).to_be_visible()
        await expect(page.get_by_role("link", name=f"ana-{run}.loto-press-7.")).to_have_count(1)
        await expect(page.get_by_role("link", name=f"ana-{run}.forklift-preshift.")).to_have_count(
            1
        )
        await expect(page.get_by_role("link", name=f"ben-{run}.forklift-preshift.")).to_have_count(
            1
        )
        shots = screenshots / "webui"
        shots.mkdir(exist_ok=True)
        await page.screenshot(path=shots / "00-sessions-told-apart-without-setup.png")
    finally:
        await context.close()

"""A real stack (Temporal dev server, worker, API as separate processes) and Debian's Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.processes import (
    ROOT,
    ManagedProcess,
    api_process,
    dev_server,
    free_port,
    wait_for_port,
    wait_until_ready,
)
from tests.processes import (
    worker_process as start_worker_process,
)

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


def wait_for_log_line(process: ManagedProcess, text: str, timeout: float = 60.0) -> None:
    """Waits until `text` appears in the process's log, failing fast if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.running:
            raise AssertionError(f"{process.name} exited:\n{process.log_tail()}")
        if process.log_path.exists() and text in process.log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{process.name} did not log {text!r} in {timeout}s")


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
def stack_url(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of an API backed by its own Temporal dev server, worker and SQLite database."""
    data_dir = tmp_path_factory.mktemp("e2e")
    temporal_port, api_port, ui_port = free_port(), free_port(), free_port()
    # As under `make run`: the public dev secret, so that the page's dev sign-in exists.
    env = {
        "EMBEDDED": "true",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "TEMPORAL_NAMESPACE": "default",
        "TEMPORAL_TASK_QUEUE": f"e2e-{uuid.uuid4().hex[:8]}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/app.db",
        "LOG_FORMAT": "text",
        "TEMPORAL_UI_URL": f"http://127.0.0.1:{ui_port}",
        "SESSION_GAUGE_INTERVAL_SECONDS": "0.5",
    }
    subprocess.run(
        [sys.executable, "-m", "store", "migrate"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )
    base_url = f"http://127.0.0.1:{api_port}"
    processes: list[ManagedProcess] = []
    try:
        processes.append(dev_server(data_dir, temporal_port, ui_port=ui_port).start())
        wait_for_port(temporal_port)
        worker = start_worker_process(data_dir, env).start()
        processes.append(worker)
        api = api_process(data_dir, env, api_port).start()
        processes.append(api)
        wait_until_ready(base_url, api)
        wait_for_log_line(worker, "worker polling task queue")
        yield base_url
    finally:
        for process in reversed(processes):
            process.stop()


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

"""A real stack (Temporal dev server, worker, API as separate processes) and Debian's Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.conftest import TEST_SECRET
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
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

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


@dataclass(frozen=True)
class Backend:
    """A Temporal dev server, a worker and a migrated database that API processes share."""

    data_dir: Path
    env: dict[str, str]


@pytest.fixture(scope="session")
def e2e_backend(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """The one Temporal dev server of the browser tests, with its worker and SQLite database."""
    data_dir = tmp_path_factory.mktemp("e2e")
    temporal_port, ui_port = free_port(), free_port()
    env = {
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
    processes: list[ManagedProcess] = []
    try:
        processes.append(dev_server(data_dir, temporal_port, ui_port=ui_port).start())
        wait_for_port(temporal_port)
        worker = start_worker_process(data_dir, env).start()
        processes.append(worker)
        wait_for_log_line(worker, "worker polling task queue")
        yield Backend(data_dir, env)
    finally:
        for process in reversed(processes):
            process.stop()


@contextmanager
def api_on(backend: Backend, auth_env: dict[str, str], name: str) -> Iterator[str]:
    """An API process on the shared backend with its own sign-in settings; yields its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    api = api_process(backend.data_dir, {**backend.env, **auth_env}, port, name=name).start()
    try:
        wait_until_ready(base_url, api)
        yield base_url
    finally:
        api.stop()


@pytest.fixture(scope="session")
def stack_url(e2e_backend: Backend) -> Iterator[str]:
    """Base URL of the embedded API with the dev sign-in, on the shared backend."""
    with api_on(e2e_backend, {"EMBEDDED": "true", "AUTH_JWT_SECRET": TEST_SECRET}, "api") as url:
        yield url


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

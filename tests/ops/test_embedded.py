"""`make run`'s launcher: one command up, tokens that work, a crashed process comes back,
a busy port is named, Ctrl-C stops all quietly, data kept."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from devstack.processes import ROOT, free_port, port_in_use
from tests.helpers import assert_eventually

pytestmark = pytest.mark.slow

PORTS = ("temporal", "ui", "api", "metrics")
BANNER_END = "Press Ctrl-C to stop."
# What the dev server and the worker's pollers print when stopped in the wrong order.
NOISE = ("Traceback", "dial error", "Failed to poll", "connection refused")


class Launcher:
    """`python embedded.py` as a user starts it, with its output read as it comes."""

    def __init__(self, tmp_path: Path, ports: dict[str, int]) -> None:
        env = {
            **os.environ,
            "EMBEDDED_DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/app.db",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
            "TEMPORAL_UI_URL": f"http://localhost:{ports['ui']}",
            "API_PORT": str(ports["api"]),
            "WORKER_METRICS_PORT": str(ports["metrics"]),
        }
        env.pop("AUTH_JWT_SECRET", None)
        env.pop("EMBEDDED", None)
        self.api = f"http://127.0.0.1:{ports['api']}"
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "embedded.py")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def line_starting(self, text: str, after: int = 0, timeout: float = 90) -> str:
        """The output up to the first line from line `after` on that starts with `text`."""

        async def printed() -> str:
            for index, line in enumerate(self.lines[after:], start=after):
                if line.startswith(text):
                    return "".join(self.lines[: index + 1])
            assert self.process.poll() is None, f"the launcher exited:\n{self.output}"
            raise AssertionError(f"no line {text!r} yet:\n{self.output[-3000:]}")

        return await assert_eventually(printed, timeout, interval=0.1)

    async def banner(self) -> str:
        """The output up to the end of the banner, once the API it announces is ready."""
        banner = await self.line_starting(BANNER_END)
        await until_ready(self.api)
        return banner

    def as_worker(self, banner: str) -> httpx.AsyncClient:
        """A client of the API with the worker token the banner gives."""
        token = re.search(r"WORKER_TOKEN=(\S+)", banner)
        assert token, banner
        headers = {"Authorization": f"Bearer {token[1]}"}
        return httpx.AsyncClient(base_url=self.api, headers=headers, timeout=30)

    def child(self, marker: str) -> int:
        """The pid of the launcher's child whose command line holds `marker`."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            if marker in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace"):
                return int(child)
        raise AssertionError(f"no child process runs {marker!r}")

    def stop(self) -> None:
        """Ctrl-C, as a terminal sends it."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)


async def until_ready(api: str, timeout: float = 60) -> None:
    async with httpx.AsyncClient(timeout=5) as http:

        async def ready() -> None:
            try:
                response = await http.get(f"{api}/readyz")
            except httpx.HTTPError as err:
                raise AssertionError(f"API not ready: {err}") from err
            assert response.status_code == 200, response.text

        await assert_eventually(ready, timeout, interval=0.2)


async def test_one_command_starts_everything_and_a_restart_keeps_every_session(
    tmp_path: Path,
) -> None:
    ports = {name: free_port() for name in PORTS}
    api = f"http://127.0.0.1:{ports['api']}"
    launcher = Launcher(tmp_path, ports)
    try:
        banner = await launcher.banner()
        assert f"http://localhost:{ports['api']}/docs" in banner
        assert f"http://localhost:{ports['ui']}" in banner
        assert f"http://localhost:{ports['metrics']}/metrics" in banner
        assert re.search(r"SUPERVISOR_TOKEN=(\S+)", banner)
        async with launcher.as_worker(banner) as http:
            sops = (await http.get("/api/v1/sops")).json()["items"]
            assert {"loto-press-7", "confined-space-entry", "forklift-preshift"} <= {
                s["id"] for s in sops
            }
            started = await http.post("/api/v1/sessions", json={"sop_id": "loto-press-7"})
            assert started.status_code == 201
            session_id = started.json()["id"]
            paused = await http.post(f"/api/v1/sessions/{session_id}/pause", json={})
            assert paused.status_code == 200
        async with httpx.AsyncClient(timeout=5) as plain:
            dev_token = await plain.post(
                f"{api}/api/v1/dev/token", json={"sub": "dana", "roles": ["worker"]}
            )
            assert dev_token.status_code == 200
            metrics = await plain.get(f"http://127.0.0.1:{ports['metrics']}/metrics")
            assert "temporal_" in metrics.text, "the worker's SDK metrics are on the listed port"
        stopping_from = len(launcher.lines)
    finally:
        await asyncio.to_thread(launcher.stop)
    assert launcher.process.returncode == 0
    said_at_stop = "".join(launcher.lines[stopping_from:])
    assert not [noise for noise in NOISE if noise in said_at_stop], said_at_stop
    assert said_at_stop.rstrip().endswith("Stopped.")
    assert not any(port_in_use(port) for port in ports.values())

    launcher = Launcher(tmp_path, ports)
    try:
        banner = await launcher.banner()
        assert "Loaded example SOPs" not in banner
        async with launcher.as_worker(banner) as http:
            kept = await http.get(f"/api/v1/sessions/{session_id}")
            assert kept.status_code == 200
            assert kept.json()["status"] == "PAUSED"
            resumed = await http.post(f"/api/v1/sessions/{session_id}/resume")
            assert resumed.json()["status"] == "IN_PROGRESS"
    finally:
        await asyncio.to_thread(launcher.stop)


async def test_a_killed_worker_api_or_server_is_started_again_and_serves(
    tmp_path: Path,
) -> None:
    launcher = Launcher(tmp_path, {name: free_port() for name in PORTS})
    try:
        banner = await launcher.banner()
        async with launcher.as_worker(banner) as http:
            started = await http.post("/api/v1/sessions", json={"sop_id": "loto-press-7"})
            session_id = started.json()["id"]

            for name, marker, command in (
                ("worker", "worker.py", "pause"),
                ("API", "uvicorn", "resume"),
                ("Temporal dev server", "start-dev", "pause"),
            ):
                before = len(launcher.lines)
                os.kill(launcher.child(marker), signal.SIGKILL)
                said = await launcher.line_starting(f"Restarted the {name}", after=before)
                assert f"The {name} stopped unexpectedly" in said
                await until_ready(launcher.api)

                async def served(command: str = command) -> None:
                    # The first command after a worker restart may wait out a sticky queue.
                    response = await http.post(f"/api/v1/sessions/{session_id}/{command}")
                    assert response.status_code == 200, response.text

                await assert_eventually(served, timeout=60, interval=0.5)
    finally:
        await asyncio.to_thread(launcher.stop)
    assert launcher.process.returncode == 0


async def test_a_port_in_use_is_named_with_its_variable_before_anything_starts(
    tmp_path: Path,
) -> None:
    ports = {name: free_port() for name in PORTS}
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["api"]))
        squatter.listen()
        launcher = Launcher(tmp_path, ports)
        started = time.monotonic()
        code = await asyncio.to_thread(launcher.process.wait, 30)
    await asyncio.sleep(0.1)
    assert code == 1
    assert f"Port {ports['api']} is already in use: set API_PORT" in launcher.output
    assert "Work sessions are running" not in launcher.output
    assert time.monotonic() - started < 10
    assert not port_in_use(ports["temporal"]), "no dev server was left behind"

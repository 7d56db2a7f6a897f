"""`make run`'s launcher: one command up, tokens that work, Ctrl-C stops all, data kept."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import ROOT, free_port

pytestmark = pytest.mark.slow


def launch(tmp_path: Path, ports: dict[str, int]) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "EMBEDDED_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/app.db",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "TEMPORAL_UI_URL": f"http://localhost:{ports['ui']}",
        "API_PORT": str(ports["api"]),
    }
    env.pop("AUTH_JWT_SECRET", None)
    env.pop("EMBEDDED", None)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "embedded.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_banner(process: subprocess.Popen[str], timeout: float = 90) -> str:
    """Reads the launcher's output until it says it is running."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if line.startswith("Press Ctrl-C to stop."):
            return "".join(lines)
    raise AssertionError("the launcher did not come up:\n" + "".join(lines[-40:]))


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def until_ready(api: str) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{api}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("API not ready")


async def test_one_command_starts_everything_and_a_restart_keeps_every_session(
    tmp_path: Path,
) -> None:
    ports = {name: free_port() for name in ("temporal", "ui", "api")}
    api = f"http://127.0.0.1:{ports['api']}"
    process = launch(tmp_path, ports)
    try:
        banner = await asyncio.to_thread(read_banner, process)
        assert f"http://localhost:{ports['api']}/docs" in banner
        assert f"http://localhost:{ports['ui']}" in banner
        worker_token = re.search(r"WORKER_TOKEN=(\S+)", banner)
        supervisor_token = re.search(r"SUPERVISOR_TOKEN=(\S+)", banner)
        assert worker_token and supervisor_token
        await until_ready(api)
        async with httpx.AsyncClient(
            base_url=api, headers={"Authorization": f"Bearer {worker_token[1]}"}
        ) as http:
            sops = (await http.get("/api/v1/sops")).json()["items"]
            assert {"loto-press-7", "confined-space-entry", "forklift-preshift"} <= {
                s["id"] for s in sops
            }
            started = await http.post("/api/v1/sessions", json={"sop_id": "loto-press-7"})
            assert started.status_code == 201
            session_id = started.json()["id"]
            paused = await http.post(f"/api/v1/sessions/{session_id}/pause", json={})
            assert paused.status_code == 200
        dev_token = httpx.post(f"{api}/api/v1/dev/token", json={"sub": "dana", "roles": ["worker"]})
        assert dev_token.status_code == 200
    finally:
        await asyncio.to_thread(stop, process)
    assert process.returncode == 0
    assert not any(listening(port) for port in ports.values())

    process = launch(tmp_path, ports)
    try:
        banner = await asyncio.to_thread(read_banner, process)
        assert "Loaded example SOPs" not in banner
        await until_ready(api)
        token = re.search(r"WORKER_TOKEN=(\S+)", banner)
        assert token
        async with httpx.AsyncClient(
            base_url=api, headers={"Authorization": f"Bearer {token[1]}"}
        ) as http:
            kept = await http.get(f"/api/v1/sessions/{session_id}")
            assert kept.status_code == 200
            assert kept.json()["status"] == "PAUSED"
            resumed = await http.post(f"/api/v1/sessions/{session_id}/resume")
            assert resumed.json()["status"] == "IN_PROGRESS"
    finally:
        await asyncio.to_thread(stop, process)

"""Real processes for tests that kill things: the dev server, workers and API replicas."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from runtime.processes import die_with_parent
from tests.conftest import DEV_SERVER_ARGS, TEMPORAL_BIN

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ManagedProcess:
    """A child process that can be killed and started again with the same command."""

    name: str
    command: list[str]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> ManagedProcess:
        """Starts (or restarts) the process, appending its output to its log file."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's output, for failure messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def dev_server(
    data_dir: Path, port: int, extra_args: list[str] | None = None, ui_port: int | None = None
) -> ManagedProcess:
    """A Temporal dev server on a SQLite file in `data_dir` (survives restarts), Web UI optional."""
    return ManagedProcess(
        name=f"temporal:{port}",
        command=[
            str(TEMPORAL_BIN),
            "server",
            "start-dev",
            "--db-filename",
            str(data_dir / "temporal.db"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            *(
                ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
                if ui_port
                else ["--headless"]
            ),
            "--log-level",
            "warn",
            *DEV_SERVER_ARGS,
            *(extra_args or []),
        ],
        env={},
        log_path=data_dir / f"temporal-{port}.log",
    )


def worker_process(data_dir: Path, env: Mapping[str, str], name: str = "worker") -> ManagedProcess:
    """A worker process with the given settings environment."""
    return ManagedProcess(
        name=name,
        command=[sys.executable, str(ROOT / "worker.py")],
        env=env,
        log_path=data_dir / f"{name}.log",
    )


def api_process(
    data_dir: Path, env: Mapping[str, str], port: int, name: str = "api", host: str = "127.0.0.1"
) -> ManagedProcess:
    """An API process (uvicorn) on `host`:`port`, launched as `make run` launches it."""
    return ManagedProcess(
        name=name,
        command=[
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.main:create_app",
            "--host",
            host,
            "--port",
            str(port),
            "--no-access-log",
            "--no-proxy-headers",
        ],
        env=env,
        log_path=data_dir / f"{name}.log",
    )


def wait_until_ready(base_url: str, process: ManagedProcess, timeout: float = 60.0) -> None:
    """Waits until the API's /readyz says ready, failing fast if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.running:
            raise AssertionError(f"{process.name} exited:\n{process.log_tail()}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{process.name} not ready in {timeout}s:\n{process.log_tail()}")


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Waits until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")

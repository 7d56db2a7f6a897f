"""Child processes that can be killed, restarted and stopped, and the ports they need."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runtime.processes import die_with_parent

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could not bind `host:port` now (one that left it in TIME_WAIT can)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return True
            raise
        return False


@dataclass
class ManagedProcess:
    """A child process that can be killed and started again with the same command.

    Its output goes to `log_path`, or to the launcher's own output when that is None.
    """

    name: str
    command: list[str]
    env: Mapping[str, str]
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_at: float = 0.0

    def start(self) -> ManagedProcess:
        """Starts (or restarts) the process, appending its output to its log file."""
        log = self.log_path.open("ab") if self.log_path else None
        try:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                preexec_fn=die_with_parent,
                # Out of the terminal's process group: Ctrl-C reaches only the launcher,
                # which then stops the children in an order that keeps them quiet.
                process_group=0,
            )
        finally:
            if log:
                log.close()
        self.started_at = time.monotonic()
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's output, for failure messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

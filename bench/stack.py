"""A private embedded stack for the benchmark, in a temp dir, and what it costs to run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from api.auth import mint_token
from bench.drivers import BENCH_SOP_ID
from devstack.processes import ManagedProcess, free_port
from devstack.stack import Stack, build_stack
from runtime.settings import Settings
from store.db import create_engine, create_transaction_factory
from store.sops import PublishedSop, SopCatalog

SECRET = "bench-secret-0123456789abcdef0123456789"
# Seconds for the bare engine's worker process to start polling.
BARE_WORKER_START_SECONDS = 3.0
# The bare engine's worker process, in CPU readings.
BARE_WORKER = "bare worker"
# Reads the CPU seconds each process has used so far, by name.
CpuReader = Callable[[], dict[str, float]]


@dataclass
class BenchStack:
    """The running stack and the figures the benchmark reads from its processes."""

    stack: Stack
    data_dir: Path

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    @property
    def api_url(self) -> str:
        return self.stack.api_url()

    def token(self, user_id: str) -> str:
        """A worker token for `user_id`."""
        return mint_token(SECRET, user_id, ["worker"], ttl_seconds=4 * 3600)

    def worker_rss_mb(self) -> float:
        """The worker process's resident memory (VmRSS) in MiB."""
        return process_rss_mb(self.stack.worker)

    def worker_memory_mb(self) -> dict[str, float]:
        """The worker's resident memory in MiB by kind of mapping, from /proc/<pid>/smaps."""
        return resident_by_mapping(_proc(self.stack.worker, "smaps"))

    async def restart_worker(self) -> None:
        """Stops the worker gracefully and starts a new one, whose workflow cache is empty."""
        self.stack.worker.stop()
        self.stack.worker.start()
        await self.stack.wait_for_worker()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each process, the benchmark itself included."""
        assert self.stack.server is not None
        times = os.times()
        return {
            "temporal": process_cpu_seconds(self.stack.server),
            "worker": process_cpu_seconds(self.stack.worker),
            "api": process_cpu_seconds(self.stack.api),
            "bench": times.user + times.system,
        }

    def stop(self) -> None:
        """Stops the API, the worker and the server, in that order."""
        self.stack.stop()


def _proc(process: ManagedProcess, name: str) -> str:
    return Path(f"/proc/{process.pid}/{name}").read_text()


def process_cpu_seconds(process: ManagedProcess) -> float:
    """CPU time (user + system) of a managed process."""
    return pid_cpu_seconds(process.pid)


def pid_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid`, from /proc/<pid>/stat."""
    # Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mb(process: ManagedProcess) -> float:
    """Resident memory of a managed process in MiB, from /proc/<pid>/status."""
    status = _proc(process, "status")
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {process.name}")


def resident_by_mapping(smaps: str) -> dict[str, float]:
    """Resident MiB of the brk heap, of anonymous maps and of files, from smaps text.

    CPython's small objects and the SDK core's allocator live in anonymous maps
    and the heap; libraries and the interpreter in files.
    """
    kib = {"heap": 0, "anonymous": 0, "files": 0}
    kind = "anonymous"
    for line in smaps.splitlines():
        head = line.split(maxsplit=6)
        if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:
            name = head[5].strip() if len(head) > 5 else ""
            kind = "heap" if name == "[heap]" else "files" if name.startswith("/") else "anonymous"
        elif line.startswith("Rss:"):
            kib[kind] += int(line.split()[1])
    return {name: value / 1024 for name, value in kib.items()}


async def _bench_sop(settings: Settings) -> PublishedSop:
    engine = create_engine(settings.database_url)
    try:
        sop = await SopCatalog(create_transaction_factory(engine)).get(BENCH_SOP_ID)
    finally:
        await engine.dispose()
    if sop is None:
        raise RuntimeError(f"the example SOP {BENCH_SOP_ID} was not seeded")
    return sop


async def start_stack(
    data_dir: Path,
    worker_cache: int | None,
    first_port: int | None,
    encryption_keys: SecretStr | None = None,
) -> tuple[BenchStack, PublishedSop]:
    """Starts the dev server, prepares the databases, then starts the worker and the API.

    The dev server listens on `first_port` and the API on the next one (free ports if None).
    """
    temporal_port, api_port = (
        (free_port(), free_port()) if first_port is None else (first_port, first_port + 1)
    )
    settings = Settings(
        temporal_address=f"127.0.0.1:{temporal_port}",
        temporal_task_queue="bench-work-sessions",
        database_url=f"sqlite+aiosqlite:///{data_dir}/app.db",
        auth_jwt_secret=SECRET,
        api_port=api_port,
        log_format="text",
        payload_encryption_keys=encryption_keys,
    )
    if worker_cache is not None:
        settings.worker_max_cached_workflows = worker_cache
    stack = build_stack(settings, data_dir)
    await stack.start()
    try:
        return BenchStack(stack, data_dir), await _bench_sop(settings)
    except BaseException:
        stack.stop()
        raise


@asynccontextmanager
async def bare_engine_worker(stack: BenchStack, task_queue: str) -> AsyncIterator[CpuReader]:
    """Runs the bare engine's worker (`python -m bench.bare`) in a process of its own,
    polling `task_queue`, while the block runs; yields a reader of every process's CPU
    time, the stack's and that worker's (`BARE_WORKER`), so that the bare side's CPU
    per operation counts the worker that serves it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare", stack.settings.temporal_address, task_queue]
    )

    def cpu_seconds() -> dict[str, float]:
        return {**stack.cpu_seconds(), BARE_WORKER: pid_cpu_seconds(process.pid)}

    try:
        await asyncio.sleep(BARE_WORKER_START_SECONDS)
        yield cpu_seconds
    finally:
        process.terminate()
        process.wait()

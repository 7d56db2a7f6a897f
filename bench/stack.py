"""A private embedded stack for the benchmark: dev server, worker and API in a temp dir."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from api.auth import mint_token
from bench.drivers import BENCH_SOP_ID
from engine.client import connect_when_ready, register_search_attributes
from runtime.settings import Settings
from store.db import create_engine, create_transaction_factory
from store.migrate import migrate
from store.seed import seed_examples
from store.sops import PublishedSop, SopCatalog
from tests.processes import (
    ManagedProcess,
    api_process,
    dev_server,
    free_port,
    wait_until_ready,
    worker_process,
)

SECRET = "bench-secret-0123456789abcdef0123456789"
WORKER_READY_LINE = "worker polling task queue"


@dataclass
class Stack:
    """The running processes and what clients need to reach them."""

    settings: Settings
    api_url: str
    server: ManagedProcess
    worker: ManagedProcess
    api: ManagedProcess

    def token(self, user_id: str) -> str:
        """A worker token for `user_id`."""
        return mint_token(SECRET, user_id, ["worker"], ttl_seconds=4 * 3600)

    def worker_rss_mb(self) -> float:
        """The worker process's resident memory (VmRSS) in MiB."""
        return process_rss_mb(self.worker)

    async def restart_worker(self) -> None:
        """Stops the worker gracefully and starts a new one, whose workflow cache is empty."""
        ready_before = self._worker_ready_count()
        self.worker.stop()
        self.worker.start()
        await self.wait_for_worker(ready_before)

    async def wait_for_worker(self, ready_before: int = 0) -> None:
        """Waits until the worker has logged that it polls more often than `ready_before`."""
        deadline = time.monotonic() + 60
        while self._worker_ready_count() <= ready_before:
            if not self.worker.running or time.monotonic() > deadline:
                raise RuntimeError(f"the worker is not polling:\n{self.worker.log_tail()}")
            await asyncio.sleep(0.1)

    def _worker_ready_count(self) -> int:
        if not self.worker.log_path.exists():
            return 0
        return self.worker.log_path.read_text(errors="replace").count(WORKER_READY_LINE)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each process, the benchmark itself included."""
        times = os.times()
        return {
            "temporal": process_cpu_seconds(self.server),
            "worker": process_cpu_seconds(self.worker),
            "api": process_cpu_seconds(self.api),
            "bench": times.user + times.system,
        }

    def stop(self) -> None:
        """Stops the API, the worker and the server, in that order."""
        for process in (self.api, self.worker, self.server):
            process.stop()


def _proc(process: ManagedProcess, name: str) -> str:
    if process.process is None:
        raise RuntimeError(f"{process.name} is not running")
    return Path(f"/proc/{process.process.pid}/{name}").read_text()


def process_cpu_seconds(process: ManagedProcess) -> float:
    """CPU time (user + system) of a managed process, from /proc/<pid>/stat."""
    # Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    fields = _proc(process, "stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mb(process: ManagedProcess) -> float:
    """Resident memory of a managed process in MiB, from /proc/<pid>/status."""
    status = _proc(process, "status")
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {process.name}")


async def _prepare(settings: Settings) -> PublishedSop:
    """Registers search attributes, migrates and seeds the app database; returns the bench SOP."""
    client = await connect_when_ready(settings)
    await register_search_attributes(client, settings.temporal_namespace)
    await migrate(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        catalog = SopCatalog(create_transaction_factory(engine))
        await seed_examples(catalog)
        sop = await catalog.get(BENCH_SOP_ID)
    finally:
        await engine.dispose()
    if sop is None:
        raise RuntimeError(f"the example SOP {BENCH_SOP_ID} was not seeded")
    return sop


async def start_stack(data_dir: Path, worker_cache: int | None) -> tuple[Stack, PublishedSop]:
    """Starts the dev server, prepares the databases, then starts the worker and the API."""
    temporal_port, api_port = free_port(), free_port()
    settings = Settings(
        temporal_address=f"127.0.0.1:{temporal_port}",
        temporal_task_queue="bench-work-sessions",
        database_url=f"sqlite+aiosqlite:///{data_dir}/app.db",
        auth_jwt_secret=SECRET,
        log_format="text",
    )
    env = {
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "DATABASE_URL": settings.database_url,
        "AUTH_JWT_SECRET": SECRET,
        "LOG_FORMAT": "text",
    }
    if worker_cache is not None:
        env["WORKER_MAX_CACHED_WORKFLOWS"] = str(worker_cache)
    server = dev_server(data_dir, temporal_port).start()
    stack = Stack(
        settings=settings,
        api_url=f"http://127.0.0.1:{api_port}",
        server=server,
        worker=worker_process(data_dir, env),
        api=api_process(data_dir, env, api_port),
    )
    try:
        sop = await _prepare(settings)
        stack.worker.start()
        stack.api.start()
        await asyncio.to_thread(wait_until_ready, stack.api_url, stack.api)
        await stack.wait_for_worker()
    except BaseException:
        stack.stop()
        raise
    return stack, sop

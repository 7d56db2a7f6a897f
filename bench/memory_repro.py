"""Worker memory as idle workflows pile up: the product's session workflow against a bare one.

`python -m bench.memory_repro --workflow bare --sessions 10000` starts a dev server,
runs a worker in this very process with the product's cache size, and starts
workflows that each take one update and then wait, as paused sessions do. At each
checkpoint it prints the process's resident memory by kind of mapping (from
/proc/self/smaps), what Python's allocator holds (tracemalloc), and the allocation
sites that grew most since the first checkpoint. With `--workflow bare` nothing of
the product runs in the worker but the SDK and a counter, so growth seen there is
the SDK's own: the script is small enough to report upstream.

`--worker process` measures a worker process instead, as it runs in service:
`worker.py` itself (with its SQLite audit log) for the product, `python -m
bench.bare` for the bare workflow; `--worker-env NAME=VALUE` sets its environment
(an allocator setting such as `MALLOC_ARENA_MAX=2`, say). Each `--side
NAME:VAR=VALUE,...` adds a worker process of its own with those variables; the
sides share the dev server and take turns, so a lever is measured against the
unchanged worker in the same run. `bench/sdk_memory_repro.py` is the same
measurement with nothing but the SDK, to report upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import dataclasses
import gc
import json
import sys
import tempfile
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.bare import BareDriver, BareSessionWorkflow
from bench.drivers import SdkDriver
from bench.stack import resident_by_mapping
from devstack.processes import ManagedProcess, free_port
from devstack.stack import (
    DEV_SERVER_SQLITE_ARGS,
    TEMPORAL_BIN,
    Stack,
    build_stack,
    settings_env,
)
from engine.client import DATA_CONVERTER, register_search_attributes
from runtime.settings import Settings
from store.seed import LOTO_PRESS_7
from store.sops import snapshot_of
from workflows.shared import AuditEvent
from workflows.work_session import WorkSessionWorkflow

# Seconds for the worker to finish its tasks before memory is read.
SETTLE_SECONDS = 2.0
# Frames kept per allocation: enough to tell the SDK's sites from the product's.
TRACE_FRAMES = 6
WARMUP_SESSIONS = 20
PAUSE_ATTEMPTS = 30
# Workflows a side starts before the next side takes its turn.
TURN = 100
TOP_SITES = 12


@activity.defn(name="append_audit_events")
async def discard_audit_events(events: list[AuditEvent]) -> int:
    """Stands in for the audit activity: no database in this process."""
    return len(events)


@dataclass
class Checkpoint:
    """The worker process's memory with `sessions` idle workflows present."""

    sessions: int
    rss_mb: float
    by_mapping_mb: dict[str, float]
    python_traced_mb: float
    python_blocks: int
    # Resident memory once the C allocator has handed its free pages back (in-process only).
    rss_after_malloc_trim_mb: float | None = None


def _rss_mb(pid: str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _malloc_trim() -> None:
    """Asks glibc to return the free memory of every arena to the system."""
    ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


async def _checkpoint(
    sessions: int, trim: bool = False
) -> tuple[Checkpoint, tracemalloc.Snapshot | None]:
    await asyncio.sleep(SETTLE_SECONDS)
    gc.collect()
    snapshot = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
    traced = tracemalloc.get_traced_memory()[0] if snapshot else 0
    blocks = sum(s.count for s in snapshot.statistics("filename")) if snapshot else 0
    point = Checkpoint(
        sessions=sessions,
        rss_mb=_rss_mb(),
        by_mapping_mb=resident_by_mapping(Path("/proc/self/smaps").read_text()),
        python_traced_mb=traced / 1024 / 1024,
        python_blocks=blocks,
    )
    if trim:
        _malloc_trim()
        point.rss_after_malloc_trim_mb = _rss_mb()
    return point, snapshot


def _process_checkpoint(sessions: int, pid: int) -> Checkpoint:
    return Checkpoint(
        sessions=sessions,
        rss_mb=_rss_mb(str(pid)),
        by_mapping_mb=resident_by_mapping(Path(f"/proc/{pid}/smaps").read_text()),
        python_traced_mb=0.0,
        python_blocks=0,
    )


def _say(point: Checkpoint) -> None:
    mapped = ", ".join(f"{k} {v:.1f}" for k, v in point.by_mapping_mb.items())
    traced = (
        f"; Python {point.python_traced_mb:.1f} MiB in {point.python_blocks} blocks"
        if point.python_blocks
        else ""
    )
    trimmed = (
        f"; {point.rss_after_malloc_trim_mb:.1f} MiB after malloc_trim"
        if point.rss_after_malloc_trim_mb is not None
        else ""
    )
    print(f"{point.sessions:>6} idle: RSS {point.rss_mb:.1f} MiB ({mapped}){traced}{trimmed}")


async def _pause(driver: SdkDriver, session_id: str) -> None:
    """Pauses; on a machine too busy for the workflow task or the update's deadline, again.

    A pause that timed out may have landed: a retry refused as a second pause counts as done.
    """
    for attempt in range(PAUSE_ATTEMPTS):
        try:
            await driver.pause(session_id)
            return
        except WorkflowUpdateFailedError:
            if attempt == 0:
                raise
            return
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            if attempt == PAUSE_ATTEMPTS - 1:
                raise
        except RPCError as err:
            if err.status != RPCStatusCode.FAILED_PRECONDITION or attempt == PAUSE_ATTEMPTS - 1:
                raise
        await asyncio.sleep(1)


async def _idle_sessions(
    client: Client,
    task_queue: str,
    bare: bool,
    checkpoints: list[int],
    concurrency: int,
    started: int = 0,
) -> AsyncIterator[int]:
    """Starts and pauses workflows up to each checkpoint in turn, yielding the count at each.

    `started` counts those already there; user ids go on from it.
    """
    sop = snapshot_of(LOTO_PRESS_7, 1)
    driver_type = BareDriver if bare else SdkDriver

    async def up_to(count: int) -> None:
        nonlocal started
        while started < count:
            started += 1
            driver = driver_type(client, task_queue, sop, f"idle-{started // 5:05d}")
            session_id = await driver.start()
            await _pause(driver, session_id)

    for checkpoint in checkpoints:
        await asyncio.gather(*(up_to(checkpoint) for _ in range(concurrency)))
        yield started


def _growth(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot) -> list[str]:
    """The allocation sites (innermost frame) and the files that grew most between two snapshots."""
    lines = ["by line:"]
    lines += [_grown(s) for s in last.compare_to(first, "lineno")[:TOP_SITES]]
    lines += ["by file:"]
    lines += [_grown(s) for s in last.compare_to(first, "filename")[:TOP_SITES]]
    lines += ["by call path, outermost frame first:"]
    for stat in last.compare_to(first, "traceback")[:TOP_SITES]:
        lines += [_grown(stat), *(f"      {frame}" for frame in stat.traceback)]
    return lines


def _grown(stat: tracemalloc.StatisticDiff) -> str:
    return f"{stat.size_diff / 1024:+9.0f} KiB {stat.count_diff:+8d} blocks  {stat.traceback}"


async def run(args: argparse.Namespace) -> dict[str, list[Checkpoint]]:
    """Starts the server and the worker, then the idle workflows checkpoint by checkpoint."""
    if args.worker == "process":
        return await _run_worker_process(args)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_BIN),
        data_converter=DATA_CONVERTER,
        dev_server_extra_args=DEV_SERVER_SQLITE_ARGS,
        port=args.port,
        dev_server_log_level="error",
    )
    async with env:
        client = env.client
        await register_search_attributes(client, client.namespace)
        task_queue = f"memory-{uuid.uuid4().hex[:8]}"
        bare = args.workflow == "bare"
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[BareSessionWorkflow if bare else WorkSessionWorkflow],
            activities=[discard_audit_events],
            max_cached_workflows=args.cache,
            # Tracing slows workflow code past the deadlock detector's 2 s.
            debug_mode=args.tracemalloc,
        )
        points: list[Checkpoint] = []
        snapshots: list[tracemalloc.Snapshot] = []
        async with worker:
            # The sandbox's first imports under tracing outlast a workflow task's timeout:
            # the worker warms up untraced, and only growth from then on is traced.
            async for _ in _idle_sessions(
                client, task_queue, bare, [WARMUP_SESSIONS], args.concurrency
            ):
                pass
            if args.tracemalloc:
                tracemalloc.start(TRACE_FRAMES)
            checkpoints = _checkpoints(args)
            async for started in _idle_sessions(
                client, task_queue, bare, checkpoints, args.concurrency, WARMUP_SESSIONS
            ):
                point, snapshot = await _checkpoint(started, args.malloc_trim)
                points.append(point)
                if snapshot is not None:
                    snapshots.append(snapshot)
                _say(point)
        if len(snapshots) >= 2:
            print("Allocation sites that grew most, first checkpoint to last:")
            for line in _growth(snapshots[0], snapshots[-1]):
                print("  " + line)
    return {"in-process": points}


@dataclass
class Side:
    """One worker process of a side-by-side run: its name, its task queue and its stack."""

    name: str
    stack: Stack
    started: int = 0

    @property
    def task_queue(self) -> str:
        return self.stack.settings.temporal_task_queue


def _side_stack(
    args: argparse.Namespace, spec: str, data_dir: Path, port: int, with_server: bool
) -> Side:
    """A side from `NAME[:VAR=VALUE,...]`: its own task queue, database and environment."""
    name, _, assignments = spec.partition(":")
    side_env = dict(pair.split("=", 1) for pair in assignments.split(",") if pair)
    side_dir = data_dir / name
    side_dir.mkdir()
    settings = Settings(
        temporal_address=f"127.0.0.1:{port}",
        temporal_task_queue=f"memory-repro-{name}",
        database_url=f"sqlite+aiosqlite:///{side_dir}/app.db",
        worker_max_cached_workflows=args.cache,
        worker_metrics_port=args.metrics_port if with_server else None,
        log_format="text",
    )
    stack = build_stack(settings, side_dir)
    worker = stack.worker
    if args.workflow == "bare":
        command = [sys.executable, "-m", "bench.bare", settings.temporal_address]
        worker = ManagedProcess(
            f"bare worker {name}",
            [*command, settings.temporal_task_queue, str(args.cache)],
            settings_env(settings),
            side_dir / "worker.log",
        )
    common_env = dict(v.split("=", 1) for v in args.worker_env)
    worker.env = {**worker.env, **common_env, **side_env}
    # No API: nothing here goes through it. One dev server, started by the first side.
    stack = dataclasses.replace(
        stack,
        server=stack.server if with_server else None,
        workers=[worker],
        apis=[],
        api_ports=[],
    )
    return Side(name, stack)


async def _run_worker_process(args: argparse.Namespace) -> dict[str, list[Checkpoint]]:
    """The same idle workflows, each side's worker in a process of its own, read from outside.

    The sides share one dev server and take turns, `TURN` workflows at a time in
    A-B-B-A order, so that every side sees the same machine.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="memory-repro-"))
    port = args.port or free_port()
    specs = args.side or ["worker"]
    sides = [
        _side_stack(args, spec, data_dir, port, with_server=index == 0)
        for index, spec in enumerate(specs)
    ]
    points: dict[str, list[Checkpoint]] = {side.name: [] for side in sides}
    started_stacks: list[Stack] = []
    try:
        for side in sides:
            await side.stack.start()
            started_stacks.append(side.stack)
        client = sides[0].stack.temporal()
        bare = args.workflow == "bare"
        for side in sides:
            await _fill(client, side, bare, WARMUP_SESSIONS, 1)
        turn = 0
        for checkpoint in _checkpoints(args):
            while any(side.started < checkpoint for side in sides):
                order = sides if turn % 2 == 0 else sides[::-1]
                for side in order:
                    up_to = min(checkpoint, side.started + TURN)
                    await _fill(client, side, bare, up_to, args.concurrency)
                turn += 1
            await asyncio.sleep(SETTLE_SECONDS)
            for side in sides:
                point = _process_checkpoint(side.started, side.stack.worker.pid)
                points[side.name].append(point)
                print(f"{side.name:>12}", end=" ")
                _say(point)
    finally:
        for stack in reversed(started_stacks):
            stack.stop()
    print(f"worker logs and databases in {data_dir}")
    return points


async def _fill(client: Client, side: Side, bare: bool, up_to: int, concurrency: int) -> None:
    async for started in _idle_sessions(
        client, side.task_queue, bare, [up_to], concurrency, side.started
    ):
        side.started = started


def _checkpoints(args: argparse.Namespace) -> list[int]:
    return sorted(set(args.checkpoints) | {args.sessions})


def main(argv: list[str] | None = None) -> int:
    """Prints the checkpoints and the growth from the first to the last."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory_repro", description=__doc__)
    parser.add_argument("--workflow", choices=["product", "bare"], default="bare")
    parser.add_argument("--sessions", type=int, default=2000, help="idle workflows in all (2000)")
    parser.add_argument(
        "--checkpoints", type=int, nargs="*", default=[100, 1000], help="(100 1000)"
    )
    parser.add_argument(
        "--cache",
        type=int,
        default=Settings().worker_max_cached_workflows,
        help="max_cached_workflows (the product's default)",
    )
    parser.add_argument("--concurrency", type=int, default=20, help="workflows started at once")
    parser.add_argument("--tracemalloc", action="store_true", help="trace Python's allocations")
    parser.add_argument(
        "--worker",
        choices=["in-process", "process"],
        default="in-process",
        help="run the worker in this process (traceable) or in its own, as in service",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable of the worker process (--worker process)",
    )
    parser.add_argument(
        "--side",
        action="append",
        metavar="NAME[:VAR=VALUE,...]",
        help="a worker process of its own with these variables, side by side with the "
        "other sides (--worker process; one side by default)",
    )
    parser.add_argument(
        "--metrics-port", type=int, help="the worker process's metrics port (none by default)"
    )
    parser.add_argument(
        "--malloc-trim",
        action="store_true",
        help="at each checkpoint, read RSS again after malloc_trim (in-process only)",
    )
    parser.add_argument("--port", type=int, help="the dev server's port (a free one)")
    parser.add_argument("--output", type=Path, help="write the checkpoints as JSON here")
    args = parser.parse_args(argv)
    sides = asyncio.run(run(args))
    for name, points in sides.items():
        growth = points[-1].rss_mb / points[0].rss_mb - 1
        first, last = points[0].sessions, points[-1].sessions
        print(f"{name}: RSS {first} → {last} idle workflows: {growth:+.1%}")
    if args.output:
        result = {name: [asdict(p) for p in points] for name, points in sides.items()}
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

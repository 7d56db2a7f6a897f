"""Worker memory as idle workflows pile up: the product's session workflow against a bare one.

`python -m bench.memory_repro --workflow bare --sessions 10000` starts a dev server,
runs a worker in this very process with the product's cache size, and starts
workflows that each take one update and then wait, as paused sessions do. At each
checkpoint it prints the process's resident memory by kind of mapping (from
/proc/self/smaps), what Python's allocator holds (tracemalloc), and the allocation
sites that grew most since the first checkpoint. With `--workflow bare` nothing of
the product runs in the worker but the SDK and a counter, so growth seen there is
the SDK's own: the script is small enough to report upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tracemalloc
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.bare import BareDriver, BareSessionWorkflow
from bench.drivers import SdkDriver
from bench.stack import resident_by_mapping
from devstack.stack import DEV_SERVER_SQLITE_ARGS, TEMPORAL_BIN
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


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def _checkpoint(sessions: int) -> tuple[Checkpoint, tracemalloc.Snapshot | None]:
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
    return point, snapshot


def _growth(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot) -> list[str]:
    """The allocation sites (innermost frame) that grew most between two snapshots."""
    grown = last.compare_to(first, "lineno")[:TOP_SITES]
    return [
        f"{s.size_diff / 1024:+9.0f} KiB {s.count_diff:+8d} blocks  {s.traceback}" for s in grown
    ]


async def run(args: argparse.Namespace) -> list[Checkpoint]:
    """Starts the server and the worker, then the idle workflows checkpoint by checkpoint."""
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
        sop = snapshot_of(LOTO_PRESS_7, 1)
        driver_type = BareDriver if args.workflow == "bare" else SdkDriver
        workflow = BareSessionWorkflow if args.workflow == "bare" else WorkSessionWorkflow
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[workflow],
            activities=[discard_audit_events],
            max_cached_workflows=args.cache,
            # Tracing slows workflow code past the deadlock detector's 2 s.
            debug_mode=args.tracemalloc,
        )
        points: list[Checkpoint] = []
        snapshots: list[tracemalloc.Snapshot] = []
        async with worker:
            started = 0

            async def idle_sessions(up_to: int) -> None:
                nonlocal started
                while started < up_to:
                    started += 1
                    driver = driver_type(client, task_queue, sop, f"idle-{started // 5:05d}")
                    session_id = await driver.start()
                    await driver.pause(session_id)

            # The sandbox's first imports under tracing outlast a workflow task's timeout:
            # the worker warms up untraced, and only growth from then on is traced.
            await asyncio.gather(*(idle_sessions(WARMUP_SESSIONS) for _ in range(args.concurrency)))
            if args.tracemalloc:
                tracemalloc.start(TRACE_FRAMES)
            for checkpoint in sorted(set(args.checkpoints) | {args.sessions}):
                await asyncio.gather(*(idle_sessions(checkpoint) for _ in range(args.concurrency)))
                point, snapshot = await _checkpoint(started)
                points.append(point)
                if snapshot is not None:
                    snapshots.append(snapshot)
                mapped = ", ".join(f"{k} {v:.1f}" for k, v in point.by_mapping_mb.items())
                print(
                    f"{point.sessions:>6} idle: RSS {point.rss_mb:.1f} MiB ({mapped}); "
                    f"Python {point.python_traced_mb:.1f} MiB in {point.python_blocks} blocks",
                    flush=True,
                )
        if len(snapshots) >= 2:
            print("Allocation sites that grew most, first checkpoint to last:")
            for line in _growth(snapshots[0], snapshots[-1]):
                print("  " + line)
    return points


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
    parser.add_argument("--port", type=int, help="the dev server's port (a free one)")
    parser.add_argument("--output", type=Path, help="write the checkpoints as JSON here")
    args = parser.parse_args(argv)
    points = asyncio.run(run(args))
    growth = points[-1].rss_mb / points[0].rss_mb - 1
    print(f"RSS {points[0].sessions} → {points[-1].sessions} idle workflows: {growth:+.1%}")
    if args.output:
        args.output.write_text(json.dumps([asdict(p) for p in points], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

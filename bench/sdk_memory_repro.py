"""A Temporal Python SDK worker's memory as idle workflows pass through its cache.

Self-contained (only `temporalio`), to attach to a report upstream:

    python bench/sdk_memory_repro.py --sessions 10000 --checkpoints 100 1000 5000

starts a dev server, runs a worker in a child process (`max_cached_workflows`
200, the sandboxed runner, the default data converter), and starts workflows
that each take one update and then wait for good. At each checkpoint it reads
the worker's resident memory by kind of mapping from /proc/PID/smaps, then asks
the worker (SIGUSR1) to run a full garbage collection and glibc's
`malloc_trim(0)` and reads it again: what the second read drops was garbage
or free memory the allocators kept, what stays is held. Linux only.

`--activation-check` shows, with no server, what the worker's `Info` keeps of a
run's first activation: `headers=dict(init.headers)` and
`raw_memo=dict(init.memo.fields)` are protobuf sub-messages, and each keeps its
whole parsed activation (the workflow's input included) alive.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import gc
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

TASK_QUEUE = "sdk-memory-repro"
# Seconds for the worker to finish its tasks (and for a collection) before memory is read.
SETTLE_SECONDS = 2.0


@workflow.defn
class IdleWorkflow:
    """Takes updates and waits: a paused session, as far as the SDK can tell."""

    def __init__(self) -> None:
        self._touches = 0

    @workflow.run
    async def run(self) -> int:
        """Waits until cancelled."""
        await workflow.wait_condition(lambda: False)
        return self._touches

    @workflow.update
    def touch(self, note: str) -> int:
        """Counts an update."""
        self._touches += 1
        return self._touches


def _die_with_parent() -> None:
    pr_set_pdeathsig = 1
    ctypes.CDLL(ctypes.util.find_library("c")).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _collect_and_trim() -> None:
    gc.collect()
    ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


async def serve(address: str, cache: int) -> None:
    """The worker process: polls until SIGTERM; SIGUSR1 collects and trims."""
    client = await Client.connect(address)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, _collect_and_trim)
    async with Worker(
        client, task_queue=TASK_QUEUE, workflows=[IdleWorkflow], max_cached_workflows=cache
    ):
        print("polling", flush=True)
        await stop.wait()


def resident_mib(pid: int) -> dict[str, float]:
    """Resident MiB in all and of the brk heap, anonymous maps and files, from smaps."""
    kib = {"heap": 0, "anonymous": 0, "files": 0}
    kind = "anonymous"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=6)
        if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:
            name = head[5].strip() if len(head) > 5 else ""
            kind = "heap" if name == "[heap]" else "files" if name.startswith("/") else "anonymous"
        elif line.startswith("Rss:"):
            kib[kind] += int(line.split()[1])
    return {"rss": sum(kib.values()) / 1024} | {k: v / 1024 for k, v in kib.items()}


async def measure(args: argparse.Namespace) -> list[dict[str, object]]:
    """Starts the server and the worker process, then the workflows, checkpoint by checkpoint."""
    env = await WorkflowEnvironment.start_local(
        port=args.port,
        dev_server_existing_path=args.temporal_bin,
        dev_server_log_level="error",
    )
    async with env:
        address = env.client.service_client.config.target_host
        worker = subprocess.Popen(
            [sys.executable, __file__, "--serve", address, "--cache", str(args.cache)],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
        )
        try:
            assert worker.stdout is not None
            worker.stdout.readline()
            return await _fill(env.client, worker.pid, args)
        finally:
            worker.terminate()
            worker.wait(timeout=30)


async def _fill(client: Client, pid: int, args: argparse.Namespace) -> list[dict[str, object]]:
    started = 0
    points: list[dict[str, object]] = []

    async def up_to(count: int) -> None:
        nonlocal started
        while started < count:
            started += 1
            handle = await client.start_workflow(
                "IdleWorkflow",
                id=f"idle-{uuid.uuid4()}",
                task_queue=TASK_QUEUE,
                run_timeout=timedelta(days=1),
            )
            await handle.execute_update(IdleWorkflow.touch, "paused")

    for checkpoint in sorted(set(args.checkpoints) | {args.sessions}):
        began = time.monotonic()
        await asyncio.gather(*(up_to(checkpoint) for _ in range(args.concurrency)))
        await asyncio.sleep(SETTLE_SECONDS)
        held = resident_mib(pid)
        os.kill(pid, signal.SIGUSR1)
        await asyncio.sleep(SETTLE_SECONDS)
        trimmed = resident_mib(pid)
        points.append({"workflows": started, "as_is": held, "collected_and_trimmed": trimmed})
        print(
            f"{started:>6} idle ({time.monotonic() - began:.0f} s): RSS {held['rss']:.1f} MiB "
            f"(heap {held['heap']:.1f}, anonymous {held['anonymous']:.1f}, "
            f"files {held['files']:.1f}); after gc and malloc_trim {trimmed['rss']:.1f} MiB "
            f"(heap {trimmed['heap']:.1f}, anonymous {trimmed['anonymous']:.1f})",
            flush=True,
        )
    return points


def activation_check(count: int = 200, input_bytes: int = 200_000) -> None:
    """Keeps only the memo and header dicts of `count` activations, as `Info` does."""
    from temporalio.bridge.proto.workflow_activation import WorkflowActivation

    def parsed_activation() -> WorkflowActivation:
        built = WorkflowActivation(run_id="run")
        init = built.jobs.add().initialize_workflow
        init.workflow_id, init.workflow_type = "idle", "IdleWorkflow"
        init.arguments.add().data = os.urandom(input_bytes)
        init.memo.fields["summary"].data = b"x" * 100
        init.headers["trace"].data = b"y" * 100
        parsed = WorkflowActivation()
        parsed.ParseFromString(built.SerializeToString())
        return parsed

    gc.collect()
    before = resident_mib(os.getpid())["rss"]
    kept = []
    for _ in range(count):
        init = parsed_activation().jobs[0].initialize_workflow
        kept.append((dict(init.headers), dict(init.memo.fields)))
    gc.collect()
    held = resident_mib(os.getpid())["rss"] - before
    kept.clear()
    gc.collect()
    _collect_and_trim()
    left = resident_mib(os.getpid())["rss"] - before
    print(
        f"{count} activations with a {input_bytes // 1000} KB input, only their memo and "
        f"header dicts kept: +{held:.1f} MiB; once those are dropped: +{left:.1f} MiB"
    )


def main() -> int:
    """Parses the options; runs the worker (`--serve`) or the measurement."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=10000, help="idle workflows (10000)")
    parser.add_argument("--checkpoints", type=int, nargs="*", default=[100, 1000, 5000])
    parser.add_argument("--cache", type=int, default=200, help="max_cached_workflows (200)")
    parser.add_argument("--concurrency", type=int, default=20, help="workflows started at once")
    parser.add_argument("--port", type=int, help="the dev server's port (a free one)")
    parser.add_argument(
        "--temporal-bin", help="a temporal CLI to run the dev server (downloaded otherwise)"
    )
    parser.add_argument("--output", type=Path, help="write the checkpoints as JSON here")
    parser.add_argument(
        "--activation-check",
        action="store_true",
        help="what keeping the memo and header dicts of an activation holds (no server)",
    )
    parser.add_argument("--serve", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.activation_check:
        activation_check()
        return 0
    if args.serve:
        asyncio.run(serve(args.serve, args.cache))
        return 0
    points = asyncio.run(measure(args))
    first, last = points[0]["as_is"], points[-1]["as_is"]
    assert isinstance(first, dict) and isinstance(last, dict)
    print(
        f"RSS growth {points[0]['workflows']} → {points[-1]['workflows']} idle workflows: "
        f"{last['rss'] / first['rss'] - 1:+.1%}"
    )
    if args.output:
        args.output.write_text(json.dumps(points, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

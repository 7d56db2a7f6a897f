"""Two workers' code on one stack: the same load to each, in A-B-B-A rounds.

`python -m bench.workers_ab OTHER_TREE` starts a private stack, then a worker of
this checkout and one of `OTHER_TREE` (another checkout of this project, say a
`git worktree` of the release), each on a task queue of its own, and sends the
same load to each through the SDK in turns. Both share the dev server, so its
speed, which drifts by a third from run to run on shared machines, weighs on
both alike; what differs is the workflow code. Prints throughput, latency and
the CPU per operation of the dev server and of that side's worker.

`--open` sends the open load (virtual workers thinking 4 s on average) instead
of the closed lifecycle load (no think time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.drivers import Driver, SdkDriver
from bench.lifecycle import Side, side_by_side
from bench.open_load import open_load
from bench.stack import pid_cpu_seconds, start_stack
from devstack.answers import passing_answers
from devstack.stack import settings_env
from engine.client import connect
from runtime.settings import Settings

THIS_TREE = Path(__file__).resolve().parent.parent
# Seconds for a worker process to import, connect and poll.
WORKER_START_SECONDS = 6
OPEN_LOAD_THINK_SECONDS = 4.0
WARMUP_SECONDS = 3.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workers_ab",
        description="Two workers' code on one stack: the same load to each, in A-B-B-A rounds.",
    )
    parser.add_argument("other_tree", type=Path, help="another checkout of this project")
    parser.add_argument("--rounds", type=int, default=3, help="A-B-B-A rounds (3)")
    parser.add_argument("--window", type=float, default=10, help="seconds per window (10)")
    parser.add_argument(
        "--virtual-workers", type=int, help="per side (20 closed, 100 open)", default=None
    )
    parser.add_argument("--open", action="store_true", help="the open load, 25 ops/s")
    return parser.parse_args(argv)


@contextmanager
def workers(settings: Settings, trees: dict[str, Path], log_dir: Path) -> Iterator[dict[str, int]]:
    """A worker process per tree, polling the task queue named after its side; their pids."""
    processes = {}
    for side, tree in trees.items():
        env = {
            **os.environ,
            **settings_env(settings),
            "TEMPORAL_TASK_QUEUE": f"ab-{side}",
            "WORKER_METRICS_PORT": "",
            "PYTHONPATH": str(tree),
        }
        log = (log_dir / f"worker-{side}.log").open("w")
        processes[side] = subprocess.Popen(
            [sys.executable, "worker.py"], cwd=tree, env=env, stdout=log, stderr=log
        )
    try:
        yield {side: process.pid for side, process in processes.items()}
    finally:
        for process in processes.values():
            process.terminate()
            process.wait()


async def compare(args: argparse.Namespace) -> dict[str, Side]:
    """Runs the load against both workers in turns; each side's accumulated figures."""
    trees = {"this": THIS_TREE, "other": args.other_tree.resolve()}
    data_dir = Path(tempfile.mkdtemp(prefix="workers-ab-"))
    stack, sop = await start_stack(data_dir, None, None)
    try:
        with workers(stack.settings, trees, data_dir) as pids:
            await asyncio.sleep(WORKER_START_SECONDS)
            client = await connect(stack.settings)
            snapshot = sop.to_snapshot()
            answers = passing_answers(snapshot)

            def cpu() -> dict[str, float]:
                return {
                    **stack.cpu_seconds(),
                    **{side: pid_cpu_seconds(pid) for side, pid in pids.items()},
                }

            count = args.virtual_workers or (100 if args.open else 20)
            drivers: dict[str, list[Driver]] = {
                side: [
                    SdkDriver(client, f"ab-{side}", snapshot, f"ab-{side}-{i:03d}")
                    for i in range(count)
                ]
                for side in trees
            }
            if args.open:
                return await open_load(
                    drivers,
                    answers,
                    args.window * args.rounds * 2,
                    OPEN_LOAD_THINK_SECONDS,
                    WARMUP_SECONDS,
                    cpu,
                    rounds=args.rounds,
                )
            for side in trees:
                await Side().run(drivers[side], answers, WARMUP_SECONDS, cpu)
            this, other = await side_by_side(
                drivers["this"],
                drivers["other"],
                answers,
                args.window * args.rounds * 2,
                cpu,
                rounds=args.rounds,
            )
            return {"this": this, "other": other}
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sides = asyncio.run(compare(args))
    sys.stdout.write("side   ops/s   p50 ms   p99 ms   dev server CPU ms/op   worker CPU ms/op\n")
    for side, measured in sides.items():
        ops = measured.stats()["all"]
        cpu = measured.cpu_ms_per_op()
        sys.stdout.write(
            f"{side:<5} {ops.ops_per_s:7.1f} {ops.p50_ms:8.1f} {ops.p99_ms:8.1f} "
            f"{cpu['temporal']:22.2f} {cpu[side]:18.2f}\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

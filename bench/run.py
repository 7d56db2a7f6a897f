"""`python -m bench.run`: lifecycle load (facade vs SDK), engine model, idle scale, long sessions.

Starts a private embedded stack in a temp dir (never touches `.data/`), prints a
table with every target marked PASS or FAIL, and writes `bench/results/latest.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.bare import BareDriver
from bench.drivers import Driver, RestDriver, SdkDriver
from bench.encryption import EncryptionResult, measure_encryption
from bench.engine_model import AuditLagSampler, history_bytes_per_check, resume_after_pause
from bench.http import HttpClient
from bench.idle import (
    Paused,
    build_long_session,
    create_paused,
    idle_user,
    measure_list,
    measure_resumes,
)
from bench.lifecycle import Side, side_by_side
from bench.open_load import open_load
from bench.report import Target, machine
from bench.results import (
    BARE_SIDE,
    PRODUCT_SIDE,
    SDK_SIDE,
    EngineModelResult,
    IdleResult,
    LifecycleResult,
    OpenLoadResult,
    PhaseResult,
)
from bench.stack import BenchStack, CpuReader, bare_engine_worker, start_stack
from devstack.answers import passing_answers
from engine.client import connect
from runtime.settings import Settings
from workflows.shared import SopSnapshot

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
# Seconds to let the worker settle before reading its memory.
RSS_SETTLE_SECONDS = 2.0
# The audit lag the docs state for the lifecycle load on the reference machine.
AUDIT_LAG_BOUND_MS = 3000.0
# A-B-B-A rounds of the SDK path against the bare engine, each of the lifecycle load's windows.
SDK_BARE_ROUNDS = 2


def _stack_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--worker-cache", type=int, help="WORKER_MAX_CACHED_WORKFLOWS (product default)"
    )
    group.add_argument(
        "--first-port", type=int, help="dev server on this port, API on the next (free ports)"
    )
    group.add_argument("--output", type=Path, default=RESULTS, help=f"results JSON ({RESULTS})")
    group.add_argument(
        "--phases",
        nargs="+",
        choices=[phase.key for phase in PHASES],
        default=[phase.key for phase in PHASES],
        help="the phases to run, in their order (all)",
    )


def _lifecycle_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--virtual-workers",
        type=int,
        default=20,
        help="concurrent virtual workers of every closed load (20)",
    )
    group.add_argument(
        "--duration", type=float, default=20.0, help="seconds of closed load per side (20)"
    )
    group.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of unrecorded load first (3)"
    )
    group.add_argument(
        "--audit-lag-bound",
        type=float,
        default=AUDIT_LAG_BOUND_MS,
        help=f"the audit lag the docs state, ms; the target is 0.8 × this ({AUDIT_LAG_BOUND_MS:g})",
    )


def _engine_model_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--pause-samples", type=int, default=12, help="resumes timed per gap (12)")
    group.add_argument(
        "--open-loop-workers", type=int, default=100, help="virtual workers of the open load (100)"
    )
    group.add_argument(
        "--open-loop-rate", type=float, default=25.0, help="operations/s of the open load (25)"
    )
    group.add_argument(
        "--open-loop-seconds", type=float, default=60.0, help="seconds of open load per side (60)"
    )
    group.add_argument(
        "--open-loop-warmup", type=float, default=5.0, help="unrecorded seconds per side first (5)"
    )
    group.add_argument(
        "--open-loop-rounds",
        type=int,
        default=1,
        help="A-B-B-A rounds the sides' time is cut into (1); more rounds of shorter windows "
        "give each side the same share of a machine whose neighbours come and go",
    )
    group.add_argument(
        "--open-loop-sdk",
        action="store_true",
        help="a third side: the product's workflow through the SDK, without the API",
    )


def _idle_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--sessions", type=int, default=1000, help="paused sessions (1000)")
    group.add_argument("--list-samples", type=int, default=200, help="list calls timed (200)")
    group.add_argument("--long-sessions", type=int, default=10, help="long sessions built (10)")
    group.add_argument(
        "--long-events", type=int, default=500, help="history events per long session (500)"
    )
    group.add_argument(
        "--evicted-samples", type=int, default=20, help="short sessions resumed evicted (20)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, one group per phase; defaults give the run of `make bench`."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    _stack_options(parser.add_argument_group("stack"))
    for phase in PHASES:
        phase.options(parser.add_argument_group(phase.group))
    return parser.parse_args(argv)


def _say(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class BenchContext:
    """What every phase works with: the options, the running stack and its clients."""

    args: argparse.Namespace
    stack: BenchStack
    http: HttpClient
    client: Client
    sop: SopSnapshot

    def sdk(self, user_id: str) -> SdkDriver:
        """A virtual worker sending the product's calls through the SDK."""
        return SdkDriver(self.client, self.stack.settings.temporal_task_queue, self.sop, user_id)

    def rest(self, user_id: str) -> RestDriver:
        """A virtual worker calling the REST facade with a token of its own."""
        return RestDriver(self.http, self.stack.token(user_id))


@dataclass(frozen=True)
class Phase:
    """One phase of the benchmark: its section's key, what it prints as it starts, how it runs."""

    key: str
    group: str
    options: Callable[[argparse._ArgumentGroup], None]
    title: Callable[[argparse.Namespace], str]
    run: Callable[[BenchContext], Awaitable[PhaseResult]]


async def lifecycle(ctx: BenchContext) -> LifecycleResult:
    """Facade and SDK sides in A-B-B-A order, an audit lag sampler running beside them."""
    args, stack = ctx.args, ctx.stack
    answers = passing_answers(ctx.sop)
    users = [f"vw-{i:03d}" for i in range(args.virtual_workers)]
    rest: list[Driver] = [ctx.rest(u) for u in users]
    sdk: list[Driver] = [ctx.sdk(u) for u in users]
    lag = AuditLagSampler(ctx.http, stack.token("audit-lag"), stack.data_dir / "app.db", [])
    sampler = asyncio.create_task(lag.run(answers))
    try:
        cpu = stack.cpu_seconds
        await Side().run(rest, answers, args.warmup, cpu)
        await Side().run(sdk, answers, args.warmup / 2, cpu)
        _say("  first: facade, second: SDK")
        facade, direct = await side_by_side(rest, sdk, answers, args.duration, cpu, _say)
    finally:
        sampler.cancel()
    for name, side in (("facade", facade), ("sdk", direct)):
        for example in side.recorder.error_examples:
            _say(f"  error ({name}): {example}")
    return LifecycleResult(
        virtual_workers=args.virtual_workers,
        seconds_per_side=args.duration,
        facade=facade.stats(),
        sdk=direct.stats(),
        cpu_ms_per_op={"facade": facade.cpu_ms_per_op(), "sdk": direct.cpu_ms_per_op()},
        sessions_finished={"facade": facade.sessions_finished, "sdk": direct.sessions_finished},
        audit_lag_ms=lag.samples_ms,
        audit_lag_bound_ms=args.audit_lag_bound,
    )


async def engine_model(ctx: BenchContext) -> EngineModelResult:
    """History per check, a resume right after a pause, then the bare engine's comparisons."""
    args = ctx.args
    answers = passing_answers(ctx.sop)
    measurement = next(a for a in answers if a.value is not None)
    history = await history_bytes_per_check(ctx.client, ctx.sdk("history"), measurement)
    _say(f"  history: {history.bytes_check_10:.0f} B at check 10")
    pause = await resume_after_pause(ctx.rest("pauser"), args.pause_samples)
    _say(f"  resume after a pause: {pause.ratio:.2f}×")
    bare_queue = "bench-bare-engine"
    async with bare_engine_worker(ctx.stack, bare_queue) as cpu:
        sdk, bare = await _sdk_against_bare_engine(ctx, bare_queue, cpu)
        sdk_rate, bare_rate = sdk.stats()["all"].ops_per_s, bare.stats()["all"].ops_per_s
        _say(f"  SDK path {sdk_rate:.0f} ops/s, bare engine {bare_rate:.0f} ops/s")
        load = await _open_load(ctx, bare_queue, cpu)
    return EngineModelResult(
        history,
        pause,
        load,
        sdk_rate,
        bare_rate,
        {"SDK": sdk.cpu_ms_per_op(), "bare engine": bare.cpu_ms_per_op()},
    )


async def _sdk_against_bare_engine(
    ctx: BenchContext, bare_queue: str, cpu: CpuReader
) -> tuple[Side, Side]:
    """The product's SDK path against a trivial workflow on the same server: two A-B-B-A
    rounds of the lifecycle load's windows, since one round swung 0.61-0.74 between runs."""
    args = ctx.args
    users = [f"be-{i:03d}" for i in range(args.virtual_workers)]
    answers = passing_answers(ctx.sop)
    product: list[Driver] = [ctx.sdk(u) for u in users]
    trivial: list[Driver] = [BareDriver(ctx.client, bare_queue, ctx.sop, u) for u in users]
    await Side().run(trivial, answers, args.warmup / 2, cpu)
    return await side_by_side(
        product, trivial, answers, SDK_BARE_ROUNDS * args.duration, cpu, rounds=SDK_BARE_ROUNDS
    )


async def _open_load(ctx: BenchContext, bare_queue: str, cpu: CpuReader) -> OpenLoadResult:
    """The same open load through REST and against the bare engine (and the SDK), A-B-B-A."""
    args = ctx.args
    users = [f"ow-{i:03d}" for i in range(args.open_loop_workers)]
    sides: dict[str, list[Driver]] = {
        PRODUCT_SIDE: [ctx.rest(u) for u in users],
        BARE_SIDE: [BareDriver(ctx.client, bare_queue, ctx.sop, u) for u in users],
    }
    if args.open_loop_sdk:
        sides[SDK_SIDE] = [ctx.sdk(u) for u in users]
    measured = await open_load(
        sides,
        passing_answers(ctx.sop),
        args.open_loop_seconds,
        args.open_loop_workers / args.open_loop_rate,
        args.open_loop_warmup,
        cpu,
        _say,
        rounds=args.open_loop_rounds,
    )
    for name, side in measured.items():
        for example in side.recorder.error_examples:
            _say(f"  error ({name}): {example}")
    return OpenLoadResult(
        workers=args.open_loop_workers,
        rate=args.open_loop_rate,
        seconds_per_side=args.open_loop_seconds,
        sides={name: side.stats() for name, side in measured.items()},
        cpu_ms_per_op={name: side.cpu_ms_per_op() for name, side in measured.items()},
    )


async def idle_and_long(ctx: BenchContext) -> IdleResult:
    """Worker memory from 100 to N paused sessions, listing, then resumes after eviction."""
    args, stack = ctx.args, ctx.stack
    total = args.sessions
    # Measured on the worker that has just run the loads, as a worker in service
    # would be: its heap has already seen sessions come and go.
    rss = {"0": stack.worker_rss_mb()}
    memory = {"0": stack.worker_memory_mb()}
    paused: list[Paused] = []
    checkpoints = sorted({c for c in (100, 1000, 5000) if c < total} | {total})
    for checkpoint in checkpoints:
        created_started = time.monotonic()
        paused += await create_paused(ctx.sdk, range(len(paused), checkpoint), args.virtual_workers)
        _say(
            f"  {checkpoint} paused sessions present (+{time.monotonic() - created_started:.1f} s)"
        )
        await asyncio.sleep(RSS_SETTLE_SECONDS)
        rss[str(checkpoint)] = stack.worker_rss_mb()
        memory[str(checkpoint)] = stack.worker_memory_mb()
    listing = await measure_list(ctx.http, stack.token(idle_user(0)), args.list_samples)
    longs = await asyncio.gather(
        *(
            build_long_session(ctx.client, ctx.sdk(f"long-{i:03d}"), args.long_events)
            for i in range(args.long_sessions)
        )
    )
    _say(f"  {len(longs)} long sessions of {min(e for _, e in longs)}+ history events built")
    groups = {
        "fresh": paused[: args.evicted_samples],
        "long": [Paused(f"long-{i:03d}", sid) for i, (sid, _) in enumerate(longs)],
    }
    resumes = await measure_resumes(stack, ctx.http, ctx.client, ctx.sdk("bench-warmup"), groups)
    return IdleResult(
        sessions=total,
        worker_rss_mb=rss,
        worker_memory_mb=memory,
        listing=listing,
        resumes=resumes,
        long_session_events=[e for _, e in longs],
    )


def _encryption_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--encryption-duration",
        type=float,
        default=20.0,
        help="seconds of closed load per side, encryption off and on (20)",
    )


async def encryption(ctx: BenchContext) -> EncryptionResult:
    """Payload encryption off and on, on two fresh stacks of their own."""
    args = ctx.args
    return await measure_encryption(
        virtual_workers=args.virtual_workers,
        seconds=args.encryption_duration,
        warmup=args.warmup,
        worker_cache=args.worker_cache,
        first_port=args.first_port,
        say=_say,
    )


# Every phase, in the order they run against one stack. A phase of another module
# (like payload encryption) joins with a `Phase` here: its options, its run, its result.
PHASES = [
    Phase(
        LifecycleResult.key,
        "lifecycle load, facade against SDK, audit lag (and every closed load's options)",
        _lifecycle_options,
        lambda a: f"Lifecycle load: {a.virtual_workers} virtual workers, facade vs SDK",
        lifecycle,
    ),
    Phase(
        EngineModelResult.key,
        "engine model: history, pauses, SDK against the bare engine, open load",
        _engine_model_options,
        lambda a: "Engine model: history per check, pauses, bare engine, open load",
        engine_model,
    ),
    Phase(
        IdleResult.key,
        "idle scale and long sessions",
        _idle_options,
        lambda a: f"Idle scale: {a.sessions} paused sessions; long sessions",
        idle_and_long,
    ),
    Phase(
        EncryptionResult.key,
        "payload encryption off and on (two more stacks; the lifecycle's closed-load options)",
        _encryption_options,
        lambda a: f"Payload encryption: {a.virtual_workers} virtual workers, off vs on",
        encryption,
    ),
]


async def bench(
    args: argparse.Namespace, data_dir: Path
) -> tuple[dict[str, Any], list[PhaseResult]]:
    """Runs every phase against one stack; returns the results document and the phases' results."""
    began = time.monotonic()
    document: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    # What the worker runs with: the flag, else its environment or default, as it reads them.
    document["config"]["worker_max_cached_workflows"] = (
        Settings().worker_max_cached_workflows if args.worker_cache is None else args.worker_cache
    )
    _say("Starting the stack (dev server, worker, API) in a temp dir ...")
    stack, published = await start_stack(data_dir, args.worker_cache, args.first_port)
    connections = 2 * max(args.virtual_workers, args.open_loop_workers)
    found: list[PhaseResult] = []
    try:
        client = await connect(stack.settings)
        async with HttpClient(stack.api_url, connections) as http:
            ctx = BenchContext(args, stack, http, client, published.to_snapshot())
            for phase in (p for p in PHASES if p.key in args.phases):
                _say(phase.title(args))
                result = await phase.run(ctx)
                document[result.key] = result.section()
                found.append(result)
    except BaseException:
        _say(stack.stack.log_tails())
        raise
    finally:
        stack.stop()
    document["wall_seconds"] = round(time.monotonic() - began, 1)
    document["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return document, found


def summarize(document: dict[str, Any], phases: list[PhaseResult]) -> list[Target]:
    """Prints every phase's figures and the targets; lifts the headline keys to the top."""
    targets: list[Target] = []
    for result in phases:
        _say()
        for line in result.report():
            _say(line)
        document.update(result.headline())
        targets += result.targets()
    document["targets"] = [{**asdict(t), "passed": t.passed} for t in targets]
    _say("\nTargets:")
    for target in targets:
        _say(target.line())
    return targets


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; exit status 0 even when targets fail (the figures are the output)."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        document, phases = asyncio.run(bench(args, Path(tmp)))
    summarize(document, phases)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    _say(f"\nWrote {args.output} ({document['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

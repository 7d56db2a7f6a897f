"""`python -m bench.run`: lifecycle load (facade vs SDK), idle scale and long sessions.

Starts a private embedded stack in a temp dir (never touches `.data/`), prints a
table with every target marked PASS or FAIL, and writes `bench/results/latest.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.bare import BareDriver
from bench.drivers import Driver, RestDriver, SdkDriver
from bench.encryption import encryption_cost
from bench.encryption import report_lines as encryption_report
from bench.engine_model import (
    AuditLagSampler,
    history_bytes_per_check,
    resume_after_pause,
    worst_p99,
)
from bench.idle import (
    Paused,
    build_long_session,
    create_paused,
    idle_user,
    measure_list,
    measure_resumes,
)
from bench.lifecycle import Side, side_by_side
from bench.report import Target, lifecycle_table, machine
from bench.stack import BenchStack, start_stack
from bench.stats import percentile
from devstack.answers import passing_answers
from engine.client import connect
from runtime.settings import Settings
from workflows.shared import SopSnapshot

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
# Seconds for the bare engine's worker process to start polling.
BARE_WORKER_START_SECONDS = 3.0
# Seconds to let the worker settle before reading its memory.
RSS_SETTLE_SECONDS = 2.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; defaults give the quick run of `make bench`."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    add = parser.add_argument
    add("--virtual-workers", type=int, default=20, help="concurrent virtual workers (20)")
    add("--duration", type=float, default=20.0, help="seconds of load per side (20)")
    add("--warmup", type=float, default=3.0, help="seconds of unrecorded load first (3)")
    add("--sessions", type=int, default=1000, help="paused sessions for idle scale (1000)")
    add("--list-samples", type=int, default=200, help="list calls timed (200)")
    add("--long-sessions", type=int, default=10, help="long sessions built (10)")
    add("--long-events", type=int, default=500, help="history events per long session (500)")
    add("--open-loop-workers", type=int, default=100, help="virtual workers of the open load")
    add("--open-loop-rate", type=float, default=25.0, help="operations/s of the open load (25)")
    add("--evicted-samples", type=int, default=20, help="short sessions resumed evicted (20)")
    add("--worker-cache", type=int, help="WORKER_MAX_CACHED_WORKFLOWS (product default)")
    add("--output", type=Path, default=RESULTS, help=f"results JSON ({RESULTS})")
    return parser.parse_args(argv)


def _say(text: str = "") -> None:
    print(text, flush=True)


async def _lifecycle(
    args: argparse.Namespace,
    stack: BenchStack,
    http: httpx.AsyncClient,
    client: Client,
    sop: SopSnapshot,
) -> dict[str, Any]:
    """Facade and SDK sides in A-B-B-A order, so drift on a shared machine hits both alike."""
    answers = passing_answers(sop)
    users = [f"vw-{i:03d}" for i in range(args.virtual_workers)]
    rest: list[Driver] = [RestDriver(http, stack.token(u)) for u in users]
    sdk: list[Driver] = [
        SdkDriver(client, stack.settings.temporal_task_queue, sop, u) for u in users
    ]
    cpu = stack.cpu_seconds
    await Side().run(rest, answers, args.warmup, cpu)
    await Side().run(sdk, answers, args.warmup / 2, cpu)
    _say("  first: facade, second: SDK")
    facade, bare = await side_by_side(rest, sdk, answers, args.duration, cpu, _say)
    f_stats, s_stats = facade.stats(), bare.stats()
    for line in lifecycle_table(f_stats, s_stats):
        _say(line)
    for name, side in (("facade", facade), ("sdk", bare)):
        for example in side.recorder.error_examples:
            _say(f"  error ({name}): {example}")
    cpu_per_op = {"facade": facade.cpu_ms_per_op(), "sdk": bare.cpu_ms_per_op()}
    for name, per_process in cpu_per_op.items():
        spent = ", ".join(f"{process} {ms:.2f}" for process, ms in per_process.items())
        _say(f"  CPU ms per operation ({name}): {spent}")
    f_all, s_all = f_stats["all"], s_stats["all"]
    return {
        "virtual_workers": args.virtual_workers,
        "seconds_per_side": args.duration,
        "facade": {k: asdict(v) for k, v in f_stats.items()},
        "sdk": {k: asdict(v) for k, v in s_stats.items()},
        "cpu_ms_per_op": cpu_per_op,
        "sessions_finished": {"facade": facade.sessions_finished, "sdk": bare.sessions_finished},
        "ops_per_s": f_all.ops_per_s,
        "sdk_ops_per_s": s_all.ops_per_s,
        "p99_ms": {k: v.p99_ms for k, v in f_stats.items()},
        "sdk_p99_ms": {k: v.p99_ms for k, v in s_stats.items()},
        "facade_sdk_throughput_ratio": f_all.ops_per_s / s_all.ops_per_s,
        "facade_sdk_p99_ratio": f_all.p99_ms / s_all.p99_ms,
        "facade_sdk_p99_ratio_by_op": {
            k: v.p99_ms / s_stats[k].p99_ms for k, v in f_stats.items() if k in s_stats
        },
    }


async def _idle_and_long(
    args: argparse.Namespace,
    stack: BenchStack,
    http: httpx.AsyncClient,
    client: Client,
    sop: SopSnapshot,
) -> dict[str, Any]:
    """Worker memory from 100 to N paused sessions, listing, then resumes after eviction."""
    task_queue = stack.settings.temporal_task_queue

    def sdk(user_id: str) -> SdkDriver:
        return SdkDriver(client, task_queue, sop, user_id)

    total = args.sessions
    # Measured on the worker that has just run the lifecycle load, as a worker in
    # service would be: its heap has already seen sessions come and go.
    rss = {"0": stack.worker_rss_mb()}
    paused: list[Paused] = []
    checkpoints = sorted({c for c in (100, 1000, 5000) if c < total} | {total})
    for checkpoint in checkpoints:
        created_started = time.monotonic()
        paused += await create_paused(sdk, range(len(paused), checkpoint), args.virtual_workers)
        _say(
            f"  {checkpoint} paused sessions present (+{time.monotonic() - created_started:.1f} s)"
        )
        await asyncio.sleep(RSS_SETTLE_SECONDS)
        rss[str(checkpoint)] = stack.worker_rss_mb()
    listing = await measure_list(http, stack.token(idle_user(0)), args.list_samples)
    longs = await asyncio.gather(
        *(
            build_long_session(client, sdk(f"long-{i:03d}"), args.long_events)
            for i in range(args.long_sessions)
        )
    )
    _say(f"  {len(longs)} long sessions of {min(e for _, e in longs)}+ history events built")
    groups = {
        "fresh": paused[: args.evicted_samples],
        "long": [Paused(f"long-{i:03d}", sid) for i, (sid, _) in enumerate(longs)],
    }
    resumes = await measure_resumes(stack, http, client, sdk("bench-warmup"), groups)
    fresh, long = resumes["fresh"], resumes["long"]
    first = str(checkpoints[0])
    return {
        "sessions": total,
        "worker_rss_mb": rss,
        "worker_rss_growth": rss[str(total)] / rss[first] - 1,
        "list_p50_ms": listing.p50_ms,
        "list_p99_ms": listing.p99_ms,
        "list_samples": listing.samples,
        "list_items_seen": listing.items_seen,
        "fresh_cached_resume_p50_ms": fresh.cached_p50,
        "fresh_evicted_resume_p50_ms": fresh.evicted_p50,
        "fresh_evicted_resume_ratio": fresh.evicted_p50 / fresh.cached_p50,
        "long_session_events": [e for _, e in longs],
        "long_cached_resume_p50_ms": long.cached_p50,
        "long_evicted_resume_p50_ms": long.evicted_p50,
        "evicted_resume_ratio": long.evicted_p50 / long.cached_p50,
        "long_vs_fresh_evicted_ratio": long.evicted_p50 / fresh.evicted_p50,
        "resume_samples_ms": {
            name: {"evicted": r.evicted_ms, "cached": r.cached_ms} for name, r in resumes.items()
        },
    }


async def _engine_model(
    args: argparse.Namespace,
    stack: BenchStack,
    http: httpx.AsyncClient,
    client: Client,
    sop: SopSnapshot,
) -> dict[str, Any]:
    """History per check, a resume right after a pause, an open load, the bare engine."""
    answers = passing_answers(sop)
    measurement = next(a for a in answers if a.value is not None)
    history = await history_bytes_per_check(
        client, SdkDriver(client, stack.settings.temporal_task_queue, sop, "history"), measurement
    )
    _say(
        f"  history bytes a check adds: {history['bytes_check_10']:.0f} at check 10, "
        f"{history['bytes_check_300']:.0f} at check 300"
    )
    pause = await resume_after_pause(RestDriver(http, stack.token("pauser")))
    _say(
        f"  resume p50 20-50 ms after a pause {pause['soon_p50_ms']:.1f} ms, "
        f"2 s after {pause['later_p50_ms']:.1f} ms"
    )
    open_workers: list[Driver] = [
        RestDriver(http, stack.token(f"ow-{i:03d}")) for i in range(args.open_loop_workers)
    ]
    open_side = Side()
    think = args.open_loop_workers / args.open_loop_rate
    await open_side.run(open_workers, answers, args.duration, stack.cpu_seconds, think)
    open_stats = open_side.stats()
    _say(
        f"  open load {open_stats['all'].ops_per_s:.1f} ops/s from {args.open_loop_workers} "
        f"workers: worst p99 {worst_p99(open_side):.1f} ms"
    )
    bare = await _sdk_against_bare_engine(args, stack, client, sop)
    return {
        "history": history,
        "resume_after_pause": pause,
        "open_loop": {k: asdict(v) for k, v in open_stats.items()},
        "open_loop_p99_ms": worst_p99(open_side),
        **bare,
    }


async def _sdk_against_bare_engine(
    args: argparse.Namespace, stack: BenchStack, client: Client, sop: SopSnapshot
) -> dict[str, Any]:
    """The product's SDK path against a trivial workflow on the same server, A-B-B-A."""
    bare_queue = "bench-bare-engine"
    bare_worker = subprocess.Popen(
        [sys.executable, "-m", "bench.bare", stack.settings.temporal_address, bare_queue]
    )
    try:
        await asyncio.sleep(BARE_WORKER_START_SECONDS)
        users = [f"be-{i:03d}" for i in range(args.virtual_workers)]
        answers = passing_answers(sop)
        product: list[Driver] = [
            SdkDriver(client, stack.settings.temporal_task_queue, sop, u) for u in users
        ]
        trivial: list[Driver] = [BareDriver(client, bare_queue, sop, u) for u in users]
        await Side().run(trivial, answers, args.warmup / 2, stack.cpu_seconds)
        sdk, engine = await side_by_side(
            product, trivial, answers, args.duration, stack.cpu_seconds
        )
    finally:
        bare_worker.terminate()
        bare_worker.wait()
    sdk_rate, engine_rate = sdk.stats()["all"].ops_per_s, engine.stats()["all"].ops_per_s
    _say(f"  SDK path {sdk_rate:.0f} ops/s, bare engine {engine_rate:.0f} ops/s")
    return {
        "sdk_ops_per_s": sdk_rate,
        "bare_engine_ops_per_s": engine_rate,
        "sdk_bare_engine_ratio": sdk_rate / engine_rate,
    }


def targets(args: argparse.Namespace, results: dict[str, Any]) -> list[Target]:
    """The issue's targets against this run's figures."""
    life, idle, model = results["lifecycle"], results["idle"], results["engine_model"]
    workers = args.virtual_workers
    at_workers = "" if workers == 20 else f"measured at {workers} virtual workers, target at 20"
    at_sessions = "" if args.sessions >= 10_000 else f"measured at {args.sessions}, target at 10000"
    found = [
        Target("facade/SDK throughput", life["facade_sdk_throughput_ratio"], 0.9, False, "×"),
        *(
            Target(f"{op} p99", life["p99_ms"].get(op, math.nan), 100, True, " ms", at_workers)
            for op in ("pause", "resume", "check")
        ),
        Target("facade session operations", life["ops_per_s"], 300, False, " ops/s"),
        Target("list one worker's sessions p99", idle["list_p99_ms"], 50, True, " ms", at_sessions),
        Target("evicted/cached resume, long session", idle["evicted_resume_ratio"], 2, True, "×"),
        Target("SDK path/bare engine throughput", model["sdk_bare_engine_ratio"], 0.7, False, "×"),
        Target("history bytes check 300/check 10", model["history"]["ratio_300_10"], 2, True, "×"),
        Target(
            f"worst p99 at an open {args.open_loop_rate:.0f} ops/s",
            model["open_loop_p99_ms"],
            100,
            True,
            " ms",
        ),
        Target(
            "resume 20-50 ms after a pause/2 s after",
            model["resume_after_pause"]["ratio"],
            2,
            True,
            "×",
        ),
        Target(
            f"evicted resume, {min(idle['long_session_events'])}-event session",
            idle["long_evicted_resume_p50_ms"],
            150,
            True,
            " ms",
        ),
        Target("audit lag p99 under lifecycle load", life["audit_lag_p99_ms"], 2000, True, " ms"),
        Target(
            f"worker RSS growth 100→{args.sessions}",
            idle["worker_rss_growth"] * 100,
            15,
            True,
            " %",
            at_sessions,
        ),
    ]
    return found


async def bench(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Runs every phase against one stack and returns the results document."""
    began = time.monotonic()
    results: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    # What the worker runs with: the flag, else its environment or default, as it reads them.
    results["config"]["worker_max_cached_workflows"] = (
        Settings().worker_max_cached_workflows if args.worker_cache is None else args.worker_cache
    )
    _say("Starting the stack (dev server, worker, API) in a temp dir ...")
    stack, published = await start_stack(data_dir, args.worker_cache)
    sop = published.to_snapshot()
    limits = httpx.Limits(max_connections=2 * args.virtual_workers)
    try:
        client = await connect(stack.settings)
        async with httpx.AsyncClient(base_url=stack.api_url, limits=limits, timeout=60) as http:
            _say(f"Lifecycle load: {args.virtual_workers} virtual workers, facade vs SDK")
            lag = AuditLagSampler(http, stack.token("audit-lag"), data_dir / "app.db", [])
            sampler = asyncio.create_task(lag.run(passing_answers(sop)))
            try:
                results["lifecycle"] = await _lifecycle(args, stack, http, client, sop)
            finally:
                sampler.cancel()
            results["lifecycle"]["audit_lag_p50_ms"] = percentile(lag.samples_ms, 50)
            results["lifecycle"]["audit_lag_p99_ms"] = percentile(lag.samples_ms, 99)
            results["lifecycle"]["audit_lag_samples"] = len(lag.samples_ms)
            _say("Engine model: history per check, pauses, open load, bare engine")
            results["engine_model"] = await _engine_model(args, stack, http, client, sop)
            _say(f"Idle scale: {args.sessions} paused sessions; long sessions")
            results["idle"] = await _idle_and_long(args, stack, http, client, sop)
    except BaseException:
        _say(stack.stack.log_tails())
        raise
    finally:
        stack.stop()
    _say("Encryption cost: the same lifecycle load with payload encryption off and on")
    (data_dir / "encryption").mkdir()
    results["encryption"] = await encryption_cost(
        data_dir / "encryption",
        virtual_workers=args.virtual_workers,
        seconds=args.duration,
        warmup=args.warmup,
        worker_cache=args.worker_cache,
        say=_say,
    )
    results["wall_seconds"] = round(time.monotonic() - began, 1)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def summarize(args: argparse.Namespace, results: dict[str, Any]) -> list[Target]:
    """Prints the idle figures, the ratios and the targets; lifts the headline keys to the top."""
    life, idle = results["lifecycle"], results["idle"]
    for key in (
        "ops_per_s",
        "p99_ms",
        "facade_sdk_throughput_ratio",
        "facade_sdk_p99_ratio",
    ):
        results[key] = life[key]
    for key in ("list_p99_ms", "evicted_resume_ratio", "worker_rss_mb"):
        results[key] = idle[key]
    model = results["engine_model"]
    results["sdk_bare_engine_ratio"] = model["sdk_bare_engine_ratio"]
    results["history_bytes_ratio_300_10"] = model["history"]["ratio_300_10"]
    results["open_loop_p99_ms"] = model["open_loop_p99_ms"]
    results["resume_after_pause_ratio"] = model["resume_after_pause"]["ratio"]
    results["evicted_resume_500_ms"] = idle["long_evicted_resume_p50_ms"]
    results["worker_rss_growth_pct"] = idle["worker_rss_growth"] * 100
    results["worker_rss_sessions"] = idle["sessions"]
    results["audit_lag_p99_ms"] = life["audit_lag_p99_ms"]
    results["encryption_cpu_ratio"] = results["encryption"]["encryption_cpu_ratio"]
    _say(
        f"Audit lag (2xx to row) under lifecycle load: p50 {life['audit_lag_p50_ms']:.0f} ms, "
        f"p99 {life['audit_lag_p99_ms']:.0f} ms ({life['audit_lag_samples']} samples)"
    )
    rss = ", ".join(f"{n}: {mb:.0f} MiB" for n, mb in idle["worker_rss_mb"].items())
    _say(
        f"\nRatios facade/SDK: throughput {life['facade_sdk_throughput_ratio']:.2f}×, "
        f"p99 {life['facade_sdk_p99_ratio']:.2f}× "
        f"(facade {life['ops_per_s']:.0f} ops/s, SDK {life['sdk_ops_per_s']:.0f} ops/s)"
    )
    _say(f"Worker RSS by paused sessions present: {rss}")
    _say(
        f"List one worker's active sessions ({idle['list_items_seen']} items, "
        f"{idle['sessions']} sessions present): p50 {idle['list_p50_ms']:.1f} ms, "
        f"p99 {idle['list_p99_ms']:.1f} ms"
    )
    _say(
        f"Resume p50, fresh session: cached {idle['fresh_cached_resume_p50_ms']:.1f} ms, "
        f"evicted {idle['fresh_evicted_resume_p50_ms']:.1f} ms"
    )
    _say(
        f"Resume p50, {min(idle['long_session_events'])}+ event session: "
        f"cached {idle['long_cached_resume_p50_ms']:.1f} ms, "
        f"evicted {idle['long_evicted_resume_p50_ms']:.1f} ms "
        f"({idle['long_vs_fresh_evicted_ratio']:.2f}× an evicted fresh one)"
    )
    _say("Payload encryption, the same load off and on:")
    for line in encryption_report(results["encryption"]):
        _say(line)
    found = targets(args, results)
    results["targets"] = [{**asdict(t), "passed": t.passed} for t in found]
    _say("\nTargets:")
    for target in found:
        _say(target.line())
    return found


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; exit status 0 even when targets fail (the figures are the output)."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        results = asyncio.run(bench(args, Path(tmp)))
    summarize(args, results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    _say(f"\nWrote {args.output} ({results['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

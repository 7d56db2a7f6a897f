"""What each phase of the benchmark measured, with its targets, as typed results.

Each phase's result is one dataclass: its figures, the section it writes into
`bench/results/latest.json` (`section`), the keys it lifts to the document's top
(`headline`), its targets and the lines it prints. Another phase (for example one
of `bench/`'s own modules) joins by returning an object of the `PhaseResult` shape.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol

from bench.engine_model import HistoryGrowth, PauseWindow
from bench.idle import ListResult, ResumeSamples
from bench.report import Target, cpu_line, kind_table
from bench.stats import OpStats, percentile

# The lifecycle targets are stated for this many virtual workers.
TARGET_VIRTUAL_WORKERS = 20
# The memory and list targets are stated for this many paused sessions.
TARGET_SESSIONS = 10_000
# Operation kinds whose p99 the lifecycle targets bound.
BOUNDED_KINDS = ("pause", "resume", "check")
# The open load's kinds as one side's name and the other's.
PRODUCT_SIDE = "rest"
BARE_SIDE = "bare"
# The side of the open load that sends the product's workflow its calls through the SDK.
SDK_SIDE = "sdk"


class PhaseResult(Protocol):
    """The shape every phase's result has."""

    key: ClassVar[str]

    def section(self) -> dict[str, Any]:
        """The phase's figures, as its section of the results document."""
        ...

    def headline(self) -> dict[str, Any]:
        """The keys this phase lifts to the top of the results document."""
        ...

    def targets(self) -> list[Target]:
        """Its figures against their targets."""
        ...

    def report(self) -> list[str]:
        """Lines for the printed summary."""
        ...


def _stats(stats: dict[str, OpStats]) -> dict[str, dict[str, Any]]:
    return {kind: asdict(s) for kind, s in stats.items()}


@dataclass
class LifecycleResult:
    """The closed lifecycle load through the facade against the SDK, and the audit lag beside it."""

    key: ClassVar[str] = "lifecycle"

    virtual_workers: int
    seconds_per_side: float
    facade: dict[str, OpStats]
    sdk: dict[str, OpStats]
    cpu_ms_per_op: dict[str, dict[str, float]]
    sessions_finished: dict[str, int]
    audit_lag_ms: list[float]
    audit_lag_bound_ms: float

    @property
    def throughput_ratio(self) -> float:
        """Facade operations a second over the SDK's."""
        return self.facade["all"].ops_per_s / self.sdk["all"].ops_per_s

    @property
    def audit_lag_p99_ms(self) -> float:
        """The audit lag's p99."""
        return percentile(self.audit_lag_ms, 99)

    def section(self) -> dict[str, Any]:
        """Per-kind stats of both sides, CPU per operation, ratios and the audit lag."""
        facade, sdk = self.facade, self.sdk
        return {
            "virtual_workers": self.virtual_workers,
            "seconds_per_side": self.seconds_per_side,
            "facade": _stats(facade),
            "sdk": _stats(sdk),
            "cpu_ms_per_op": self.cpu_ms_per_op,
            "sessions_finished": self.sessions_finished,
            "ops_per_s": facade["all"].ops_per_s,
            "sdk_ops_per_s": sdk["all"].ops_per_s,
            "p99_ms": {k: v.p99_ms for k, v in facade.items()},
            "sdk_p99_ms": {k: v.p99_ms for k, v in sdk.items()},
            "facade_sdk_throughput_ratio": self.throughput_ratio,
            "facade_sdk_p99_ratio": facade["all"].p99_ms / sdk["all"].p99_ms,
            "facade_sdk_p99_ratio_by_op": {
                k: v.p99_ms / sdk[k].p99_ms for k, v in facade.items() if k in sdk
            },
            "audit_lag_p50_ms": percentile(self.audit_lag_ms, 50),
            "audit_lag_p99_ms": self.audit_lag_p99_ms,
            "audit_lag_samples": len(self.audit_lag_ms),
            "audit_lag_bound_ms": self.audit_lag_bound_ms,
        }

    def headline(self) -> dict[str, Any]:
        """Throughput, p99 and their facade/SDK ratios, the audit lag's p99."""
        section = self.section()
        keys = ("ops_per_s", "p99_ms", "facade_sdk_throughput_ratio", "facade_sdk_p99_ratio")
        return {
            **{k: section[k] for k in keys},
            "audit_lag_p99_ms": self.audit_lag_p99_ms,
            "audit_lag_bound_ms": self.audit_lag_bound_ms,
        }

    def targets(self) -> list[Target]:
        """Facade/SDK throughput, the bounded kinds' p99, throughput, audit lag."""
        workers = self.virtual_workers
        note = (
            ""
            if workers == TARGET_VIRTUAL_WORKERS
            else f"measured at {workers} virtual workers, target at {TARGET_VIRTUAL_WORKERS}"
        )
        p99 = {k: v.p99_ms for k, v in self.facade.items()}
        return [
            Target("facade/SDK throughput", self.throughput_ratio, 0.9, False, "×"),
            *(
                Target(f"{kind} p99", p99.get(kind, math.nan), 100, True, " ms", note)
                for kind in BOUNDED_KINDS
            ),
            Target("facade session operations", self.facade["all"].ops_per_s, 300, False, " ops/s"),
            Target(
                f"audit lag p99 under load (0.8 × the stated {self.audit_lag_bound_ms:.0f} ms)",
                self.audit_lag_p99_ms,
                0.8 * self.audit_lag_bound_ms,
                True,
                " ms",
            ),
        ]

    def report(self) -> list[str]:
        """The per-kind table, CPU per operation, the ratios and the audit lag."""
        lines = kind_table({"facade": self.facade, "sdk": self.sdk})
        lines += [cpu_line(name, per_process) for name, per_process in self.cpu_ms_per_op.items()]
        facade, sdk = self.facade["all"], self.sdk["all"]
        lines += [
            f"Ratios facade/SDK: throughput {self.throughput_ratio:.2f}×, "
            f"p99 {facade.p99_ms / sdk.p99_ms:.2f}× "
            f"(facade {facade.ops_per_s:.0f} ops/s, SDK {sdk.ops_per_s:.0f} ops/s)",
            f"Audit lag (2xx to row) under lifecycle load: "
            f"p50 {percentile(self.audit_lag_ms, 50):.0f} ms, "
            f"p99 {self.audit_lag_p99_ms:.0f} ms ({len(self.audit_lag_ms)} samples)",
        ]
        return lines


@dataclass
class OpenLoadResult:
    """The same open load against the product through REST and against the bare engine."""

    workers: int
    rate: float
    seconds_per_side: float
    sides: dict[str, dict[str, OpStats]]
    cpu_ms_per_op: dict[str, dict[str, float]]

    def ratio(self, percentile_field: str) -> float:
        """The product's figure over the bare engine's, over all operations."""
        product = getattr(self.sides[PRODUCT_SIDE]["all"], percentile_field)
        bare = getattr(self.sides[BARE_SIDE]["all"], percentile_field)
        return float(product / bare)

    def keys(self) -> dict[str, Any]:
        """The open load's keys of the engine-model section."""
        product, bare = self.sides[PRODUCT_SIDE]["all"], self.sides[BARE_SIDE]["all"]
        return {
            "open_loop": _stats(self.sides[PRODUCT_SIDE]),
            "open_loop_sides": {name: _stats(stats) for name, stats in self.sides.items()},
            "open_loop_cpu_ms_per_op": self.cpu_ms_per_op,
            "open_loop_workers": self.workers,
            "open_loop_rate": self.rate,
            "open_loop_seconds_per_side": self.seconds_per_side,
            "open_loop_p50_ms": product.p50_ms,
            "open_loop_p99_ms": product.p99_ms,
            "open_loop_p50_bare_ms": bare.p50_ms,
            "open_loop_p99_bare_ms": bare.p99_ms,
            "open_loop_p50_ratio": self.ratio("p50_ms"),
            "open_loop_p99_ratio": self.ratio("p99_ms"),
        }

    def report(self) -> list[str]:
        """The per-kind table of every side, CPU per operation and the ratios."""
        rest = self.sides[PRODUCT_SIDE]["all"]
        lines = [
            f"Open load: {self.workers} virtual workers per side, "
            f"{self.rate:.0f} ops/s offered, {self.seconds_per_side:.0f} s per side "
            f"({rest.ops_per_s:.1f} ops/s measured through REST)",
            *kind_table(self.sides),
        ]
        lines += [cpu_line(name, per_process) for name, per_process in self.cpu_ms_per_op.items()]
        lines.append(
            f"Open load REST/bare engine: p50 {self.ratio('p50_ms'):.2f}×, "
            f"p99 {self.ratio('p99_ms'):.2f}×"
        )
        return lines


@dataclass
class EngineModelResult:
    """History per check, the window after a pause, the open load, SDK against the bare engine."""

    key: ClassVar[str] = "engine_model"

    history: HistoryGrowth
    resume_after_pause: PauseWindow
    open_load: OpenLoadResult
    sdk_ops_per_s: float
    bare_engine_ops_per_s: float
    # Each process's CPU per operation on the SDK side and on the bare engine's.
    sdk_bare_cpu_ms_per_op: dict[str, dict[str, float]]

    @property
    def sdk_bare_engine_ratio(self) -> float:
        """The product's workflow through the SDK over the bare workflow, operations a second."""
        return self.sdk_ops_per_s / self.bare_engine_ops_per_s

    def section(self) -> dict[str, Any]:
        """Every figure of the phase."""
        pause = self.resume_after_pause
        return {
            "history": {**asdict(self.history), "ratio_300_10": self.history.ratio_300_10},
            "resume_after_pause": {
                "soon_p50_ms": pause.soon_p50_ms,
                "later_p50_ms": pause.later_p50_ms,
                "ratio": pause.ratio,
                "samples": len(pause.soon_ms),
            },
            **self.open_load.keys(),
            "sdk_ops_per_s": self.sdk_ops_per_s,
            "bare_engine_ops_per_s": self.bare_engine_ops_per_s,
            "sdk_bare_engine_ratio": self.sdk_bare_engine_ratio,
            "sdk_bare_cpu_ms_per_op": self.sdk_bare_cpu_ms_per_op,
        }

    def headline(self) -> dict[str, Any]:
        """The engine model's ratios and the open load's p99."""
        keys = self.open_load.keys()
        return {
            "sdk_bare_engine_ratio": self.sdk_bare_engine_ratio,
            "history_bytes_ratio_300_10": self.history.ratio_300_10,
            **{
                k: keys[k]
                for k in (
                    "open_loop_p99_ms",
                    "open_loop_p99_bare_ms",
                    "open_loop_p99_ratio",
                    "open_loop_p50_ratio",
                )
            },
            "resume_after_pause_ratio": self.resume_after_pause.ratio,
        }

    def targets(self) -> list[Target]:
        """SDK/bare engine, history growth, the open load against the bare engine, pauses."""
        rate = f"{self.open_load.rate:.0f} ops/s"
        return [
            Target("SDK path/bare engine throughput", self.sdk_bare_engine_ratio, 0.7, False, "×"),
            Target("history bytes check 300/check 10", self.history.ratio_300_10, 2, True, "×"),
            Target(
                f"p99 of all operations at an open {rate}",
                self.open_load.sides[PRODUCT_SIDE]["all"].p99_ms,
                100,
                True,
                " ms",
            ),
            Target(
                f"open {rate}: p99 REST/bare engine", self.open_load.ratio("p99_ms"), 2, True, "×"
            ),
            Target(
                f"open {rate}: p50 REST/bare engine", self.open_load.ratio("p50_ms"), 1.5, True, "×"
            ),
            Target(
                "resume 20-50 ms after a pause/2 s after",
                self.resume_after_pause.ratio,
                2,
                True,
                "×",
            ),
        ]

    def report(self) -> list[str]:
        """History per check, the pause window, the open load, the bare engine."""
        pause = self.resume_after_pause
        return [
            f"History bytes a check adds: {self.history.bytes_check_10:.0f} at check 10, "
            f"{self.history.bytes_check_300:.0f} at check 300",
            f"Resume p50 20-50 ms after a pause {pause.soon_p50_ms:.1f} ms, "
            f"2 s after {pause.later_p50_ms:.1f} ms ({len(pause.soon_ms)} samples each)",
            *self.open_load.report(),
            f"SDK path {self.sdk_ops_per_s:.0f} ops/s, "
            f"bare engine {self.bare_engine_ops_per_s:.0f} ops/s",
            *(cpu_line(name, spent) for name, spent in self.sdk_bare_cpu_ms_per_op.items()),
        ]


@dataclass
class IdleResult:
    """Worker memory by paused sessions present, listing, resumes once evicted and cached."""

    key: ClassVar[str] = "idle"

    sessions: int
    worker_rss_mb: dict[str, float]
    worker_memory_mb: dict[str, dict[str, float]]
    listing: ListResult
    resumes: dict[str, ResumeSamples]
    long_session_events: list[int]

    @property
    def worker_rss_growth(self) -> float:
        """RSS growth from the first checkpoint (100 sessions) to the last, as a fraction."""
        checkpoints = [k for k in self.worker_rss_mb if k != "0"]
        return self.worker_rss_mb[checkpoints[-1]] / self.worker_rss_mb[checkpoints[0]] - 1

    def section(self) -> dict[str, Any]:
        """Every figure of the phase."""
        fresh, long = self.resumes["fresh"], self.resumes["long"]
        return {
            "sessions": self.sessions,
            "worker_rss_mb": self.worker_rss_mb,
            "worker_memory_mb": self.worker_memory_mb,
            "worker_rss_growth": self.worker_rss_growth,
            "list_p50_ms": self.listing.p50_ms,
            "list_p99_ms": self.listing.p99_ms,
            "list_samples": self.listing.samples,
            "list_items_seen": self.listing.items_seen,
            "fresh_cached_resume_p50_ms": fresh.cached_p50,
            "fresh_evicted_resume_p50_ms": fresh.evicted_p50,
            "fresh_evicted_resume_ratio": fresh.evicted_p50 / fresh.cached_p50,
            "long_session_events": self.long_session_events,
            "long_cached_resume_p50_ms": long.cached_p50,
            "long_evicted_resume_p50_ms": long.evicted_p50,
            "evicted_resume_ratio": long.evicted_p50 / long.cached_p50,
            "long_vs_fresh_evicted_ratio": long.evicted_p50 / fresh.evicted_p50,
            "resume_samples_ms": {
                name: {"evicted": r.evicted_ms, "cached": r.cached_ms}
                for name, r in self.resumes.items()
            },
        }

    def headline(self) -> dict[str, Any]:
        """Listing, eviction and memory keys."""
        return {
            "list_p99_ms": self.listing.p99_ms,
            "evicted_resume_ratio": self.section()["evicted_resume_ratio"],
            "worker_rss_mb": self.worker_rss_mb,
            "evicted_resume_500_ms": self.resumes["long"].evicted_p50,
            "worker_rss_growth_pct": self.worker_rss_growth * 100,
            "worker_rss_sessions": self.sessions,
        }

    def targets(self) -> list[Target]:
        """Listing p99, evicted against cached and absolute, memory growth."""
        note = (
            ""
            if self.sessions >= TARGET_SESSIONS
            else f"measured at {self.sessions}, target at {TARGET_SESSIONS}"
        )
        section = self.section()
        events = min(self.long_session_events)
        return [
            Target("list one worker's sessions p99", self.listing.p99_ms, 50, True, " ms", note),
            Target(
                "evicted/cached resume, long session", section["evicted_resume_ratio"], 2, True, "×"
            ),
            Target(
                f"evicted resume, {events}-event session",
                self.resumes["long"].evicted_p50,
                150,
                True,
                " ms",
            ),
            Target(
                f"worker RSS growth 100→{self.sessions}",
                self.worker_rss_growth * 100,
                15,
                True,
                " %",
                note,
            ),
        ]

    def report(self) -> list[str]:
        """Memory by checkpoint, listing and resume medians."""
        rss = ", ".join(f"{n}: {mb:.0f} MiB" for n, mb in self.worker_rss_mb.items())
        kinds = "; ".join(
            f"{n}: " + ", ".join(f"{kind} {mb:.0f}" for kind, mb in by_kind.items())
            for n, by_kind in self.worker_memory_mb.items()
        )
        section = self.section()
        events = min(self.long_session_events)
        return [
            f"Worker RSS by paused sessions present: {rss}",
            f"Worker resident MiB by mapping: {kinds}",
            f"List one worker's active sessions ({self.listing.items_seen} items, "
            f"{self.sessions} sessions present): p50 {self.listing.p50_ms:.1f} ms, "
            f"p99 {self.listing.p99_ms:.1f} ms",
            f"Resume p50, fresh session: cached {section['fresh_cached_resume_p50_ms']:.1f} ms, "
            f"evicted {section['fresh_evicted_resume_p50_ms']:.1f} ms",
            f"Resume p50, {events}+ event session: "
            f"cached {section['long_cached_resume_p50_ms']:.1f} ms, "
            f"evicted {section['long_evicted_resume_p50_ms']:.1f} ms "
            f"({section['long_vs_fresh_evicted_ratio']:.2f}× an evicted fresh one)",
        ]

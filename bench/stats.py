"""Latency samples and their summaries."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


def percentile(samples: list[float], p: float) -> float:
    """The nearest-rank percentile `p` (0-100) of `samples`; NaN when there are none."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class OpStats:
    """Count, throughput and latency percentiles (ms) of one kind of operation."""

    count: int
    errors: int
    ops_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, samples_ms: list[float], errors: int, seconds: float) -> OpStats:
        """Summarizes latencies measured over `seconds` of wall time."""
        return cls(
            count=len(samples_ms),
            errors=errors,
            ops_per_s=len(samples_ms) / seconds if seconds > 0 else math.nan,
            p50_ms=percentile(samples_ms, 50),
            p95_ms=percentile(samples_ms, 95),
            p99_ms=percentile(samples_ms, 99),
        )


@dataclass
class Recorder:
    """Collects the latency of each successful operation and the errors, per kind."""

    samples_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)

    async def timed(self, kind: str, operation: Awaitable[T]) -> T:
        """Awaits `operation`, recording its latency under `kind`, or its error."""
        started = time.perf_counter()
        try:
            result = await operation
        except Exception as err:
            self.errors[kind] += 1
            if len(self.error_examples) < 5:
                self.error_examples.append(f"{kind}: {type(err).__name__}: {err}"[:400])
            raise
        self.samples_ms[kind].append((time.perf_counter() - started) * 1000)
        return result

    def summary(self, seconds: float) -> dict[str, OpStats]:
        """Per-kind stats plus `all` over every operation."""
        kinds = sorted(set(self.samples_ms) | set(self.errors))
        stats = {k: OpStats.of(self.samples_ms[k], self.errors[k], seconds) for k in kinds}
        every = [s for k in kinds for s in self.samples_ms[k]]
        stats["all"] = OpStats.of(every, sum(self.errors.values()), seconds)
        return stats

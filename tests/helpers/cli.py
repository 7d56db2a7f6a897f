"""The Temporal CLI from the venv, used as an operator or a supervisor would use it."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

from devstack.stack import TEMPORAL_BIN


async def temporal(address: str, *args: str) -> str:
    """Runs `temporal <args>` against the server at `address`; returns its output."""
    done = await asyncio.to_thread(
        subprocess.run,
        [str(TEMPORAL_BIN), *args, "--address", address],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"temporal {' '.join(args)}: {done.stderr}"
    return done.stdout


async def describe(address: str, workflow_id: str) -> dict[str, Any]:
    """`temporal workflow describe` as JSON."""
    shown = await temporal(address, "workflow", "describe", "-w", workflow_id, "-o", "json")
    described: dict[str, Any] = json.loads(shown)
    return described

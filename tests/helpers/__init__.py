"""What many tests share: tokens, fresh user ids, the test SOP, a dev server, eventual checks."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from temporalio.testing import WorkflowEnvironment

from api.auth import mint_token
from devstack.stack import DEV_SERVER_SQLITE_ARGS, TEMPORAL_BIN
from engine.client import DATA_CONVERTER
from store.sops import SopDefinition, snapshot_of
from workflows.shared import SopSnapshot

TEST_SECRET = "test-secret-0123456789abcdef0123456789"
# Two steps: a required confirmation and measurement, then one required and one optional.
_TEST_SOP: dict[str, Any] = json.loads((Path(__file__).parent / "sop.json").read_text())

T = TypeVar("T")


def sop_definition(
    sop_id: str | None = None, title: str = "Lockout/Tagout: Test Press"
) -> dict[str, Any]:
    """The test SOP as a `POST /sops` body, under a fresh id unless one is given."""
    definition = copy.deepcopy(_TEST_SOP)
    definition.update(id=sop_id or f"test-sop-{uuid.uuid4().hex[:8]}", title=title)
    return definition


def sop_snapshot(sop_id: str, version: int, title: str) -> SopSnapshot:
    """The test SOP as the snapshot a session starts with."""
    return snapshot_of(SopDefinition.model_validate(sop_definition(sop_id, title)), version)


def bearer(sub: str, *roles: str, secret: str = TEST_SECRET) -> dict[str, str]:
    """Authorization header for a user with the given roles."""
    return {"Authorization": f"Bearer {mint_token(secret, sub, list(roles or ('worker',)))}"}


def new_user(prefix: str = "worker") -> str:
    """A fresh user id, so tests never see each other's sessions."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def assert_eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 10.0, interval: float = 0.05
) -> T:
    """Retries an async assertion until it passes (visibility, audit and restarts are eventual)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(interval)


async def start_dev_server(*extra_args: str) -> WorkflowEnvironment:
    """A dev server from the venv's `temporal` binary (offline), with the project's converter."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_BIN),
        data_converter=DATA_CONVERTER,
        dev_server_extra_args=[*DEV_SERVER_SQLITE_ARGS, *extra_args],
    )


def suggest_continue_as_new_after(events: int) -> list[str]:
    """Dev server arguments that make Temporal suggest continue-as-new early."""
    return ["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={events}"]

"""The whole stack as real processes, a REST load that retries like a careful client, and figures.

Each test gets its own Temporal dev server (SQLite file), worker, API process,
app database, ports and task queue, all in its own temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from devstack.answers import passing_answers
from devstack.processes import ROOT, ManagedProcess, free_port
from devstack.stack import Stack, build_stack
from runtime.settings import Settings
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from store.seed import LOTO_PRESS_7
from store.sops import snapshot_of
from tests.helpers import bearer as helpers_bearer
from workflows.shared import AuditEvent, AuditEventType

SECRET = "durability-secret-0123456789abcdef0123"
RPC_TIMEOUT_SECONDS = 3
ARTIFACT = ROOT / "test-artifacts" / "durability.json"
SOP_ID = LOTO_PRESS_7.id


def bearer(user: str) -> dict[str, str]:
    return helpers_bearer(user, "worker", secret=SECRET)


def fitting_answers() -> list[dict[str, Any]]:
    """One passing answer for every check of the SOP the load uses."""
    return [answer.body() for answer in passing_answers(snapshot_of(LOTO_PRESS_7, 1))]


@dataclass
class LiveStack:
    """The stack of real processes under test, and ways to look inside."""

    stack: Stack
    audit_log: AuditLog

    @property
    def temporal(self) -> ManagedProcess:
        assert self.stack.server is not None
        return self.stack.server

    @property
    def worker(self) -> ManagedProcess:
        return self.stack.worker

    @property
    def api(self) -> ManagedProcess:
        return self.stack.api

    @property
    def client(self) -> Client:
        return self.stack.temporal()

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.stack.api_url(), timeout=30)

    async def wait_for_temporal(self) -> None:
        await self.stack.wait_for_server()

    async def wait_until_ready(self, timeout: float = 60) -> None:
        await self.stack.wait_for_api(timeout=timeout)

    async def wait_for_worker(self, timeout: float = 30) -> None:
        await self.stack.wait_for_worker(timeout=timeout)

    async def start_session(self, http: httpx.AsyncClient, user: str) -> dict[str, Any]:
        response = await http.post(
            "/api/v1/sessions", json={"sop_id": SOP_ID}, headers=bearer(user)
        )
        assert response.status_code == 201, response.text
        session: dict[str, Any] = response.json()
        return session

    async def session(self, http: httpx.AsyncClient, user: str, session_id: str) -> dict[str, Any]:
        response = await http.get(f"/api/v1/sessions/{session_id}", headers=bearer(user))
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view

    async def settled_audit(
        self, expected_rows: dict[str, int], timeout: float = 75
    ) -> dict[str, list[AuditEvent]]:
        """Audit rows per session once the expected number landed, or what is there at the deadline.

        Rows are written by an activity after the update returned; an activity cut off
        by a killed worker is retried only when its 30 s start-to-close timeout expires.
        """
        deadline = time.monotonic() + timeout
        while True:
            rows = {sid: await self.audit_log.for_session(sid) for sid in expected_rows}
            settled = all(len(rows[sid]) >= n for sid, n in expected_rows.items())
            if settled or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.25)

    def log_tails(self) -> str:
        return self.stack.log_tails()


@asynccontextmanager
async def running_stack(data_dir: Path) -> AsyncIterator[LiveStack]:
    """Starts a fresh stack in `data_dir`; every process is gone when the block is left."""
    settings = Settings(
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_task_queue=f"durability-{uuid.uuid4().hex[:8]}",
        database_url=f"sqlite+aiosqlite:///{data_dir}/app.db",
        auth_jwt_secret=SECRET,
        api_port=free_port(),
        log_format="text",
        temporal_rpc_timeout_seconds=RPC_TIMEOUT_SECONDS,
        embedded=False,
    )
    stack = build_stack(settings, data_dir)
    engine: AsyncEngine = create_engine(settings.database_url)
    try:
        await stack.start()
        yield LiveStack(stack, AuditLog(create_transaction_factory(engine)))
    finally:
        stack.stop(graceful=False)
        await engine.dispose()


@dataclass
class CheckOperation:
    """One check a client wants recorded, identified by its Idempotency-Key (also its note)."""

    session_id: str
    user: str
    key: str
    body: dict[str, Any]
    attempts: int = 0
    accepted: bool = False


@dataclass
class CheckLoad:
    """Sessions recording checks concurrently; each operation is retried with its key until 2xx."""

    http: httpx.AsyncClient
    sessions: list[tuple[str, str]]  # (user, session id)
    operations: list[CheckOperation] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    deadline_seconds: float = 90

    async def run(self) -> None:
        await asyncio.gather(*(self._session_loop(user, sid) for user, sid in self.sessions))

    async def _session_loop(self, user: str, session_id: str) -> None:
        answers = fitting_answers()
        index = 0
        while not self.stop.is_set():
            # A session id ends in its unique part (readable ids begin with the worker's name).
            key = f"{session_id[-8:]}-{index}"
            operation = CheckOperation(
                session_id, user, key, {**answers[index % len(answers)], "note": key}
            )
            self.operations.append(operation)
            if not await self._until_accepted(operation):
                return
            index += 1

    async def _until_accepted(self, operation: CheckOperation) -> bool:
        deadline = time.monotonic() + self.deadline_seconds
        headers = {**bearer(operation.user), "Idempotency-Key": operation.key}
        while time.monotonic() < deadline:
            operation.attempts += 1
            try:
                response = await self.http.post(
                    f"/api/v1/sessions/{operation.session_id}/checks",
                    json=operation.body,
                    headers=headers,
                )
            except httpx.TransportError as err:
                self.refusals[type(err).__name__] += 1
                await asyncio.sleep(0.2)
                continue
            if response.status_code == 201:
                operation.accepted = True
                return True
            if response.status_code == 503 and _is_problem(response):
                self.refusals["503"] += 1
                await asyncio.sleep(0.2)
                continue
            self.unexpected.append(f"{operation.key}: {response.status_code} {response.text}")
            return False
        self.unexpected.append(f"{operation.key}: not accepted within {self.deadline_seconds}s")
        return False

    @property
    def accepted(self) -> list[CheckOperation]:
        return [op for op in self.operations if op.accepted]

    @property
    def retried(self) -> int:
        return sum(op.attempts - 1 for op in self.operations)


async def retried(
    send: Callable[[], Awaitable[httpx.Response]], timeout: float = 60
) -> tuple[httpx.Response, int]:
    """Sends until the answer is no longer a 503, as a careful client does; counts the 503s."""
    deadline = time.monotonic() + timeout
    unavailable = 0
    while (response := await send()).status_code == 503 and time.monotonic() < deadline:
        unavailable += 1
        await asyncio.sleep(0.5)
    return response, unavailable


def _is_problem(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type == "application/problem+json"


def count_checks(
    views: dict[str, dict[str, Any]], load: CheckLoad, audit: dict[str, list[AuditEvent]]
) -> dict[str, int]:
    """Figures: accepted operations against the load sessions' check records and audit rows."""
    expected = {op.key for op in load.accepted}
    found = Counter(check["note"] for view in views.values() for check in view["safety_checks"])
    audited = Counter(
        event.data.get("note")
        for sid in views
        for event in audit[sid]
        if event.type == AuditEventType.CHECK_RECORDED
    )
    return {
        "operations_accepted": len(expected),
        "attempts_retried": load.retried,
        "checks_found": sum(found.values()),
        "audit_check_rows": sum(audited.values()),
        "duplicates": sum(n - 1 for n in found.values() if n > 1),
        "audit_duplicates": sum(n - 1 for n in audited.values() if n > 1),
        "lost": len(expected - set(found)),
        "audit_lost": len(expected - set(audited)),
        "unrequested": len(set(found) - expected),
    }


def audit_gaps(audit: dict[str, list[AuditEvent]]) -> list[str]:
    """Sessions whose audit sequence numbers are not exactly 1, 2, ..., n."""
    return [
        sid
        for sid, events in audit.items()
        if [e.seq for e in events] != list(range(1, len(events) + 1))
    ]


def report(name: str, figures: dict[str, Any]) -> None:
    """Prints the figures and keeps them in test-artifacts/durability.json (even without -s)."""
    print(f"\n[durability] {name}: {json.dumps(figures)}")
    ARTIFACT.parent.mkdir(exist_ok=True)
    recorded = json.loads(ARTIFACT.read_text()) if ARTIFACT.exists() else {}
    recorded[name] = {**figures, "recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}
    ARTIFACT.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")

"""Scale-out on one machine: two API processes and two workers against one Temporal server.

A session started through API 1 gets checks through both APIs, is paused through
API 2, loses a worker to SIGKILL, is resumed through API 1 and gets more checks.
Every check must be in the session and in the audit trail, in order, exactly once.

The test is async and runs every blocking step in a thread: the suite's in-process
worker shares this event loop and must not stall meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth import mint_token
from devstack.processes import ManagedProcess, free_port
from devstack.stack import TEMPORAL_BIN, build_stack
from runtime.settings import Settings
from tests.helpers import assert_eventually

pytestmark = pytest.mark.slow

SECRET = "ops-multi-process-secret-0123456789abcdef"
SOP_ID = "loto-press-7"
CONFIRM_CHECKS = [
    "affected-notified",
    "energy-sources-reviewed",
    "normal-stop",
    "ram-secured",
    "breaker-off",
    "air-valve-locked",
]
CHECKS_PER_PHASE = 6
# Above the sticky-queue timeout (10 s) that a killed worker's cached session waits out.
RPC_TIMEOUT_SECONDS = 30


class Api:
    """One API process, spoken to as one user."""

    def __init__(self, port: int, token: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.client = httpx.AsyncClient(
            base_url=self.base,
            headers={"Authorization": f"Bearer {token}"},
            timeout=RPC_TIMEOUT_SECONDS + 10,
        )
        self.retries = 0

    async def post(self, path: str, body: Any = None, key: str | None = None) -> dict[str, Any]:
        """POSTs, expecting success; repeats on 503 (with the same idempotency key)."""
        headers = {"Idempotency-Key": key} if key else {}
        for _attempt in range(3):
            response = await self.client.post(f"/api/v1{path}", json=body, headers=headers)
            if response.status_code != 503:
                break
            self.retries += 1
        assert response.status_code in (200, 201), f"{path}: {response.text}"
        result: dict[str, Any] = response.json()
        return result

    async def get(self, path: str) -> Any:
        response = await self.client.get(path)
        assert response.status_code == 200, f"{path}: {response.text}"
        return response.json() if "json" in response.headers["content-type"] else response.text


def note(n: int) -> str:
    return f"check-{n:02d}"


async def worker_holding(
    session_id: str, address: str, workers: list[ManagedProcess]
) -> ManagedProcess:
    """The worker that ran the session's latest workflow task, so has it in its cache."""
    command = [str(TEMPORAL_BIN), "workflow", "show", "--workflow-id", session_id]
    command += ["--address", address, "--output", "json"]

    # A pause continues the session in a fresh run: wait for that run's first task.
    async def identities() -> list[str]:
        shown = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, check=True, timeout=30
        )
        found = [
            event["workflowTaskCompletedEventAttributes"]["identity"]
            for event in json.loads(shown.stdout)["events"]
            if "identity" in event.get("workflowTaskCompletedEventAttributes", {})
        ]
        assert found, f"no workflow task of {session_id} completed yet"
        return found

    pid = int((await assert_eventually(identities, timeout=10, interval=0.1))[-1].split("@")[0])
    return next(w for w in workers if w.pid == pid)


def api_for(apis: list[Api], n: int) -> Api:
    """API 1 for odd check numbers, API 2 for even ones."""
    return apis[0] if n % 2 else apis[1]


async def record_checks(apis: list[Api], session_id: str, numbers: range) -> None:
    """Records checks through both APIs in turn."""
    for n in numbers:
        api = api_for(apis, n)
        body = {"check_id": CONFIRM_CHECKS[n % len(CONFIRM_CHECKS)], "passed": True}
        await api.post(f"/sessions/{session_id}/checks", {**body, "note": note(n)}, key=note(n))


async def audit_rows(
    api: Api, session_id: str, expected: int, timeout: float
) -> list[dict[str, Any]]:
    """The session's audit events once `expected` have landed (an activity writes them)."""

    async def landed() -> list[dict[str, Any]]:
        audit = await api.get(f"/api/v1/sessions/{session_id}/audit")
        rows: list[dict[str, Any]] = audit["items"]
        assert len(rows) >= expected, f"{expected} audit events of {session_id}"
        return rows

    return await assert_eventually(landed, timeout)


async def test_two_apis_and_two_workers_keep_every_check_once_in_order(tmp_path: Path) -> None:
    metrics_ports = [free_port(), free_port()]
    api_ports = [free_port(), free_port()]
    settings = Settings(
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_task_queue=f"work-sessions-ops-{uuid.uuid4().hex[:8]}",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/app.db",
        auth_jwt_secret=SECRET,
        log_format="json",
        temporal_rpc_timeout_seconds=RPC_TIMEOUT_SECONDS,
        embedded=False,
    )
    worker = f"field-worker-{uuid.uuid4().hex[:6]}"
    token = mint_token(SECRET, worker, ["worker"])
    stack = build_stack(settings, tmp_path, api_ports=api_ports, worker_metrics_ports=metrics_ports)
    workers = stack.workers
    apis: list[Api] = []
    try:
        await stack.start()
        apis += [Api(port, token) for port in api_ports]

        session = await apis[0].post("/sessions", {"sop_id": SOP_ID}, key="ops-session")
        session_id = session["id"]
        await record_checks(apis, session_id, range(1, CHECKS_PER_PHASE + 1))
        paused = await apis[1].post(f"/sessions/{session_id}/pause", {"reason": "shift change"})
        assert paused["status"] == "PAUSED"
        # Kill only once the pause's audit event is written: no activity is cut off. The
        # victim is the worker holding the session, so the resume must fail over.
        await audit_rows(apis[0], session_id, 1 + CHECKS_PER_PHASE + 1, timeout=20)
        victim = await worker_holding(session_id, settings.temporal_address, workers)
        await asyncio.to_thread(victim.kill)
        survivor = workers[1] if victim is workers[0] else workers[0]

        started = time.monotonic()
        assert (await apis[0].post(f"/sessions/{session_id}/resume"))["status"] == "IN_PROGRESS"
        resume_seconds = time.monotonic() - started
        total = 2 * CHECKS_PER_PHASE
        await record_checks(apis, session_id, range(CHECKS_PER_PHASE + 1, total + 1))
        # The same check again through the other API: answered, not recorded twice.
        last = {"check_id": CONFIRM_CHECKS[total % len(CONFIRM_CHECKS)], "passed": True}
        other = apis[1] if api_for(apis, total) is apis[0] else apis[0]
        repeated = await other.post(
            f"/sessions/{session_id}/checks", {**last, "note": note(total)}, key=note(total)
        )
        assert len(repeated["safety_checks"]) == total

        rows = await audit_rows(apis[0], session_id, 1 + total + 2, timeout=30)
        view = await apis[1].get(f"/api/v1/sessions/{session_id}")
        sent = [note(n) for n in range(1, total + 1)]
        in_session = [c["note"] for c in view["safety_checks"]]
        audited = [r["data"]["note"] for r in rows if r["type"] == "check_recorded"]
        duplicates = len(audited) - len(set(audited))
        lost = len(set(sent) - set(audited))
        print(
            f"\nchecks sent {len(sent)}, in session {len(in_session)}, "
            f"found in audit {len(audited)}, audit rows {len(rows)}, "
            f"duplicates {duplicates}, lost {lost}; {victim.name} killed, resume took "
            f"{resume_seconds:.1f}s; 503 retries {sum(api.retries for api in apis)}"
        )

        assert in_session == sent
        assert [c["seq"] for c in view["safety_checks"]] == list(range(1, total + 1))
        assert audited == sent and duplicates == 0 and lost == 0
        assert [r["seq"] for r in rows] == sorted({r["seq"] for r in rows})
        types = [r["type"] for r in rows]
        assert types[0] == "session_started"
        assert types.index("session_paused") == 1 + CHECKS_PER_PHASE
        assert types.index("session_resumed") == 2 + CHECKS_PER_PHASE
        assert view["status"] == "IN_PROGRESS"

        survivor_port = metrics_ports[workers.index(survivor)]
        async with httpx.AsyncClient(timeout=5) as plain:
            worker_metrics = (await plain.get(f"http://127.0.0.1:{survivor_port}/metrics")).text
        assert "temporal_" in worker_metrics, "the surviving worker exposes SDK metrics"
        # The audit lag is in seconds, bucketed around its bound of a few seconds.
        lag_buckets = [
            line for line in worker_metrics.splitlines() if "work_session_audit_lag_bucket" in line
        ]
        assert any('le="1.5"' in line for line in lag_buckets), lag_buckets
        assert "work_sessions_started_total 1.0" in await apis[0].get("/metrics")
        paused_metric = 'work_session_transitions_total{type="session_paused"} 1.0'
        assert paused_metric in await apis[1].get("/metrics")
        for process in stack.processes[1:]:
            assert process.log_path is not None
            log = process.log_path.read_text(errors="replace")
            assert token not in log, f"{process.name} logged the bearer token"
        access = [
            json.loads(line)
            for line in (tmp_path / "api-2.log").read_text().splitlines()
            if line.startswith("{") and '"api.access"' in line
        ]
        assert any(e.get("session_id") == session_id and e["request_id"] for e in access)
    finally:
        for api in apis:
            await api.client.aclose()
        await asyncio.to_thread(stack.stop)

"""Problem codes: one enum, and no engine condition ever answered as a client error."""

from __future__ import annotations

import socket
import sqlite3
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import make_url
from temporalio.api.workflowservice.v1 import (
    PauseWorkflowExecutionRequest,
    UnpauseWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from api.engine_errors import engine_problems, refusal
from api.errors import ProblemCode, ProblemError
from engine.client import Connection, connect
from runtime.settings import Settings
from tests.helpers import bearer, new_user
from tests.helpers.api import act, new_session, publish_sop

DESIGN_CODES = {
    "invalid_transition",
    "session_not_found",
    "sop_not_found",
    "checks_incomplete",
    "unknown_check",
    "idempotency_key_reused",
}


def test_the_contract_codes_are_all_there_with_their_statuses() -> None:
    assert DESIGN_CODES <= {code.value for code in ProblemCode}
    assert ProblemCode.INVALID_TRANSITION.status == 409
    assert ProblemCode.SESSION_NOT_FOUND.status == 404
    assert ProblemCode.UNKNOWN_CHECK.status == 422
    assert len({code.problem_title for code in ProblemCode}) == len(ProblemCode)


def test_an_update_failure_of_an_unknown_type_is_no_client_error() -> None:
    engine_made = WorkflowUpdateFailedError(ApplicationError("rejected", type="UnprocessedUpdate"))
    domain_made = WorkflowUpdateFailedError(
        ApplicationError("no", {"status": "PAUSED"}, type="invalid_transition")
    )

    assert refusal(engine_made).code is ProblemCode.TEMPORAL_UNAVAILABLE
    refused = refusal(domain_made)
    assert refused.code is ProblemCode.INVALID_TRANSITION
    assert refused.extra == {"status": "PAUSED"}


async def test_only_a_client_that_never_reached_temporal_counts_as_unreachable(
    temporal_client: Client,
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    never = Connection(await connect(Settings(temporal_address=address), lazy=True))
    reached = Connection(temporal_client)

    with pytest.raises(ProblemError) as unreachable, engine_problems():
        await never.reach(timedelta(seconds=2))
    assert await reached.reach(timedelta(seconds=2)) is temporal_client
    with pytest.raises(RuntimeError, match="a fault of ours"), engine_problems():
        raise RuntimeError("a fault of ours")

    assert unreachable.value.code is ProblemCode.TEMPORAL_UNAVAILABLE


async def test_a_session_an_operator_paused_in_temporal_answers_session_suspended(
    api: httpx.AsyncClient, temporal_client: Client, settings: Settings
) -> None:
    worker, session = await new_session(api)
    service = temporal_client.workflow_service
    operator = {
        "namespace": settings.temporal_namespace,
        "workflow_id": session["id"],
        "reason": "operator",
    }
    await service.pause_workflow_execution(
        PauseWorkflowExecutionRequest(**operator, request_id=str(uuid.uuid4()))
    )
    try:
        read = await api.get(f"/api/v1/sessions/{session['id']}", headers=bearer(worker))
        assert read.status_code == 409, read.text
        assert read.json()["code"] == "session_suspended"
    finally:
        await service.unpause_workflow_execution(
            UnpauseWorkflowExecutionRequest(**operator, request_id=str(uuid.uuid4()))
        )
    assert (await act(api, worker, session["id"], "pause")).status_code == 200


async def test_a_start_while_the_app_database_is_locked_answers_503_and_the_retry_starts_it(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    sop = await publish_sop(api)
    worker = new_user()
    key = {"Idempotency-Key": f"locked-{uuid.uuid4().hex}", **bearer(worker)}
    database = make_url(settings.database_url).database
    assert database is not None
    # Waits its turn for the write lock while the suite's worker writes audit batches.
    holder = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        # Another process holding SQLite's write lock past the API's busy timeout.
        holder.execute("BEGIN IMMEDIATE")
        locked = await api.post("/api/v1/sessions", json={"sop_id": sop["id"]}, headers=key)
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert locked.status_code == 503, locked.text
    assert locked.json()["code"] == "database_unavailable"
    assert locked.headers["Retry-After"] == "1"
    retried = await api.post("/api/v1/sessions", json={"sop_id": sop["id"]}, headers=key)
    assert retried.status_code == 201, retried.text

"""Starting a session workflow: the one way the API, the tests and the bench do it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from workflows import search_attributes as sa
from workflows.domain import WorkSession
from workflows.shared import SUMMARY_MEMO_KEY, SessionView, SopSnapshot, StartSessionInput
from workflows.work_session import WorkSessionWorkflow


async def start_session_workflow(
    client: Client,
    *,
    session_id: str,
    worker_id: str,
    sop: SopSnapshot,
    task_queue: str,
    worker_name: str | None = None,
    rpc_timeout: timedelta | None = None,
    paused_run_after: timedelta | None = None,
) -> SessionView:
    """Starts the workflow with its search attributes, list memo and Web UI summary set.

    Returns the session as the workflow holds it: the workflow builds its state
    with the same domain code from the same inputs, so no query is needed.
    Raises `WorkflowAlreadyStartedError` if the session id was used before.
    """
    now = datetime.now(UTC)
    session, _ = WorkSession.start(session_id, worker_id, sop, now, worker_name)
    summary = session.summary()
    await client.start_workflow(
        WorkSessionWorkflow.run,
        StartSessionInput(
            session_id=session_id,
            worker_id=worker_id,
            sop=sop,
            started_at=now,
            worker_name=worker_name,
            paused_run_after_seconds=(
                None if paused_run_after is None else paused_run_after.total_seconds()
            ),
        ),
        id=session_id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.WORKER_ID, worker_id),
                SearchAttributePair(sa.SESSION_STATUS, summary.status.value),
                SearchAttributePair(sa.SOP_ID, sop.id),
                SearchAttributePair(sa.SOP_TITLE, sop.title),
                SearchAttributePair(sa.FAILED_CHECKS, 0),
            ]
        ),
        memo={SUMMARY_MEMO_KEY: summary},
        static_summary=f"{sop.title} · worker {worker_id}",
        static_details=f"SOP **{sop.title}** ({sop.id} v{sop.version}) run by worker `{worker_id}`",
        rpc_timeout=rpc_timeout,
    )
    return session.view()

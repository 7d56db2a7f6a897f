"""Finding sessions in Temporal's visibility: the one place its query is written."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client

from workflows import search_attributes as sa
from workflows.domain import ACTIVE_STATUSES
from workflows.shared import SUMMARY_MEMO_KEY, SessionStatus, SessionSummary
from workflows.work_session import WorkSessionWorkflow

# What a value in a visibility query may hold: ids and statuses, never a quote or a backslash.
_LITERAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:|+-]{0,127}$")


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions a list or a count wants; no status means the active ones."""

    statuses: Sequence[SessionStatus] = ()
    worker_id: str | None = None
    sop_id: str | None = None
    has_failed_checks: bool | None = None
    started_since: datetime | None = None
    # Closed sessions keep their last status: a count of what runs now says so.
    running_only: bool = False


def _literal(value: str) -> str:
    if not _LITERAL.fullmatch(value):
        raise ValueError(f"not a value a visibility query may hold: {value!r}")
    return f"'{value}'"


def visibility_query(wanted: SessionFilter) -> str:
    """The visibility query for the sessions a filter wants.

    Earlier runs of a session that continued as new are not sessions of their own,
    and keep their last search attribute values: they are always left out.
    """
    clauses = [f"WorkflowType = '{WorkSessionWorkflow.__name__}'"]
    if wanted.running_only:
        clauses.append("ExecutionStatus = 'Running'")
    else:
        clauses.append("ExecutionStatus != 'ContinuedAsNew'")
    if wanted.worker_id is not None:
        clauses.append(f"{sa.WORKER_ID.name} = {_literal(wanted.worker_id)}")
    if wanted.sop_id is not None:
        clauses.append(f"{sa.SOP_ID.name} = {_literal(wanted.sop_id)}")
    if wanted.has_failed_checks is not None:
        clauses.append(f"{sa.FAILED_CHECKS.name} {'>' if wanted.has_failed_checks else '='} 0")
    if wanted.started_since is not None:
        clauses.append(f"StartTime >= '{wanted.started_since.astimezone(UTC).isoformat()}'")
    statuses = ", ".join(_literal(s.value) for s in wanted.statuses or ACTIVE_STATUSES)
    clauses.append(f"{sa.SESSION_STATUS.name} IN ({statuses})")
    return " AND ".join(clauses)


async def list_summaries(
    client: Client, query: str, page_size: int, page_token: bytes, timeout: timedelta
) -> tuple[list[SessionSummary], bytes]:
    """One page of sessions from visibility, with summaries from their memo, and the next token."""
    response = await client.workflow_service.list_workflow_executions(
        ListWorkflowExecutionsRequest(
            namespace=client.namespace,
            page_size=page_size,
            next_page_token=page_token,
            query=query,
        ),
        retry=True,
        timeout=timeout,
    )
    summaries: list[SessionSummary] = []
    for execution in response.executions:
        payload = execution.memo.fields.get(SUMMARY_MEMO_KEY)
        if payload is not None:
            decoded = await client.data_converter.decode([payload], [SessionSummary])
            summaries.append(decoded[0])
    return summaries, response.next_page_token

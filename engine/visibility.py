"""Finding sessions in Temporal's visibility: the one place its queries are written."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client

from engine.history import temporal_ending
from workflows import search_attributes as sa
from workflows.domain import ACTIVE_STATUSES, ended_in_temporal
from workflows.shared import (
    SUMMARY_MEMO_KEY,
    SessionStatus,
    SessionSummary,
    SessionView,
    TemporalClosure,
    TemporalEnding,
)
from workflows.work_session import WorkSessionWorkflow

# Executions Temporal's own tools closed (terminate, timeout, failure, a cancellation
# before cancellations became aborts): the session they hold has ended, whatever
# their last SessionStatus says.
ENDED_IN_TEMPORAL = ("Terminated", "Canceled", "TimedOut", "Failed")
# A run that continued as new is a past run of a session, not a session of its own.
_PAST_RUN = "ContinuedAsNew"


def _listed(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def ended_in_temporal_clause() -> str:
    """Sessions still active by their last status whose workflow Temporal's tools closed."""
    return (
        f"{sa.SESSION_STATUS.name} IN ({_listed([s.value for s in ACTIVE_STATUSES])}) "
        f"AND ExecutionStatus IN ({_listed(ENDED_IN_TEMPORAL)})"
    )


def session_status_clause(statuses: Sequence[SessionStatus]) -> str:
    """Sessions in any of these statuses as the API shows them.

    An active session whose workflow was closed in Temporal is aborted, not active.
    """
    active = [s.value for s in statuses if s in ACTIVE_STATUSES]
    ended = [s.value for s in statuses if s not in ACTIVE_STATUSES]
    clauses = []
    if active:
        clauses.append(
            f"({sa.SESSION_STATUS.name} IN ({_listed(active)}) "
            f"AND ExecutionStatus NOT IN ({_listed([_PAST_RUN, *ENDED_IN_TEMPORAL])}))"
        )
    if ended:
        clauses.append(
            f"({sa.SESSION_STATUS.name} IN ({_listed(ended)}) AND ExecutionStatus != '{_PAST_RUN}')"
        )
    if SessionStatus.ABORTED in statuses:
        clauses.append(f"({ended_in_temporal_clause()})")
    return f"({' OR '.join(clauses)})"


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
    """The visibility query for the sessions a filter wants, as the API shows them."""
    clauses = [f"WorkflowType = '{WorkSessionWorkflow.__name__}'"]
    if wanted.running_only:
        clauses.append("ExecutionStatus = 'Running'")
    if wanted.worker_id is not None:
        clauses.append(f"{sa.WORKER_ID.name} = {_literal(wanted.worker_id)}")
    if wanted.sop_id is not None:
        clauses.append(f"{sa.SOP_ID.name} = {_literal(wanted.sop_id)}")
    if wanted.has_failed_checks is not None:
        clauses.append(f"{sa.FAILED_CHECKS.name} {'>' if wanted.has_failed_checks else '='} 0")
    if wanted.started_since is not None:
        clauses.append(f"StartTime >= '{wanted.started_since.astimezone(UTC).isoformat()}'")
    clauses.append(session_status_clause(wanted.statuses or ACTIVE_STATUSES))
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
            summaries.append(await _as_shown(client, decoded[0], execution))
    return summaries, response.next_page_token


# How visibility names the executions Temporal's tools closed without the workflow's consent.
_CLOSURE_OF = {
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED: TemporalClosure.TERMINATED,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED: TemporalClosure.CANCELLED,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT: TemporalClosure.TIMED_OUT,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED: TemporalClosure.FAILED,
}


async def _as_shown(
    client: Client, summary: SessionSummary, execution: WorkflowExecutionInfo
) -> SessionSummary:
    """A list item as the session stands: aborted if Temporal's tools closed its workflow."""
    closure = _CLOSURE_OF.get(execution.status)
    if closure is None:
        return summary
    # Rare, and the same words as the session's own page: who ended it and why.
    workflow_id = execution.execution.workflow_id
    ending = await temporal_ending(client, client.namespace, workflow_id) or TemporalEnding(
        closure, execution.close_time.ToDatetime(tzinfo=UTC)
    )
    view = SessionView(summary=summary, safety_checks=[], history=[])
    return ended_in_temporal(view, ending)[0].summary

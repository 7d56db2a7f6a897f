"""Visibility clauses that find sessions by status, wherever their workflow stands."""

from __future__ import annotations

from collections.abc import Sequence

from workflows import search_attributes as sa
from workflows.domain import ACTIVE_STATUSES
from workflows.shared import SessionStatus

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

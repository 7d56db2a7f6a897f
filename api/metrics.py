"""Prometheus metrics of the API process, served at `/metrics`.

Each API process counts for itself (one process per container or replica);
Prometheus scrapes every replica and sums. Session counters are derived from the
route and status of answered requests; a recorded check's result is counted by
its route, the one place that sees it. The session gauges come from Temporal
visibility and read the same on every replica: aggregate them with `max`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from temporalio.client import Client, RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from engine.client import Connection, NotConnected
from engine.visibility import SessionFilter, visibility_query
from workflows.domain import ACTIVE_STATUSES
from workflows.shared import CheckRecord

log = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"

REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PROBLEMS = Counter(
    "http_problems",
    "Problem responses, by method, route template and problem code.",
    ["method", "route", "code"],
)
SESSIONS_STARTED = Counter(
    "work_sessions_started",
    "Sessions started (201 answers to POST /api/v1/sessions, idempotent repeats included).",
)
TRANSITIONS = Counter(
    "work_session_transitions",
    "Accepted session changes, by the audit event type they produce.",
    ["type"],
)
CHECKS_RECORDED = Counter(
    "work_session_checks_recorded",
    "Check answers recorded, by result (passed or failed), idempotent repeats included.",
    ["result"],
)
SESSIONS = Gauge(
    "work_sessions",
    "Sessions running in Temporal, by status, from visibility counts a little behind.",
    ["status"],
)

_SESSIONS = "/api/v1/sessions"
_TRANSITION_BY_ROUTE = {
    f"{_SESSIONS}/{{session_id}}/pause": "session_paused",
    f"{_SESSIONS}/{{session_id}}/resume": "session_resumed",
    f"{_SESSIONS}/{{session_id}}/abort": "session_aborted",
    f"{_SESSIONS}/{{session_id}}/complete": "session_completed",
    f"{_SESSIONS}/{{session_id}}/checks": "check_recorded",
}

router = APIRouter(tags=["operations"])


def observe_request(
    method: str, route: str, status: int, problem_code: str | None, seconds: float
) -> None:
    """Counts one answered request and, for a successful session command, its session event."""
    labels = {"method": method, "route": route, "status": str(status)}
    REQUESTS.labels(**labels).inc()
    REQUEST_SECONDS.labels(**labels).observe(seconds)
    if problem_code is not None:
        PROBLEMS.labels(method=method, route=route, code=problem_code).inc()
    if method != "POST" or not 200 <= status < 300:
        return
    if route == _SESSIONS:
        SESSIONS_STARTED.inc()
    elif route in _TRANSITION_BY_ROUTE:
        TRANSITIONS.labels(type=_TRANSITION_BY_ROUTE[route]).inc()


def observe_check(record: CheckRecord) -> None:
    """Counts one recorded check answer by its result."""
    CHECKS_RECORDED.labels(result="passed" if record.passed else "failed").inc()


async def refresh_session_gauges(client: Client, rpc_timeout: timedelta) -> None:
    """Sets the session gauges from one visibility count per active status."""
    for status in ACTIVE_STATUSES:
        query = visibility_query(SessionFilter(statuses=(status,), running_only=True))
        counted = await client.count_workflows(query, rpc_timeout=rpc_timeout)
        SESSIONS.labels(status=status.value).set(counted.count)


async def keep_session_gauges_fresh(
    client: Client, interval: timedelta, rpc_timeout: timedelta
) -> None:
    """Refreshes the session gauges every `interval` until cancelled, riding out outages."""
    connection = Connection(client)
    while True:
        try:
            await refresh_session_gauges(await connection.reach(rpc_timeout), rpc_timeout)
        except (RPCError, RPCTimeoutOrCancelledError, NotConnected) as err:
            log.warning("session gauges not refreshed: %s", err)
        await asyncio.sleep(interval.total_seconds())


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Serves the process's metrics in the Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

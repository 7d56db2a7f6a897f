"""Prometheus metrics of the API process, served at `/metrics`.

Each API process counts for itself (one process per container or replica);
Prometheus scrapes every replica and sums. Session counters are derived from the
route and status of answered requests, so the routes need no metrics code.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

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
SESSIONS_STARTED = Counter(
    "work_sessions_started",
    "Sessions started (201 answers to POST /api/v1/sessions, idempotent repeats included).",
)
TRANSITIONS = Counter(
    "work_session_transitions",
    "Accepted session changes, by the audit event type they produce.",
    ["type"],
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


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Counts one answered request and, for a successful session command, its session event."""
    labels = {"method": method, "route": route, "status": str(status)}
    REQUESTS.labels(**labels).inc()
    REQUEST_SECONDS.labels(**labels).observe(seconds)
    if method != "POST" or not 200 <= status < 300:
        return
    if route == _SESSIONS:
        SESSIONS_STARTED.inc()
    elif route in _TRANSITION_BY_ROUTE:
        TRANSITIONS.labels(type=_TRANSITION_BY_ROUTE[route]).inc()


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Serves the process's metrics in the Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

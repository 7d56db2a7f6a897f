"""Around every HTTP request: a request id, log context, a JSON access log line, metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from runtime.logs import bind_log_context, reset_log_context, start_log_context

REQUEST_ID_HEADER = "X-Request-ID"
# An id from a proxy in front is kept only if it is short and plain.
_INCOMING_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SESSION_PATH = re.compile(r"^/api/v1/sessions/([A-Za-z0-9][A-Za-z0-9._:-]{0,127})(?:/|$)")

# Probes and scrapes arrive every few seconds; their lines would drown the rest.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

access_log = logging.getLogger("api.access")


def _request_id(headers: Headers) -> str:
    incoming = headers.get(REQUEST_ID_HEADER)
    if incoming and _INCOMING_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    """The matched route's path template, so metric labels stay few (no ids in them)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else metrics.UNMATCHED_ROUTE


class RequestObservability:
    """Gives each request an id (echoed in `X-Request-ID`), logs it once and counts it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        request_id = _request_id(headers)
        token = start_log_context(request_id=request_id)
        session = _SESSION_PATH.match(scope["path"])
        if session:
            bind_log_context(session_id=session.group(1))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            _observe(scope, status, started)
            # The context stays bound: the outermost error handler's log line, written
            # after this, still names the request.
            raise
        _observe(scope, status, started)
        reset_log_context(token)


def _observe(scope: Scope, status: int, started: float) -> None:
    seconds = time.perf_counter() - started
    route = _route_template(scope)
    metrics.observe_request(scope["method"], route, status, seconds)
    access_log.log(
        logging.DEBUG if route in _QUIET_ROUTES else logging.INFO,
        "%s %s %s",
        scope["method"],
        route,
        status,
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
        },
    )


def install_observability(app: FastAPI) -> None:
    """Adds request ids, the access log and request metrics, and serves `/metrics`."""
    app.add_middleware(RequestObservability)
    app.include_router(metrics.router)

"""Around every HTTP request: a request id, log context, one access log line, metrics,
and the problem 500 for a fault nobody anticipated."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from api.errors import PROBLEM_JSON, ProblemCode, unexpected_error_response
from runtime.logs import bind_log_context, reset_log_context, start_log_context
from runtime.tracing import Tracing, request_traced

REQUEST_ID_HEADER = "X-Request-ID"
# An id from a proxy in front is kept only if it is short and plain.
_INCOMING_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SESSION_PATH = re.compile(r"^/api/v1/sessions/([A-Za-z0-9][A-Za-z0-9._:-]{0,127})(?:/|$)")
# Characters a logged path keeps as they are; anything else is percent-encoded, so a
# crafted path cannot forge a log line.
_PATH_SAFE = "/:@-._~!$&'()*+,;="

# Probes and scrapes arrive every few seconds; their lines would drown the rest.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

access_log = logging.getLogger("api.access")
log = logging.getLogger(__name__)


def _request_id(headers: Headers) -> str:
    incoming = headers.get(REQUEST_ID_HEADER)
    if incoming and _INCOMING_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    """The matched route's path template, so metric labels stay few (no ids in them)."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    if "app_root_path" in scope:
        # A mounted app (the page's and the docs' static files) answered.
        return f"{scope['root_path']}/{{path}}"
    return metrics.UNMATCHED_ROUTE


class _Answer:
    """What the app answered: the status and, for a problem, its `code`."""

    def __init__(self) -> None:
        self.started = False
        self.status = 500
        self.code: str | None = None
        self._problem_body: bytearray | None = None

    def see(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
            if content_type.startswith(PROBLEM_JSON):
                self._problem_body = bytearray()
        elif message["type"] == "http.response.body" and self._problem_body is not None:
            self._problem_body += message.get("body", b"")
            if not message.get("more_body", False):
                self.code = _problem_code(bytes(self._problem_body))


def _problem_code(body: bytes) -> str | None:
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None


class RequestObservability:
    """Gives each request an id (echoed in `X-Request-ID`), logs it once and counts it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(Headers(scope=scope))
        token = start_log_context(request_id=request_id)
        session = _SESSION_PATH.match(scope["path"])
        if session:
            bind_log_context(session_id=session.group(1))
        answer = _Answer()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            answer.see(message)
            await send(message)

        try:
            with request_traced(request_id):
                await self.app(scope, receive, send_with_id)
        except Exception:
            if answer.started:
                # Half an answer cannot be taken back: the server closes the connection.
                answer.code = ProblemCode.INTERNAL_ERROR.value
                _observe(scope, answer, started)
                raise
            # Answered here, the exception ends: Starlette's outermost handler would
            # raise it again and uvicorn would drop the keep-alive connection.
            log.exception("unexpected error")
            await unexpected_error_response()(scope, receive, send_with_id)
        _observe(scope, answer, started)
        reset_log_context(token)


def _observe(scope: Scope, answer: _Answer, started: float) -> None:
    seconds = time.perf_counter() - started
    route = _route_template(scope)
    method = scope["method"]
    metrics.observe_request(method, route, answer.status, answer.code, seconds)
    duration_ms = round(seconds * 1000, 1)
    path = quote(scope["path"], safe=_PATH_SAFE)
    access_log.log(
        logging.DEBUG if route in _QUIET_ROUTES else logging.INFO,
        "%s %s %s%s %sms",
        method,
        path,
        answer.status,
        f" {answer.code}" if answer.code else "",
        duration_ms,
        extra={
            "method": method,
            "path": path,
            "route": route,
            "status": answer.status,
            "code": answer.code,
            "duration_ms": duration_ms,
        },
    )


def request_telemetry(tracing: Tracing | None) -> TelemetryConfig | None:
    """FastAPI's own request spans, made with the tracing's provider; probes make none."""
    if tracing is None:
        return None
    return {
        "tracer_provider": tracing.provider,
        # Spans for dependencies, endpoint and serialization: three more per request, which
        # cost more than the request's own span and its Temporal calls, which remain.
        "operation_spans": False,
        "exclude": lambda scope: scope.get("path") in _QUIET_ROUTES,
    }


def install_observability(app: FastAPI) -> None:
    """Adds request ids, the access log and request metrics, and serves `/metrics`."""
    app.add_middleware(RequestObservability)
    app.include_router(metrics.router)

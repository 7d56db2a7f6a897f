"""Every failure becomes an RFC 9457 problem with a stable `code`, in one place."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlPoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.codec import UndecryptablePayload
from workflows.domain import DomainError
from workflows.shared import SessionStatus

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"


class ProblemCode(StrEnum):
    """Every stable problem code, with the HTTP status and the title it is answered with."""

    status: int
    problem_title: str

    def __new__(cls, code: str, status: int, problem_title: str) -> ProblemCode:
        member = str.__new__(cls, code)
        member._value_ = code
        member.status = status
        member.problem_title = problem_title
        return member

    INVALID_TRANSITION = "invalid_transition", 409, "Not allowed in the session's current status"
    CHECKS_INCOMPLETE = "checks_incomplete", 409, "Required checks have not passed"
    IDEMPOTENCY_KEY_REUSED = (
        "idempotency_key_reused",
        409,
        "Idempotency key already used for another request",
    )
    SESSION_SUSPENDED = "session_suspended", 409, "Session suspended by an operator"
    SESSION_ENDED_IN_TEMPORAL = (
        "session_ended_in_temporal",
        409,
        "Session's workflow ended in Temporal",
    )
    SESSION_LIMIT_REACHED = "session_limit_reached", 409, "The session is full"
    UNKNOWN_CHECK = "unknown_check", 422, "Unknown check"
    INVALID_CHECK_ANSWER = "invalid_check_answer", 422, "Answer does not fit the check"
    TEXT_TOO_LONG = "text_too_long", 422, "Text too long"
    VALIDATION_ERROR = "validation_error", 422, "Invalid request"
    UNDECRYPTABLE_PAYLOAD = "undecryptable_payload", 422, "Payload cannot be decrypted"
    BAD_REQUEST = "bad_request", 400, "Malformed request"
    PAYLOAD_TOO_LARGE = "payload_too_large", 413, "Request body too large"
    SESSION_NOT_FOUND = "session_not_found", 404, "Session not found"
    SOP_NOT_FOUND = "sop_not_found", 404, "SOP not found"
    NOT_FOUND = "not_found", 404, "Not found"
    METHOD_NOT_ALLOWED = "method_not_allowed", 405, "Method not allowed"
    FORBIDDEN = "forbidden", 403, "Forbidden"
    UNAUTHORIZED = "unauthorized", 401, "Authentication required"
    TEMPORAL_UNAVAILABLE = "temporal_unavailable", 503, "Workflow engine unavailable"
    NOT_READY = "not_ready", 503, "Not ready"
    ENCRYPTION_KEY_MISSING = (
        "encryption_key_missing",
        503,
        "Session data encrypted with a key this deployment lacks",
    )
    IDENTITY_PROVIDER_UNAVAILABLE = (
        "identity_provider_unavailable",
        503,
        "Identity provider unavailable",
    )
    DATABASE_UNAVAILABLE = "database_unavailable", 503, "App database unavailable"
    INTERNAL_ERROR = "internal_error", 500, "Internal error"

    @classmethod
    def known(cls, code: str) -> ProblemCode | None:
        """The member named by a code from elsewhere (the domain, the engine), if any."""
        return next((member for member in cls if member.value == code), None)


class ValidationIssue(BaseModel):
    loc: list[str]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem; a refusal may add the members that explain it."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: ProblemCode
    errors: list[ValidationIssue] | None = None
    session_status: SessionStatus | None = None
    check_id: str | None = None
    missing_check_ids: list[str] | None = None
    failing: list[str] | None = None


class ProblemError(Exception):
    """Raised anywhere in the API to answer with a problem response."""

    def __init__(
        self,
        code: ProblemCode,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers

    @property
    def status(self) -> int:
        """The HTTP status the problem is answered with."""
        return self.code.status

    @classmethod
    def from_domain(cls, error: DomainError) -> ProblemError:
        """Translates a domain refusal into its problem; a code the API does not know is a bug."""
        code = ProblemCode.known(error.code)
        if code is None:
            raise RuntimeError(f"the domain raised an unknown problem code {error.code!r}")
        return cls(code, error.message, extra=dict(error.details))


def unexpected_error_response() -> JSONResponse:
    """The problem 500 for a fault nobody anticipated; it says nothing of the fault."""
    return problem_response(ProblemCode.INTERNAL_ERROR, "An unexpected error occurred.")


def problem_response(
    code: ProblemCode,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Builds an application/problem+json response."""
    body: dict[str, Any] = {
        "type": f"https://work-sessions.example/problems/{code.replace('_', '-')}",
        "title": code.problem_title,
        "status": code.status,
        "detail": detail,
        "code": code.value,
    }
    for key, value in (extra or {}).items():
        # A domain refusal names the session's status `status`; the RFC 9457 `status`
        # member is the HTTP status and must stay an integer.
        body[f"session_{key}" if key in body else key] = value
    return JSONResponse(body, status_code=code.status, media_type=PROBLEM_JSON, headers=headers)


_RESPONSE_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing, malformed or expired token",
    403: "Not allowed for this caller",
    404: "Not found, or not visible to this caller",
    409: "Conflicts with the session's state or an earlier request",
    413: "Request body too large",
    422: "Invalid request",
    503: "A dependency is unavailable; retry shortly",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Declares problem responses for the OpenAPI document, each referring to `Problem`.

    Every operation may meet 400, 401, 422 and 503; a body-carrying one adds 413.
    """
    reference = {"content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}}
    return {
        status: {**reference, "description": _RESPONSE_DESCRIPTIONS[status]}
        for status in sorted({400, 401, 422, 503, *statuses})
    }


_CODE_BY_HTTP_STATUS = {
    code.status: code
    for code in (
        ProblemCode.BAD_REQUEST,
        ProblemCode.UNAUTHORIZED,
        ProblemCode.FORBIDDEN,
        ProblemCode.NOT_FOUND,
        ProblemCode.METHOD_NOT_ALLOWED,
        ProblemCode.PAYLOAD_TOO_LARGE,
    )
}


def _validation_code(exc: RequestValidationError) -> ProblemCode:
    """A validator may name its problem code as the error type; any other error is generic."""
    types = {str(err.get("type")) for err in exc.errors()}
    if len(types) == 1:
        code = ProblemCode.known(types.pop())
        if code is not None and code.status == 422:
            return code
    return ProblemCode.VALIDATION_ERROR


def install_error_handlers(app: FastAPI) -> None:
    """Maps every exception the API can meet to a problem response.

    An exception no handler maps is answered by the request middleware
    (`api.middleware.RequestObservability`) with the problem 500.
    """

    @app.exception_handler(ProblemError)
    async def _problem(_request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.code, exc.detail, exc.extra, exc.headers)

    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        problem = ProblemError.from_domain(exc)
        return problem_response(problem.code, problem.detail, problem.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "Invalid request"
        return problem_response(_validation_code(exc), detail, {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODE_BY_HTTP_STATUS.get(exc.status_code)
        if code is None:
            log.error("no problem code for HTTP status %s: %s", exc.status_code, exc.detail)
            code = ProblemCode.INTERNAL_ERROR
        return problem_response(code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(SqlPoolTimeout)
    async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        # Unreachable, restarting, or (SQLite) its write lock held past the busy timeout:
        # a condition that passes, not a fault of the request or of the API.
        log.warning("app database unavailable: %s", exc)
        return problem_response(
            ProblemCode.DATABASE_UNAVAILABLE,
            "The app database is unavailable or busy; try again shortly.",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(UndecryptablePayload)
    async def _undecryptable(_request: Request, exc: UndecryptablePayload) -> JSONResponse:
        # The operator removed a key that live sessions still use: theirs to fix, not the caller's.
        log.error("cannot decrypt session data: %s", exc)
        return problem_response(ProblemCode.ENCRYPTION_KEY_MISSING, str(exc))


def install_problem_schema(app: FastAPI) -> None:
    """Puts `Problem` among the document's components, where every error response refers."""
    build_document = app.openapi
    _, definitions = models_json_schema(
        [(Problem, "serialization")], ref_template="#/components/schemas/{model}"
    )

    def document_with_problem() -> dict[str, Any]:
        if app.openapi_schema is None:
            build_document().setdefault("components", {}).setdefault("schemas", {}).update(
                definitions["$defs"]
            )
        return build_document()

    # FastAPI's documented way to extend the document it generates.
    app.openapi = document_with_problem  # type: ignore[method-assign]

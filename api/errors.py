"""Every failure becomes an RFC 9457 problem with a stable `code`, in one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from workflows.domain import DomainError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# HTTP status of every domain refusal code the workflow or the API can raise.
STATUS_BY_CODE: dict[str, int] = {
    "invalid_transition": 409,
    "checks_incomplete": 409,
    "idempotency_key_reused": 409,
    "session_suspended": 409,
    "unknown_check": 422,
    "invalid_check_answer": 422,
    "text_too_long": 422,
    "validation_error": 422,
    "bad_request": 400,
    "payload_too_large": 413,
    "session_not_found": 404,
    "sop_not_found": 404,
    "not_found": 404,
    "forbidden": 403,
    "unauthorized": 401,
    "temporal_unavailable": 503,
    "not_ready": 503,
    "identity_provider_unavailable": 503,
}

_TITLES: dict[str, str] = {
    "invalid_transition": "Not allowed in the session's current status",
    "checks_incomplete": "Required checks have not passed",
    "idempotency_key_reused": "Idempotency key already used for another request",
    "session_suspended": "Session suspended by an operator",
    "unknown_check": "Unknown check",
    "invalid_check_answer": "Answer does not fit the check",
    "text_too_long": "Text too long",
    "validation_error": "Invalid request",
    "bad_request": "Malformed request",
    "payload_too_large": "Request body too large",
    "session_not_found": "Session not found",
    "sop_not_found": "SOP not found",
    "not_found": "Not found",
    "forbidden": "Forbidden",
    "unauthorized": "Authentication required",
    "temporal_unavailable": "Workflow engine unavailable",
    "not_ready": "Not ready",
    "identity_provider_unavailable": "Identity provider unavailable",
}


class ProblemError(Exception):
    """Raised anywhere in the API to answer with a problem response."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status or STATUS_BY_CODE.get(code, 400)
        self.extra = extra or {}
        self.headers = headers

    @classmethod
    def from_domain(cls, error: DomainError) -> ProblemError:
        """Translates a domain refusal into its problem."""
        return cls(error.code, error.message, extra=dict(error.details))


def problem_response(
    status: int,
    code: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Builds an application/problem+json response."""
    body: dict[str, Any] = {
        "type": f"https://work-sessions.example/problems/{code.replace('_', '-')}",
        "title": _TITLES.get(code, "Request failed"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    for key, value in (extra or {}).items():
        # A domain refusal names the session's status `status`; the RFC 9457 `status`
        # member is the HTTP status and must stay an integer.
        body[f"session_{key}" if key in body else key] = value
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def install_error_handlers(app: FastAPI) -> None:
    """Maps every exception the API can meet to a problem response."""

    @app.exception_handler(ProblemError)
    async def _problem(_request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, exc.extra, exc.headers)

    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        problem = ProblemError.from_domain(exc)
        return problem_response(problem.status, problem.code, problem.detail, problem.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "Invalid request"
        return problem_response(422, "validation_error", detail, {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return problem_response(
            exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem_response(500, "internal_error", "An unexpected error occurred.")

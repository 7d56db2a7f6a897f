"""The audit trail across sessions, for supervisors."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.audit_csv import audit_csv
from api.auth import SUBJECT_PATTERN
from api.deps import ServicesDep, Supervisor
from api.errors import ProblemError
from api.schemas import ID_PATTERN, AuditEventOut, AuditPage, IsoDateTime, problems

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


Timestamp = Annotated[
    IsoDateTime,
    Query(description="ISO 8601 date-time with a time zone, e.g. 2026-11-25T08:00:00Z"),
]


@router.get(
    "",
    response_model=AuditPage,
    responses={
        **problems(403),
        200: {"content": {"text/csv": {}}, "description": "Audit events, oldest first"},
    },
)
async def search_audit(
    _user: Supervisor,
    services: ServicesDep,
    worker_id: Annotated[str | None, Query(pattern=SUBJECT_PATTERN.pattern)] = None,
    session_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    format: Literal["json", "csv"] = "json",
) -> AuditPage | Response:
    """Lists audit events, oldest first, as JSON or CSV."""
    if since and until and since > until:
        raise ProblemError("validation_error", "`since` must not be after `until`.")
    events = await services.audit_log.search(
        worker_id=worker_id, session_id=session_id, since=since, until=until, limit=limit
    )
    if format == "json":
        return AuditPage(items=[AuditEventOut.of(e) for e in events])
    text = await audit_csv(events, services.audit_log, services.catalog)
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )

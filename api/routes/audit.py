"""The audit trail across sessions, for supervisors, as JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from api.audit_csv import audit_csv
from api.auth import SUBJECT_PATTERN
from api.deps import Services, ServicesDep, Supervisor
from api.errors import ProblemCode, ProblemError, problems
from api.schemas import ID_PATTERN, AuditEventOut, AuditPage, IsoDateTime

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


Timestamp = Annotated[
    IsoDateTime,
    Field(description="ISO 8601 date-time with a time zone, e.g. 2026-11-25T08:00:00Z"),
]

CSV_MEDIA_TYPE = "text/csv"


class AuditFilters(BaseModel):
    """The filters both audit representations take."""

    worker_id: Annotated[str | None, Field(pattern=SUBJECT_PATTERN.pattern)] = None
    session_id: Annotated[str | None, Field(pattern=ID_PATTERN)] = None
    since: Timestamp | None = None
    until: Timestamp | None = None
    limit: Annotated[int, Field(ge=1, le=10_000)] = 1000


async def _search(
    query: Annotated[AuditFilters, Query()], services: ServicesDep
) -> list[AuditEventOut]:
    if query.since and query.until and query.since > query.until:
        raise ProblemError(ProblemCode.VALIDATION_ERROR, "`since` must not be after `until`.")
    events = await services.audit_log.search(
        worker_id=query.worker_id,
        session_id=query.session_id,
        since=query.since,
        until=query.until,
        limit=query.limit,
    )
    return [AuditEventOut.of(e) for e in events]


AuditEvents = Annotated[list[AuditEventOut], Depends(_search)]


async def _csv(items: list[AuditEventOut], services: Services) -> Response:
    text = await audit_csv(items, services.audit_log, services.catalog)
    return Response(
        text,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


_CSV_RESPONSE = {
    "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
    "description": "Audit events, oldest first, one row each",
}


@router.get(
    "",
    response_model=AuditPage,
    responses={
        **problems(403),
        200: {**_CSV_RESPONSE, "description": "Audit events, oldest first"},
    },
)
async def list_audit_events(
    _user: Supervisor,
    items: AuditEvents,
    services: ServicesDep,
    format: Annotated[
        Literal["json", "csv"],
        Query(description="`csv` answers as `GET /api/v1/audit.csv` does."),
    ] = "json",
) -> AuditPage | Response:
    """Lists audit events, oldest first."""
    return AuditPage(items=items) if format == "json" else await _csv(items, services)


@router.get(
    ".csv",
    response_class=Response,
    responses={**problems(403), 200: _CSV_RESPONSE},
)
async def get_audit_csv(_user: Supervisor, items: AuditEvents, services: ServicesDep) -> Response:
    """Exports audit events, oldest first, as CSV with a header row."""
    return await _csv(items, services)

"""The audit trail across sessions, for supervisors."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from api.auth import SUBJECT_PATTERN
from api.deps import AuditLogDep, Supervisor
from api.errors import ProblemError
from api.schemas import ID_PATTERN, AuditEventOut, AuditPage, problems

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def _iso_8601_only(value: object) -> object:
    # Pydantic would read a bare number as a Unix timestamp; the contract says date-time.
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+(\.\d*)?\s*", value):
        raise ValueError("expected an ISO 8601 date-time with a time zone")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as err:
        # Year 1 at +14:00 is a moment before the first representable UTC instant.
        raise ValueError("is outside the representable range of dates") from err


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_8601_only),
    AfterValidator(_in_utc),
    Query(description="ISO 8601 date-time with a time zone, e.g. 2026-11-25T08:00:00Z"),
]

CSV_COLUMNS = ("session_id", "seq", "type", "actor", "at", "worker_id", "sop_id", "data")


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
    audit_log: AuditLogDep,
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
    events = await audit_log.search(
        worker_id=worker_id, session_id=session_id, since=since, until=until, limit=limit
    )
    items = [AuditEventOut.model_validate(e) for e in events]
    if format == "json":
        return AuditPage(items=items)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for item in items:
        writer.writerow(
            [
                item.session_id,
                item.seq,
                item.type.value,
                item.actor,
                item.at.isoformat(),
                item.worker_id,
                item.sop_id,
                json.dumps(item.data, sort_keys=True),
            ]
        )
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )

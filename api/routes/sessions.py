"""Work session endpoints: start, read, list, and the messages that change a session."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, status

from api import metrics
from api.auth import SUBJECT_PATTERN, User
from api.deps import AuditLogDep, CatalogDep, CurrentUser, GatewayDep, StartKeysDep, Worker
from api.errors import ProblemCode, ProblemError, problems
from api.schemas import (
    ID_PATTERN,
    SOP_ID_PATTERN,
    AbortIn,
    AuditEventOut,
    AuditPage,
    IsoDateTime,
    PauseIn,
    RecordCheckIn,
    SessionPage,
    StartSessionIn,
    WorkSessionOut,
    WorkSessionSummaryOut,
)
from engine.session_ids import readable_session_id
from store.start_keys import SessionStartKeys
from workflows.shared import (
    AbortRequest,
    AuditEvent,
    AuditEventType,
    CompleteRequest,
    PauseRequest,
    RecordCheckRequest,
    ResumeRequest,
    SessionStatus,
    SessionView,
)

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])

SessionIdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7e]{1,128}$",
        description="Repeating a request with the same key returns the first result.",
    ),
]


def _out(view: SessionView) -> WorkSessionOut:
    return WorkSessionOut.of_view(view, datetime.now(UTC))


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(403, 404, 409, 413))
async def start_session(
    body: StartSessionIn,
    user: Worker,
    catalog: CatalogDep,
    gateway: GatewayDep,
    start_keys: StartKeysDep,
    idempotency_key: IdempotencyKey = None,
) -> WorkSessionOut:
    """Starts a session of an SOP for the calling worker."""
    sop = await catalog.get(body.sop_id, body.sop_version)
    if sop is None:
        version = f" version {body.sop_version}" if body.sop_version else ""
        raise ProblemError(
            ProblemCode.SOP_NOT_FOUND, f"SOP '{body.sop_id}'{version} does not exist."
        )
    session_id = await _session_id_of_start(body, user, start_keys, idempotency_key)
    return _out(await gateway.start(user, sop, session_id))


async def _session_id_of_start(
    body: StartSessionIn, user: User, start_keys: SessionStartKeys, idempotency_key: str | None
) -> str:
    """A new readable id, or the one the first request with this Idempotency-Key chose."""
    session_id = readable_session_id(user.id, body.sop_id, datetime.now(UTC))
    if idempotency_key is None:
        return session_id
    claim = await start_keys.claim(user.id, idempotency_key, body.model_dump_json(), session_id)
    if not claim.same_request:
        raise ProblemError(
            ProblemCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was already used to start a session with another request.",
        )
    return claim.session_id


@router.get("", responses=problems(403))
async def list_sessions(
    user: CurrentUser,
    gateway: GatewayDep,
    status_filter: Annotated[
        list[SessionStatus] | None,
        Query(alias="status", description="Repeatable; default IN_PROGRESS and PAUSED."),
    ] = None,
    worker_id: Annotated[str | None, Query(pattern=SUBJECT_PATTERN.pattern)] = None,
    sop_id: Annotated[str | None, Query(pattern=SOP_ID_PATTERN, max_length=64)] = None,
    started_since: Annotated[
        IsoDateTime | None, Query(description="Sessions started at or after this time.")
    ] = None,
    started_until: Annotated[
        IsoDateTime | None, Query(description="Sessions started before this time.")
    ] = None,
    has_failed_checks: Annotated[
        bool | None,
        Query(description="true: only sessions holding a failed check; false: only those without."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> SessionPage:
    """Lists sessions newest first: a worker's own, or anyone's for a supervisor."""
    if not user.is_supervisor:
        if worker_id is not None and worker_id != user.id:
            raise ProblemError(ProblemCode.FORBIDDEN, "Workers may list only their own sessions.")
        worker_id = user.id
    if started_since and started_until and started_since >= started_until:
        raise ProblemError(
            ProblemCode.VALIDATION_ERROR, "`started_since` must be before `started_until`."
        )
    summaries, next_token = await gateway.list(
        caller=user,
        worker_id=worker_id,
        statuses=sorted(set(status_filter or [])),
        limit=limit,
        page_token=page_token,
        sop_id=sop_id,
        started_since=started_since,
        started_until=started_until,
        has_failed_checks=has_failed_checks,
    )
    now = datetime.now(UTC)
    return SessionPage(
        items=[WorkSessionSummaryOut.of(s, now) for s in summaries], next_page_token=next_token
    )


@router.get("/{session_id}", responses=problems(404))
async def get_session(
    session_id: SessionIdPath, user: CurrentUser, gateway: GatewayDep
) -> WorkSessionOut:
    """Gets one session with its checks and history."""
    return _out(await gateway.get(user, session_id))


@router.post("/{session_id}/pause", responses=problems(403, 404, 409, 413))
async def pause_session(
    session_id: SessionIdPath,
    user: Worker,
    gateway: GatewayDep,
    body: Annotated[PauseIn, Body(default_factory=PauseIn)],
) -> WorkSessionOut:
    """Pauses a session in progress."""
    changed = await gateway.send(user, session_id, PauseRequest(user.as_actor(), body.reason))
    return _out(changed.view)


@router.post("/{session_id}/resume", responses=problems(403, 404, 409))
async def resume_session(
    session_id: SessionIdPath, user: Worker, gateway: GatewayDep
) -> WorkSessionOut:
    """Resumes a paused session."""
    changed = await gateway.send(user, session_id, ResumeRequest(user.as_actor()))
    return _out(changed.view)


@router.post("/{session_id}/abort", responses=problems(403, 404, 409, 413))
async def abort_session(
    session_id: SessionIdPath,
    user: Worker,
    gateway: GatewayDep,
    body: Annotated[AbortIn, Body(default_factory=AbortIn)],
) -> WorkSessionOut:
    """Aborts a session; it is kept for audit and never resumes."""
    changed = await gateway.send(user, session_id, AbortRequest(user.as_actor(), body.reason))
    return _out(changed.view)


@router.post("/{session_id}/complete", responses=problems(403, 404, 409))
async def complete_session(
    session_id: SessionIdPath, user: Worker, gateway: GatewayDep
) -> WorkSessionOut:
    """Completes a session whose required checks have all passed."""
    changed = await gateway.send(user, session_id, CompleteRequest(user.as_actor()))
    return _out(changed.view)


@router.post(
    "/{session_id}/checks",
    status_code=status.HTTP_201_CREATED,
    responses=problems(403, 404, 409, 413),
)
async def record_check(
    session_id: SessionIdPath,
    body: RecordCheckIn,
    user: Worker,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> WorkSessionOut:
    """Records one answer to a safety check of a session in progress."""
    command = RecordCheckRequest(
        user.as_actor(), body.check_id, body.passed, body.value, body.note, idempotency_key
    )
    changed = await gateway.send(user, session_id, command)
    if changed.change.check is not None:
        metrics.observe_check(changed.change.check)
    return _out(changed.view)


def _has_ending(events: list[AuditEvent]) -> bool:
    return any(event.type == AuditEventType.SESSION_ABORTED for event in events)


@router.get("/{session_id}/audit", responses=problems(404))
async def get_session_audit(
    session_id: SessionIdPath, user: CurrentUser, gateway: GatewayDep, audit_log: AuditLogDep
) -> AuditPage:
    """Lists a session's audit events, oldest first."""
    view = await gateway.get(user, session_id)
    events = await audit_log.for_session(session_id)
    if view.summary.status == SessionStatus.ABORTED and not _has_ending(events):
        # Ended in Temporal and not swept yet: the reader sees the ending now.
        await gateway.record_ending(session_id, audit_log)
        events = await audit_log.for_session(session_id)
    return AuditPage(items=[AuditEventOut.model_validate(e) for e in events])

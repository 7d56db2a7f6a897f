"""The session gateway: starts, updates, queries and lists session workflows."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest, ListWorkflowExecutionsRequest
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from api.auth import SUBJECT_PATTERN, User
from api.errors import ProblemError
from engine.starting import start_session_workflow
from runtime.settings import Settings
from store.sops import PublishedSop
from workflows import search_attributes as sa
from workflows.domain import ACTIVE_STATUSES, DomainError, authorize_change, can_read
from workflows.shared import (
    SUMMARY_MEMO_KEY,
    AbortRequest,
    CompleteRequest,
    PauseRequest,
    RecordCheckRequest,
    ResumeRequest,
    SessionStatus,
    SessionSummary,
    SessionView,
)
from workflows.work_session import WorkSessionWorkflow

log = logging.getLogger(__name__)

# Session ids derived from idempotency keys: same caller + same key = same session.
_SESSION_ID_NAMESPACE = uuid.UUID("7d0f6f5e-4a53-4d8e-9a53-3c1f4b0e2a61")

# Attempts of an update that met a run closing for continue-as-new.
_CONTINUE_AS_NEW_RETRIES = 3

T = TypeVar("T")
Request = TypeVar("Request")


def _quote(value: str) -> str:
    """Quotes a value for a visibility query; only pre-validated values get here."""
    if not SUBJECT_PATTERN.fullmatch(value):
        raise ProblemError("validation_error", "The value has unsupported characters.")
    return f"'{value}'"


def _unavailable(err: BaseException, *, maybe_applied: bool = False) -> ProblemError:
    log.warning("temporal unavailable: %s", err)
    detail = (
        "The workflow engine did not confirm the change in time; it may still be applied. "
        "Read the session, or retry with the same Idempotency-Key."
        if maybe_applied
        else "The workflow engine cannot be reached right now. Retry shortly."
    )
    return ProblemError("temporal_unavailable", detail, headers={"Retry-After": "2"})


def _not_found() -> ProblemError:
    return ProblemError("session_not_found", "No such session.")


class SessionGateway:
    """Everything the API does with session workflows, with Temporal errors translated."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._task_queue = settings.temporal_task_queue
        self._namespace = settings.temporal_namespace
        self._rpc_timeout = timedelta(seconds=settings.temporal_rpc_timeout_seconds)

    def _handle(self, session_id: str) -> WorkflowHandle[WorkSessionWorkflow, SessionView]:
        return self._client.get_workflow_handle_for(WorkSessionWorkflow.run, session_id)

    async def start(
        self, user: User, sop: PublishedSop, idempotency_key: str | None
    ) -> SessionView:
        """Starts a session; the same caller with the same key gets the same session."""
        if idempotency_key is None:
            session_id = str(uuid.uuid4())
        else:
            session_id = str(uuid.uuid5(_SESSION_ID_NAMESPACE, f"{user.id}\n{idempotency_key}"))
        snapshot = sop.to_snapshot()
        try:
            return await start_session_workflow(
                self._client,
                session_id=session_id,
                worker_id=user.id,
                sop=snapshot,
                task_queue=self._task_queue,
                rpc_timeout=self._rpc_timeout,
            )
        except WorkflowAlreadyStartedError:
            # The same caller sent this key before: answer with the session it started.
            existing = await self.get(user, session_id)
        except (RPCError, RPCTimeoutOrCancelledError) as err:
            raise _unavailable(err, maybe_applied=True) from err
        if existing.summary.sop_id != snapshot.id:
            raise ProblemError(
                "idempotency_key_reused",
                "This Idempotency-Key was already used to start a session of another SOP.",
            )
        return existing

    async def get(self, user: User, session_id: str) -> SessionView:
        """Reads a session the caller may see."""
        view = await self._query(session_id)
        if not can_read(view.summary.worker_id, user.as_actor()):
            raise _not_found()
        return view

    async def _query(self, session_id: str) -> SessionView:
        try:
            return await self._handle(session_id).query(
                WorkSessionWorkflow.get_session, rpc_timeout=self._rpc_timeout
            )
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise _not_found() from err
            raise _unavailable(err) from err
        except WorkflowQueryFailedError as err:
            raise _unavailable(err) from err
        except ValueError as err:
            raise _suspended() from err

    async def pause(self, user: User, session_id: str, reason: str | None) -> SessionView:
        """Pauses a session."""
        return await self._update(
            user, session_id, WorkSessionWorkflow.pause, PauseRequest(user.as_actor(), reason)
        )

    async def resume(self, user: User, session_id: str) -> SessionView:
        """Resumes a session."""
        return await self._update(
            user, session_id, WorkSessionWorkflow.resume, ResumeRequest(user.as_actor())
        )

    async def abort(self, user: User, session_id: str, reason: str | None) -> SessionView:
        """Aborts a session."""
        return await self._update(
            user, session_id, WorkSessionWorkflow.abort, AbortRequest(user.as_actor(), reason)
        )

    async def complete(self, user: User, session_id: str) -> SessionView:
        """Completes a session."""
        return await self._update(
            user, session_id, WorkSessionWorkflow.complete, CompleteRequest(user.as_actor())
        )

    async def record_check(
        self,
        user: User,
        session_id: str,
        check_id: str,
        passed: bool | None,
        value: float | None,
        note: str | None,
        idempotency_key: str | None,
    ) -> SessionView:
        """Records one check answer; a repeated key returns the first record's session."""
        request = RecordCheckRequest(
            user.as_actor(), check_id, passed, value, note, idempotency_key
        )
        update_id = f"check:{user.id}:{idempotency_key}" if idempotency_key else None
        return await self._update(
            user, session_id, WorkSessionWorkflow.record_check, request, update_id
        )

    async def _update(
        self,
        user: User,
        session_id: str,
        update: UpdateMethodMultiParam[[WorkSessionWorkflow, Request], SessionView],
        request: Request,
        update_id: str | None = None,
    ) -> SessionView:
        for _attempt in range(_CONTINUE_AS_NEW_RETRIES):
            try:
                return await self._handle(session_id).execute_update(
                    update, request, id=update_id, rpc_timeout=self._rpc_timeout
                )
            except WorkflowUpdateFailedError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.type:
                    details = cause.details[0] if cause.details else {}
                    raise ProblemError(
                        cause.type,
                        cause.message,
                        extra=details if isinstance(details, dict) else {},
                    ) from err
                raise _unavailable(err) from err
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise _unavailable(err) from err
                await self._refuse_change_of_finished(user, session_id)
            except RPCTimeoutOrCancelledError as err:
                raise _unavailable(err, maybe_applied=True) from err
        raise _unavailable(RuntimeError("the session kept continuing as new"))

    async def _refuse_change_of_finished(self, user: User, session_id: str) -> None:
        """Explains a NOT_FOUND: no such session, or it has finished; returns if it is active.

        An update can reach a run in the instant it continues as new; the session
        is then still active and the caller should simply send the update again.
        """
        view = await self._query(session_id)
        try:
            authorize_change(view.summary.worker_id, user.as_actor())
        except DomainError as err:
            raise ProblemError.from_domain(err) from err
        if view.summary.status in ACTIVE_STATUSES:
            return
        raise ProblemError(
            "invalid_transition",
            f"The session is {view.summary.status.value} and can no longer change.",
            extra={"status": view.summary.status.value},
        )

    async def list(
        self,
        *,
        worker_id: str | None,
        statuses: Sequence[SessionStatus],
        limit: int,
        page_token: str | None,
        sop_id: str | None = None,
        started_since: datetime | None = None,
        started_until: datetime | None = None,
        has_failed_checks: bool | None = None,
    ) -> tuple[list[SessionSummary], str | None]:
        """Lists sessions from visibility, newest first, with summaries from the memo.

        A page given a start-time range may hold fewer than `limit` sessions: a run
        that continued as new started after its session did, so visibility can only
        narrow by the lower bound and the exact range is applied to the summaries.
        """
        clauses = [
            f"WorkflowType = '{WorkSessionWorkflow.__name__}'",
            # Earlier runs of a session that continued as new are not sessions of their own.
            "ExecutionStatus != 'ContinuedAsNew'",
        ]
        if worker_id is not None:
            clauses.append(f"{sa.WORKER_ID.name} = {_quote(worker_id)}")
        if sop_id is not None:
            clauses.append(f"{sa.SOP_ID.name} = {_quote(sop_id)}")
        if has_failed_checks is not None:
            clauses.append(f"{sa.FAILED_CHECKS.name} {'>' if has_failed_checks else '='} 0")
        if started_since is not None:
            clauses.append(f"StartTime >= '{started_since.astimezone(UTC).isoformat()}'")
        wanted = statuses or ACTIVE_STATUSES
        clauses.append(
            f"{sa.SESSION_STATUS.name} IN ({', '.join(_quote(s.value) for s in wanted)})"
        )
        query = " AND ".join(clauses)
        request = ListWorkflowExecutionsRequest(
            namespace=self._namespace,
            page_size=limit,
            next_page_token=_decode_token(query, page_token),
            query=query,
        )
        response = await self._call(
            lambda: self._client.workflow_service.list_workflow_executions(
                request, retry=True, timeout=self._rpc_timeout
            )
        )
        summaries: list[SessionSummary] = []
        for execution in response.executions:
            payload = execution.memo.fields.get(SUMMARY_MEMO_KEY)
            if payload is None:
                continue
            decoded = await self._client.data_converter.decode([payload], [SessionSummary])
            summary = decoded[0]
            if started_since is not None and summary.started_at < started_since:
                continue
            if started_until is not None and summary.started_at >= started_until:
                continue
            summaries.append(summary)
        return summaries, _encode_token(query, response.next_page_token)

    async def _call(self, rpc: Callable[[], Awaitable[T]]) -> T:
        try:
            return await rpc()
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT:
                raise ProblemError("validation_error", "The page token is not valid.") from err
            raise _unavailable(err) from err

    async def ping(self) -> None:
        """Raises unless the Temporal frontend answers."""
        await self._client.workflow_service.get_system_info(
            GetSystemInfoRequest(), timeout=timedelta(seconds=2)
        )


def _suspended() -> ProblemError:
    return ProblemError(
        "session_suspended",
        "An operator has suspended this session's workflow in Temporal; "
        "it can be read and changed again once they unpause it.",
    )


# Temporal answers a garbled page token with UNKNOWN after retries, not INVALID_ARGUMENT:
# tokens carry a digest of themselves and their query, so garbage is refused up front.
_TOKEN_DIGEST_BYTES = 12


def _token_digest(query: str, token: bytes) -> bytes:
    return hashlib.sha256(query.encode() + b"\0" + token).digest()[:_TOKEN_DIGEST_BYTES]


def _encode_token(query: str, token: bytes) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(_token_digest(query, token) + token).decode()


def _decode_token(query: str, token: str | None) -> bytes:
    if not token:
        return b""
    invalid = ProblemError("validation_error", "The page token is not valid for this list.")
    try:
        raw = base64.urlsafe_b64decode(token.encode())
    except (binascii.Error, ValueError) as err:
        raise invalid from err
    digest, inner = raw[:_TOKEN_DIGEST_BYTES], raw[_TOKEN_DIGEST_BYTES:]
    if not inner or not hmac.compare_digest(digest, _token_digest(query, inner)):
        raise invalid
    return inner

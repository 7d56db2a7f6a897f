"""The session gateway: starts, updates, queries and lists session workflows."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetSystemInfoRequest,
    ListWorkflowExecutionsRequest,
)
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import QueryRejectCondition
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import SUBJECT_PATTERN, User
from api.errors import ProblemCode, ProblemError
from engine.history import temporal_ending
from engine.starting import start_session_workflow
from engine.visibility import session_status_clause
from runtime.settings import Settings
from store.sops import PublishedSop
from workflows import search_attributes as sa
from workflows.domain import (
    ACTIVE_STATUSES,
    STATUS_WORDS,
    DomainError,
    RefusalCode,
    authorize_change,
    can_read,
    ended_in_temporal,
    temporal_abort_reason,
)
from workflows.shared import (
    SUMMARY_MEMO_KEY,
    RecordCheckRequest,
    SessionChange,
    SessionCommand,
    SessionStatus,
    SessionSummary,
    SessionView,
    TemporalClosure,
    TemporalEnding,
    UpdateResult,
)
from workflows.work_session import UPDATE_OF, WorkSessionWorkflow

log = logging.getLogger(__name__)

# The codes the workflow refuses with; any other failure from the engine is not the caller's.
_REFUSAL_CODES = frozenset(code.value for code in RefusalCode)
# The failure type the server gives updates a run closed before accepting or rejecting.
_UNPROCESSED_UPDATE = "UnprocessedUpdate"
_TRANSIENT = frozenset(
    (
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.FAILED_PRECONDITION,
    )
)
# What the API's lazy client raises until its first connection to Temporal succeeds.
_NeverConnected = RuntimeError
# Whole views kept per API process to turn compact update results into full responses.
_CACHED_VIEWS = 2048

T = TypeVar("T")


def _quote(value: str) -> str:
    """Quotes a value for a visibility query; only pre-validated values get here."""
    if not SUBJECT_PATTERN.fullmatch(value):
        raise ProblemError(ProblemCode.VALIDATION_ERROR, "The value has unsupported characters.")
    return f"'{value}'"


def _unavailable(err: BaseException, *, maybe_applied: bool = False) -> ProblemError:
    log.warning("temporal unavailable: %s", err)
    detail = (
        "The workflow engine did not confirm the change in time; it may still be applied. "
        "Read the session, or retry with the same Idempotency-Key."
        if maybe_applied
        else "The workflow engine cannot be reached right now. Retry shortly."
    )
    return ProblemError(ProblemCode.TEMPORAL_UNAVAILABLE, detail, headers={"Retry-After": "2"})


def _refusal(err: WorkflowUpdateFailedError) -> ProblemError:
    """The domain's refusal of an update; a failure type the API does not know is no 4xx."""
    cause = err.cause
    if not isinstance(cause, ApplicationError):
        return _unavailable(err)
    code = ProblemCode.known(cause.type) if cause.type in _REFUSAL_CODES else None
    if code is None:
        return _unavailable(err)
    details = cause.details[0] if cause.details else {}
    return ProblemError(code, cause.message, extra=details if isinstance(details, dict) else {})


def _was_not_processed(cause: BaseException | None) -> bool:
    return isinstance(cause, ApplicationError) and cause.type == _UNPROCESSED_UPDATE


class _Deadline:
    """The time one request may spend on the engine, retries included."""

    def __init__(self, budget: timedelta) -> None:
        self._end = time.monotonic() + budget.total_seconds()
        self._backoff = 0.02

    def left(self) -> timedelta:
        return timedelta(seconds=max(0.05, self._end - time.monotonic()))

    def passed(self) -> bool:
        return time.monotonic() >= self._end

    async def pause(self) -> None:
        await asyncio.sleep(min(self._backoff, max(0.0, self._end - time.monotonic())))
        self._backoff = min(self._backoff * 2, 0.5)


class _Views:
    """The last whole view of recently used sessions, to merge compact update results into.

    Versions count a session's changes, so a view at `version - 1` plus the change
    is exactly the view at `version`; anything else is a miss and the caller queries.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._views: OrderedDict[str, SessionView] = OrderedDict()

    def remember(self, view: SessionView) -> SessionView:
        if view.version == 0:
            return view
        session_id = view.summary.id
        cached = self._views.get(session_id)
        if cached is None or cached.version <= view.version:
            self._views[session_id] = view
        self._views.move_to_end(session_id)
        while len(self._views) > self._capacity:
            self._views.popitem(last=False)
        return view

    def merge(self, session_id: str, change: SessionChange) -> SessionView | None:
        cached = self._views.get(session_id)
        if cached is None:
            return None
        if cached.version >= change.version:
            # A later answer came first; unless the session was rewound (a reset in Temporal).
            if _holds(cached, change):
                return cached
            del self._views[session_id]
            return None
        if cached.version != change.version - 1:
            return None
        return self.remember(
            SessionView(
                summary=change.summary,
                safety_checks=cached.safety_checks + ([change.check] if change.check else []),
                history=cached.history + ([change.status_change] if change.status_change else []),
                version=change.version,
            )
        )


def _holds(view: SessionView, change: SessionChange) -> bool:
    """Whether the view already shows the change."""
    if change.check is not None:
        return change.check in view.safety_checks
    return change.status_change is None or change.status_change in view.history


@dataclass(frozen=True)
class Changed:
    """A session after a command, and what the command changed (`change.check`: its record)."""

    view: SessionView
    change: SessionChange


def _update_id(command: SessionCommand, digest_key: bytes) -> str:
    """The update id: a check record's idempotency key and its body name one update.

    The engine answers a repeated update id inside a run with the first outcome,
    without asking the workflow; with the body in the id, the same key with
    another check, answer or note reaches the workflow, which refuses it.
    """
    if not isinstance(command, RecordCheckRequest) or command.idempotency_key is None:
        return str(uuid.uuid4())
    body = json.dumps([command.check_id, command.passed, command.value, command.note])
    digest = hmac.new(digest_key, body.encode(), hashlib.sha256).hexdigest()[:32]
    return f"check:{command.actor.user_id}:{command.idempotency_key}:{digest}"


def _update_id_key(settings: Settings) -> bytes:
    """The key of the answer digest in update ids, which Temporal stores unencrypted.

    With payloads encrypted, an unkeyed digest would let a reader of the history
    guess a reading by hashing candidates; a key derived from the newest encryption
    key prevents that. A digest that changes with a rotation only sends a repeat on
    to the workflow, which answers it with the first record all the same.
    """
    keys = settings.encryption_keys()
    if not keys:
        return b""
    return hmac.new(keys[-1].secret, b"update id digests", hashlib.sha256).digest()


def _change_in_whole_view(view: SessionView, command: SessionCommand) -> SessionChange:
    """What a worker of an older release changed, read from the whole view it answered."""
    check = None
    status_change = None
    if isinstance(command, RecordCheckRequest):
        check = max(
            (r for r in view.safety_checks if r.check_id == command.check_id),
            key=lambda r: r.seq,
            default=None,
        )
    elif view.history:
        status_change = view.history[-1]
    return SessionChange(view.version, view.summary, check, status_change)


def _not_found() -> ProblemError:
    return ProblemError(ProblemCode.SESSION_NOT_FOUND, "No such session.")


class SessionGateway:
    """Everything the API does with session workflows, with Temporal errors translated."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._task_queue = settings.temporal_task_queue
        self._namespace = settings.temporal_namespace
        self._rpc_timeout = timedelta(seconds=settings.temporal_rpc_timeout_seconds)
        self._views = _Views(_CACHED_VIEWS)
        self._page_tokens = PageTokens(settings.page_token_key())
        self._update_id_key = _update_id_key(settings)

    def _handle(self, session_id: str) -> WorkflowHandle[WorkSessionWorkflow, SessionView]:
        return self._client.get_workflow_handle_for(WorkSessionWorkflow.run, session_id)

    async def start(self, user: User, sop: PublishedSop, session_id: str) -> SessionView:
        """Starts session `session_id`; if it was started before, answers with that session."""
        snapshot = sop.to_snapshot()
        try:
            view = await start_session_workflow(
                self._client,
                session_id=session_id,
                worker_id=user.id,
                sop=snapshot,
                task_queue=self._task_queue,
                worker_name=user.name,
                rpc_timeout=self._rpc_timeout,
            )
        except WorkflowAlreadyStartedError:
            # The same caller sent this key before: answer with the session it started.
            existing = await self.get(user, session_id)
        except (RPCError, RPCTimeoutOrCancelledError) as err:
            raise _unavailable(err, maybe_applied=True) from err
        except _NeverConnected as err:
            raise _unavailable(err) from err
        else:
            return self._views.remember(view)
        if existing.summary.sop_id != snapshot.id:
            raise ProblemError(
                ProblemCode.IDEMPOTENCY_KEY_REUSED,
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
        """Queries the session, waiting out a run's first workflow task within the timeout."""
        view, _ending = await self._read(session_id)
        return view

    async def _read(self, session_id: str) -> tuple[SessionView, TemporalEnding | None]:
        """The session, and how Temporal's own tools ended it if they did."""
        deadline = _Deadline(self._rpc_timeout)
        reject: QueryRejectCondition | None = QueryRejectCondition.NOT_COMPLETED_CLEANLY
        ending: TemporalEnding | None = None
        while True:
            try:
                view = await self._handle(session_id).query(
                    WorkSessionWorkflow.get_session,
                    rpc_timeout=deadline.left(),
                    reject_condition=reject,
                )
            except WorkflowQueryRejectedError as err:
                # Closed without the workflow's consent: its last state, and how it closed.
                ending = await self._temporal_ending(session_id)
                if ending is not None:
                    reject = None
                elif deadline.passed():
                    raise _unavailable(err) from err
                else:
                    # A run that continued as new in this instant: ask the new run.
                    await deadline.pause()
                continue
            except RPCError as err:
                if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                    raise _not_found() from err
                if err.status in _TRANSIENT and not deadline.passed():
                    await deadline.pause()
                    continue
                raise _unavailable(err) from err
            except (WorkflowQueryFailedError, RPCTimeoutOrCancelledError, _NeverConnected) as err:
                raise _unavailable(err) from err
            except ValueError as err:
                # SDK 1.35 cannot name the status of a workflow an operator paused in
                # Temporal; any other ValueError is a fault of ours and stays a 500.
                if await self._is_paused_by_operator(session_id):
                    raise _suspended() from err
                raise
            if ending is not None:
                return ended_in_temporal(view, ending)[0], ending
            return self._views.remember(view), None

    async def _temporal_ending(self, session_id: str) -> TemporalEnding | None:
        try:
            return await temporal_ending(self._client, self._namespace, session_id)
        except RPCError as err:
            raise _unavailable(err) from err

    async def _is_paused_by_operator(self, session_id: str) -> bool:
        request = DescribeWorkflowExecutionRequest(
            namespace=self._namespace, execution=WorkflowExecution(workflow_id=session_id)
        )
        try:
            response = await self._client.workflow_service.describe_workflow_execution(
                request, timeout=self._rpc_timeout
            )
        except RPCError as err:
            raise _unavailable(err) from err
        status = response.workflow_execution_info.status
        return status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_PAUSED

    async def send(self, user: User, session_id: str, command: SessionCommand) -> Changed:
        """Sends one command to a session: the session after it, with what it changed."""
        return await self._update(user, session_id, command)

    async def _update(self, user: User, session_id: str, command: SessionCommand) -> Changed:
        """Sends a command's update until the session's current run takes or refuses it.

        In the moment a run continues as new the server rejects the updates it
        holds (`UnprocessedUpdate`) or the closing run is not found; neither
        applied the update, so it is sent again, with the same id, to the new run.
        """
        deadline = _Deadline(self._rpc_timeout)
        # One id for every attempt: an attempt the engine did apply is not applied twice.
        update_id = _update_id(command, self._update_id_key)
        while True:
            try:
                result = await self._handle(session_id).execute_update(
                    UPDATE_OF[type(command)], command, id=update_id, rpc_timeout=deadline.left()
                )
            except WorkflowUpdateFailedError as err:
                if not _was_not_processed(err.cause) or deadline.passed():
                    raise _refusal(err) from err
                log.info("update %s met a run continuing as new; sending it again", update_id)
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    await self._refuse_change_of_finished(user, session_id)
                    log.info("update %s met a closing run; sending it again", update_id)
                # More than the engine's updates in flight for one session is brief too.
                elif err.status != RPCStatusCode.RESOURCE_EXHAUSTED:
                    raise _unavailable(err) from err
                if deadline.passed():
                    raise _unavailable(err) from err
            except RPCTimeoutOrCancelledError as err:
                raise _unavailable(err, maybe_applied=True) from err
            except _NeverConnected as err:
                raise _unavailable(err) from err
            else:
                return await self._changed(session_id, command, result)
            await deadline.pause()

    async def _changed(
        self, session_id: str, command: SessionCommand, result: UpdateResult
    ) -> Changed:
        """The whole session after an update, queried only when the change cannot be merged."""
        if isinstance(result, SessionView):
            return Changed(self._views.remember(result), _change_in_whole_view(result, command))
        merged = self._views.merge(session_id, result)
        if merged is None:
            merged = await self._query(session_id)
        return Changed(merged, result)

    async def _refuse_change_of_finished(self, user: User, session_id: str) -> None:
        """Explains a NOT_FOUND: no such session, or it has finished; returns if it is active.

        An update can reach a run in the instant it continues as new; the session
        is then still active and the caller should simply send the update again.
        """
        view, ending = await self._read(session_id)
        try:
            authorize_change(view.summary.worker_id, user.as_actor())
        except DomainError as err:
            raise ProblemError.from_domain(err) from err
        if ending is not None:
            raise ProblemError(
                ProblemCode.SESSION_ENDED_IN_TEMPORAL,
                f"The session's workflow was ended in Temporal, so the session is aborted: "
                f"{temporal_abort_reason(ending)}.",
                extra={"status": view.summary.status.value, "ended_in_temporal": ending.closure},
            )
        if view.summary.status in ACTIVE_STATUSES:
            return
        raise ProblemError(
            ProblemCode.INVALID_TRANSITION,
            f"The session is {STATUS_WORDS[view.summary.status]} and can no longer change.",
            extra={"status": view.summary.status.value},
        )

    async def list(
        self,
        *,
        caller: User,
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
        clauses = [f"WorkflowType = '{WorkSessionWorkflow.__name__}'"]
        if worker_id is not None:
            clauses.append(f"{sa.WORKER_ID.name} = {_quote(worker_id)}")
        if sop_id is not None:
            clauses.append(f"{sa.SOP_ID.name} = {_quote(sop_id)}")
        if has_failed_checks is not None:
            clauses.append(f"{sa.FAILED_CHECKS.name} {'>' if has_failed_checks else '='} 0")
        if started_since is not None:
            clauses.append(f"StartTime >= '{started_since.astimezone(UTC).isoformat()}'")
        clauses.append(session_status_clause(statuses or ACTIVE_STATUSES))
        query = " AND ".join(clauses)
        request = ListWorkflowExecutionsRequest(
            namespace=self._namespace,
            page_size=limit,
            next_page_token=self._page_tokens.open(caller.id, query, page_token),
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
            summary = await self._as_shown(decoded[0], execution)
            if started_since is not None and summary.started_at < started_since:
                continue
            if started_until is not None and summary.started_at >= started_until:
                continue
            summaries.append(summary)
        return summaries, self._page_tokens.seal(caller.id, query, response.next_page_token)

    async def _as_shown(
        self, summary: SessionSummary, execution: WorkflowExecutionInfo
    ) -> SessionSummary:
        """A list item as the session stands: aborted if Temporal's tools closed its workflow."""
        closure = _ENDED_IN_TEMPORAL.get(execution.status)
        if closure is None:
            return summary
        # Rare, and the same words as the session's own page: who ended it and why.
        ending = await self._temporal_ending(execution.execution.workflow_id) or TemporalEnding(
            closure, execution.close_time.ToDatetime(tzinfo=UTC)
        )
        view = SessionView(summary=summary, safety_checks=[], history=[])
        return ended_in_temporal(view, ending)[0].summary

    async def _call(self, rpc: Callable[[], Awaitable[T]]) -> T:
        try:
            return await rpc()
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT:
                raise ProblemError(
                    ProblemCode.VALIDATION_ERROR, "The page token is not valid."
                ) from err
            raise _unavailable(err) from err
        except _NeverConnected as err:
            raise _unavailable(err) from err

    async def ping(self) -> None:
        """Raises unless the Temporal frontend answers."""
        await self._client.workflow_service.get_system_info(
            GetSystemInfoRequest(), timeout=timedelta(seconds=2)
        )


# How visibility names the executions Temporal's tools closed without the workflow's consent.
_ENDED_IN_TEMPORAL = {
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED: TemporalClosure.TERMINATED,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED: TemporalClosure.CANCELLED,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT: TemporalClosure.TIMED_OUT,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED: TemporalClosure.FAILED,
}


def _suspended() -> ProblemError:
    return ProblemError(
        ProblemCode.SESSION_SUSPENDED,
        "An operator has suspended this session's workflow in Temporal; "
        "it can be read and changed again once they unpause it.",
    )


class PageTokens:
    """Temporal's page tokens, sealed with an HMAC over the caller and the list query.

    Temporal answers a garbled page token with UNKNOWN after ~10 s of retries, not
    INVALID_ARGUMENT: a token that is forged, altered, or taken to another caller or
    another list is refused here, before any call to Temporal.
    """

    _MAC_BYTES = 16

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, caller_id: str, query: str, token: bytes) -> bytes:
        # The caller id and the query hold no NUL (both are validated), so the fields cannot blur.
        message = f"{caller_id}\0{query}\0".encode() + token
        return hmac.new(self._key, message, hashlib.sha256).digest()[: self._MAC_BYTES]

    def seal(self, caller_id: str, query: str, token: bytes) -> str | None:
        """The token to hand the caller for the next page, or None on the last page."""
        if not token:
            return None
        return base64.urlsafe_b64encode(self._mac(caller_id, query, token) + token).decode()

    def open(self, caller_id: str, query: str, sealed: str | None) -> bytes:
        """Temporal's token inside a sealed one, or a 422 problem if it was not sealed for this."""
        if not sealed:
            return b""
        invalid = ProblemError(
            ProblemCode.VALIDATION_ERROR, "The page token is not valid for this list."
        )
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
        except (binascii.Error, ValueError) as err:
            raise invalid from err
        mac, token = raw[: self._MAC_BYTES], raw[self._MAC_BYTES :]
        if not token or not hmac.compare_digest(mac, self._mac(caller_id, query, token)):
            raise invalid
        return token

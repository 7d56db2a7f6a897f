"""The session gateway: what the API does with session workflows, for a caller.

It adds the caller's rights, the view cache and the contract's problems to the
engine-level path (`engine.starting`, `engine.sessions`, `engine.visibility`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from opentelemetry import trace
from sqlalchemy.exc import SQLAlchemyError
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.auth import User
from api.engine_errors import engine_problems, session_not_found, suspended, unavailable
from api.errors import ProblemCode, ProblemError
from api.page_tokens import PageTokens
from api.views import SessionViews
from engine.client import Connection
from engine.reconcile import RECORDING_FAILURES, AuditTrail, record_ending
from engine.sessions import (
    Deadline,
    SessionClosed,
    SessionHandle,
    is_paused_by_operator,
    query_session,
    read_session,
    send_command,
    session_handle,
    update_id_key,
)
from engine.starting import start_session_workflow
from engine.visibility import SessionFilter, list_summaries, visibility_query
from runtime.settings import Settings
from store.audit import AuditLog
from store.sops import PublishedSop
from workflows.domain import (
    ACTIVE_STATUSES,
    STATUS_WORDS,
    DomainError,
    authorize_change,
    can_read,
    temporal_abort_reason,
)
from workflows.shared import (
    AuditEvent,
    RecordCheckRequest,
    SessionChange,
    SessionCommand,
    SessionStatus,
    SessionSummary,
    SessionView,
    TemporalEnding,
)

# The span of a change's audit write by the API, in the request's trace.
WRITE_AUDIT_SPAN = "AppendAuditEvents:at_once"
# Whole views kept per API process to turn compact update results into full responses.
_CACHED_VIEWS = 2048

T = TypeVar("T")


@dataclass(frozen=True)
class Changed:
    """A session after a command, and what the command changed (`change.check`: its record)."""

    view: SessionView
    change: SessionChange


log = logging.getLogger(__name__)


class SessionGateway:
    """Everything the API does with session workflows, with Temporal errors translated."""

    def __init__(
        self,
        client: Client,
        settings: Settings,
        audit_log: AuditLog,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._connection = Connection(client)
        self._audit_log = audit_log
        self._tracer = tracer or trace.NoOpTracer()
        self._audit_writes: set[asyncio.Task[None]] = set()
        self._task_queue = settings.temporal_task_queue
        self._rpc_timeout = timedelta(seconds=settings.temporal_rpc_timeout_seconds)
        self._views = SessionViews(_CACHED_VIEWS)
        self._page_tokens = PageTokens(settings.page_token_key())
        self._update_id_key = update_id_key(settings)

    async def _client(self) -> Client:
        with engine_problems():
            return await self._connection.reach(self._rpc_timeout)

    async def start(self, user: User, sop: PublishedSop, session_id: str) -> SessionView:
        """Starts session `session_id`; if it was started before, answers with that session."""
        client = await self._client()
        snapshot = sop.to_snapshot()
        try:
            with engine_problems(maybe_applied=True, names_a_session=False):
                view = await start_session_workflow(
                    client,
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
            raise session_not_found()
        return view

    async def record_ending(self, session_id: str, audit_trail: AuditTrail) -> None:
        """Records at once how Temporal's tools ended the session, if its trail lacks it.

        The reconciler would within its bound; a reader of the trail need not wait.
        """
        client = await self._client()
        try:
            await record_ending(client, audit_trail, session_id)
        except RECORDING_FAILURES as err:
            log.warning("could not record how session %s ended yet: %s", session_id, err)

    async def _query(self, session_id: str) -> SessionView:
        view, _ending = await self._read(session_id)
        return view

    async def _read(self, session_id: str) -> tuple[SessionView, TemporalEnding | None]:
        """The session, and how Temporal's own tools ended it if they did."""
        client = await self._client()
        reading = read_session(client, session_id, Deadline(self._rpc_timeout))
        view, ending = await self._on_session(client, session_id, reading)
        if ending is None:
            self._views.remember(view)
        return view, ending

    async def send(self, user: User, session_id: str, command: SessionCommand) -> Changed:
        """Sends one command to a session: the session after it, with what it changed."""
        client = await self._client()
        handle = session_handle(client, session_id)
        command = dataclasses.replace(command, writes_audit=True)
        sending = send_command(handle, command, Deadline(self._rpc_timeout), self._update_id_key)
        beside = None if self._views.holds(session_id) else _ReadBeside(handle, self._rpc_timeout)
        try:
            result = await self._on_session(client, session_id, sending, maybe_applied=True)
        except BaseException as err:
            if beside is not None:
                beside.cancel()
            if isinstance(err, SessionClosed):
                raise await self._refusal_of_closed(user, session_id) from err
            raise
        if isinstance(result, SessionView):
            if beside is not None:
                beside.cancel()
            return Changed(self._views.remember(result), _change_in_whole_view(result, command))
        if result.audit_event is not None:
            self._write_audit_after_answer(result.audit_event)
        if beside is not None and (read := await beside.view()) is not None:
            self._views.remember(read)
        merged = self._views.merge(session_id, result)
        if merged is None:
            merged = await self._query(session_id)
        return Changed(merged, result)

    def _write_audit_after_answer(self, event: AuditEvent) -> None:
        """Writes a change's audit event while its answer goes out, not before: the
        answer waits for nothing but the engine."""
        write = asyncio.create_task(self._write_audit_at_once(event))
        self._audit_writes.add(write)
        write.add_done_callback(self._audit_writes.discard)

    async def finish_audit_writes(self) -> None:
        """Waits for the audit writes under way, so that a stopping API leaves none half done."""
        await asyncio.gather(*self._audit_writes)

    async def _write_audit_at_once(self, event: AuditEvent) -> None:
        """Writes a change's audit event, milliseconds after the update answered.

        The session's run writes it too, a few seconds later, so nothing is lost when
        this write fails or the API stops first: the change is in history.
        """
        attributes: dict[str, str | int] = {"session_id": event.session_id, "seq": event.seq}
        try:
            with self._tracer.start_as_current_span(WRITE_AUDIT_SPAN, attributes=attributes):
                await self._audit_log.append_unless_refused([event])
        except (SQLAlchemyError, OSError) as err:
            log.warning(
                "audit event %s/%d not written at once, its session's run will: %s",
                event.session_id,
                event.seq,
                err,
            )

    async def _refusal_of_closed(self, user: User, session_id: str) -> ProblemError:
        """Why a closed session refuses a change: not the caller's, or how it ended."""
        view, ending = await self._read(session_id)
        try:
            authorize_change(view.summary.worker_id, user.as_actor())
        except DomainError as err:
            return ProblemError.from_domain(err)
        if ending is not None:
            return ProblemError(
                ProblemCode.SESSION_ENDED_IN_TEMPORAL,
                f"The session's workflow was ended in Temporal, so the session is aborted: "
                f"{temporal_abort_reason(ending)}.",
                extra={"status": view.summary.status.value, "ended_in_temporal": ending.closure},
            )
        if view.summary.status in ACTIVE_STATUSES:
            # Closed, yet neither ended by the workflow nor by Temporal's tools: the engine's.
            return unavailable(SessionClosed(session_id))
        return ProblemError(
            ProblemCode.INVALID_TRANSITION,
            f"The session is {STATUS_WORDS[view.summary.status]} and can no longer change.",
            extra={"status": view.summary.status.value},
        )

    async def _on_session(
        self, client: Client, session_id: str, call: Awaitable[T], *, maybe_applied: bool = False
    ) -> T:
        """Awaits an engine call about one session, its errors as the contract's problems."""
        try:
            with engine_problems(maybe_applied=maybe_applied):
                return await call
        except ValueError:
            # SDK 1.35 cannot name the status of a workflow an operator paused in
            # Temporal; any other ValueError is a fault of ours and stays a 500.
            with engine_problems():
                paused = await is_paused_by_operator(client, session_id, self._rpc_timeout)
            if paused:
                raise suspended() from None
            raise

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
        wanted = SessionFilter(statuses, worker_id, sop_id, has_failed_checks, started_since)
        try:
            query = visibility_query(wanted)
        except ValueError as err:
            raise ProblemError(ProblemCode.VALIDATION_ERROR, str(err)) from err
        token = self._page_tokens.open(caller.id, query, page_token)
        client = await self._client()
        invalid_token = ProblemError(ProblemCode.VALIDATION_ERROR, "The page token is not valid.")
        with engine_problems(names_a_session=False, invalid_argument=invalid_token):
            summaries, next_token = await list_summaries(
                client, query, limit, token, self._rpc_timeout
            )
        in_range = [
            s
            for s in summaries
            if (started_since is None or s.started_at >= started_since)
            and (started_until is None or s.started_at < started_until)
        ]
        return in_range, self._page_tokens.seal(caller.id, query, next_token)

    async def ping(self) -> None:
        """Raises unless the Temporal frontend answers for the configured namespace.

        A namespace-scoped call: a frontend that answers while the namespace is missing,
        or the credentials may not use it (an API key of another namespace), is not ready.
        Not retried, unlike every other call: a probe reports this moment, and asks again.
        """
        client = await self._client()
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace), timeout=timedelta(seconds=2)
        )


class _ReadBeside:
    """A read of the whole session sent beside an update, for a session this process
    holds no view of (it never served it, or restarted since, or another replica did).

    The answer shows the whole session while the update answers with its change
    alone; read after the update, the session would cost the answer a second round
    trip, and on a worker that no longer caches the session, a second wait behind
    its replay.
    """

    def __init__(self, handle: SessionHandle, rpc_timeout: timedelta) -> None:
        self._reading = asyncio.create_task(query_session(handle, Deadline(rpc_timeout)))
        # Nobody awaits a read whose update failed: its outcome is taken here.
        self._reading.add_done_callback(_take_outcome)

    async def view(self) -> SessionView | None:
        """The session as read, before or after the update; None if the read failed."""
        try:
            return await self._reading
        except Exception:
            # The read after the update, which answers each error with its problem, retries.
            return None

    def cancel(self) -> None:
        """Drops the read: the update failed or answered with the whole session."""
        self._reading.cancel()


def _take_outcome(task: asyncio.Task[SessionView]) -> None:
    if not task.cancelled():
        task.exception()


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

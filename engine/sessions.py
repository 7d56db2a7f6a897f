"""Sending a command to a session workflow and reading it back.

The one path the API, the tests and the bench's SDK driver take to a session.
Each command travels as the update `UPDATE_OF` names for its type, under an
update id that names the request (`update_id_of`), and is sent again across the
moment a run continues as new until the session's current run takes or refuses
it, within one deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import timedelta

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus as RawExecutionStatus
from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import QueryRejectCondition
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from engine.history import temporal_ending
from runtime.settings import Settings
from workflows.domain import ended_in_temporal
from workflows.shared import (
    RecordCheckRequest,
    SessionCommand,
    SessionView,
    TemporalEnding,
    UpdateResult,
)
from workflows.work_session import UPDATE_OF, WorkSessionWorkflow

log = logging.getLogger(__name__)

SessionHandle = WorkflowHandle[WorkSessionWorkflow, SessionView]

# The failure type the server gives updates a run closed before accepting or rejecting.
UNPROCESSED_UPDATE = "UnprocessedUpdate"
# Conditions of the engine that pass within a moment: worth another attempt in the deadline.
TRANSIENT = frozenset(
    (
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.FAILED_PRECONDITION,
    )
)


# A workflow in these states still takes updates, now or once its next run has started.
_OPEN = (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW)


class Deadline:
    """The time one request may spend on the engine, retries included."""

    def __init__(self, budget: timedelta) -> None:
        self._end = time.monotonic() + budget.total_seconds()
        self._backoff = 0.02

    def left(self) -> timedelta:
        """The time left for the next call, never less than a short minimum."""
        return timedelta(seconds=max(0.05, self._end - time.monotonic()))

    def passed(self) -> bool:
        """Tells whether the budget is spent."""
        return time.monotonic() >= self._end

    async def pause(self) -> None:
        """Waits before the next attempt, a little longer each time, within the budget."""
        await asyncio.sleep(min(self._backoff, max(0.0, self._end - time.monotonic())))
        self._backoff = min(self._backoff * 2, 0.5)


class SessionClosed(Exception):
    """The session's workflow has closed: no change can reach it any more."""


def session_handle(client: Client, session_id: str) -> SessionHandle:
    """The handle of a session's workflow, whichever run is current."""
    return client.get_workflow_handle_for(WorkSessionWorkflow.run, session_id)


def update_id_key(settings: Settings) -> bytes:
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


def update_id_of(command: SessionCommand, digest_key: bytes = b"") -> str:
    """The update id of a command: a check's idempotency key with its answer, or a fresh id.

    The engine answers an update id repeated inside a run with the first outcome
    without asking the workflow. With the answer's digest in the id, the same key
    with another check, answer or note reaches the workflow, which refuses it,
    while the same key with the same answer is answered with the first record.
    """
    if not isinstance(command, RecordCheckRequest) or command.idempotency_key is None:
        return str(uuid.uuid4())
    body = json.dumps([command.check_id, command.passed, command.value, command.note])
    digest = hmac.new(digest_key, body.encode(), hashlib.sha256).hexdigest()[:32]
    return f"check:{command.actor.user_id}:{command.idempotency_key}:{digest}"


def was_not_processed(err: WorkflowUpdateFailedError) -> bool:
    """Tells whether a run closed before it accepted or refused the update."""
    cause = err.cause
    return isinstance(cause, ApplicationError) and cause.type == UNPROCESSED_UPDATE


def dropped_with_its_workflow_task(err: RPCError) -> bool:
    """Tells whether the server dropped the update because the workflow task carrying it
    failed: a task that closes the run while a timer fires fails as `UnhandledCommand`,
    say. The update was not applied; the task's retry no longer carries it."""
    return err.status == RPCStatusCode.FAILED_PRECONDITION and any(
        detail.Is(WorkflowNotReadyFailure.DESCRIPTOR) for detail in err.grpc_status.details
    )


async def send_command(
    handle: SessionHandle, command: SessionCommand, deadline: Deadline, digest_key: bytes = b""
) -> UpdateResult:
    """Sends a command as its update until the session's current run takes or refuses it.

    In the moment a run continues as new the server rejects the updates it holds
    (`UnprocessedUpdate`) or the closing run is not found, and a workflow task that
    fails drops the updates it carried; none of these applied the update, so it is
    sent again, with the same id.
    Raises `WorkflowUpdateFailedError` for a refusal, `SessionClosed` once the
    workflow has closed, and the SDK's `RPCError` or `RPCTimeoutOrCancelledError`
    when the engine does not answer in time.
    """
    update_id = update_id_of(command, digest_key)
    while True:
        try:
            result: UpdateResult = await handle.execute_update(
                UPDATE_OF[type(command)], command, id=update_id, rpc_timeout=deadline.left()
            )
            return result
        except WorkflowUpdateFailedError as err:
            if not was_not_processed(err) or deadline.passed():
                raise
            log.info("update %s met a run continuing as new; sending it again", update_id)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                if await _has_closed(handle, deadline):
                    raise SessionClosed(handle.id) from err
                log.info("update %s met a closing run; sending it again", update_id)
            elif dropped_with_its_workflow_task(err):
                log.info(
                    "update %s was dropped with a failed workflow task; sending it again", update_id
                )
            # More than the engine's updates in flight for one session is brief too.
            elif err.status != RPCStatusCode.RESOURCE_EXHAUSTED:
                raise
            if deadline.passed():
                raise
        await deadline.pause()


async def _has_closed(handle: SessionHandle, deadline: Deadline) -> bool:
    """Tells a closed workflow from one whose run is handing over to the next."""
    described = await handle.describe(rpc_timeout=deadline.left())
    return described.status not in _OPEN


async def query_session(handle: SessionHandle, deadline: Deadline) -> SessionView:
    """Reads the whole session, waiting out a new run's first workflow task within the deadline.

    Raises the SDK's errors (`RPCError` NOT_FOUND: no such session); SDK 1.35
    raises `ValueError` for a workflow an operator paused in Temporal
    (`is_paused_by_operator` tells).
    """
    while True:
        try:
            return await handle.query(WorkSessionWorkflow.get_session, rpc_timeout=deadline.left())
        except RPCError as err:
            if err.status not in TRANSIENT or deadline.passed():
                raise
        await deadline.pause()


async def read_session(
    client: Client, session_id: str, deadline: Deadline
) -> tuple[SessionView, TemporalEnding | None]:
    """The session as the API shows it, and how Temporal's own tools ended it if they did.

    A workflow closed without its consent (terminated, timed out, failed) still
    answers the query with its last state; the session is then shown ended.
    """
    handle = session_handle(client, session_id)
    reject: QueryRejectCondition | None = QueryRejectCondition.NOT_COMPLETED_CLEANLY
    ending: TemporalEnding | None = None
    while True:
        try:
            view = await handle.query(
                WorkSessionWorkflow.get_session,
                rpc_timeout=deadline.left(),
                reject_condition=reject,
            )
        except WorkflowQueryRejectedError:
            # Closed without the workflow's consent: its last state, and how it closed.
            ending = await temporal_ending(client, client.namespace, session_id)
            if ending is not None:
                reject = None
            elif deadline.passed():
                raise
            else:
                # A run that continued as new in this instant: ask the new run.
                await deadline.pause()
            continue
        except RPCError as err:
            if err.status not in TRANSIENT or deadline.passed():
                raise
            await deadline.pause()
            continue
        if ending is not None:
            return ended_in_temporal(view, ending)[0], ending
        return view, None


async def is_paused_by_operator(client: Client, session_id: str, timeout: timedelta) -> bool:
    """Tells whether an operator paused the session's workflow in Temporal itself."""
    request = DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=session_id)
    )
    response = await client.workflow_service.describe_workflow_execution(
        request, retry=True, timeout=timeout
    )
    status = response.workflow_execution_info.status
    return status == RawExecutionStatus.WORKFLOW_EXECUTION_STATUS_PAUSED

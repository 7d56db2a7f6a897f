"""What a workflow's own history tells about how Temporal's tools ended it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.exceptions import FailureError

from engine.codec import UndecryptablePayload
from workflows.shared import TemporalClosure, TemporalEnding

# A cancel request sits a few events before the end of a run, and a run is a few
# hundred events long: these pages reach back further than any run goes.
_EVENTS_PER_PAGE = 100
_PAGES_TO_SEARCH = 10


async def _newest_first(
    client: Client, namespace: str, execution: WorkflowExecution
) -> AsyncIterator[HistoryEvent]:
    token = b""
    for _page in range(_PAGES_TO_SEARCH):
        response = await client.workflow_service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(
                namespace=namespace,
                execution=execution,
                maximum_page_size=_EVENTS_PER_PAGE,
                next_page_token=token,
            ),
            retry=True,
        )
        for event in response.history.events:
            yield event
        token = response.next_page_token
        if not token:
            return


async def cancel_request_identity(
    client: Client, namespace: str, workflow_id: str, run_id: str = ""
) -> str | None:
    """The identity of whoever requested the run's cancellation, if the engine recorded one."""
    execution = WorkflowExecution(workflow_id=workflow_id, run_id=run_id)
    async for event in _newest_first(client, namespace, execution):
        if event.HasField("workflow_execution_cancel_requested_event_attributes"):
            return event.workflow_execution_cancel_requested_event_attributes.identity or None
    return None


async def temporal_ending(
    client: Client, namespace: str, workflow_id: str
) -> TemporalEnding | None:
    """How Temporal ended the session's latest run without the workflow's consent, if it did.

    None for a run still open, completed, or continued as new: those the workflow
    ended itself and its own state says so.
    """
    execution = WorkflowExecution(workflow_id=workflow_id)
    async for last in _newest_first(client, namespace, execution):
        at = last.event_time.ToDatetime(tzinfo=UTC)
        if last.HasField("workflow_execution_terminated_event_attributes"):
            terminated = last.workflow_execution_terminated_event_attributes
            return TemporalEnding(
                TemporalClosure.TERMINATED,
                at,
                terminated.identity or None,
                terminated.reason or None,
            )
        if last.HasField("workflow_execution_canceled_event_attributes"):
            identity = await cancel_request_identity(client, namespace, workflow_id)
            return TemporalEnding(TemporalClosure.CANCELLED, at, identity)
        if last.HasField("workflow_execution_timed_out_event_attributes"):
            return TemporalEnding(TemporalClosure.TIMED_OUT, at)
        if last.HasField("workflow_execution_failed_event_attributes"):
            failure = last.workflow_execution_failed_event_attributes.failure
            message = await failure_message(client.data_converter, failure)
            return TemporalEnding(TemporalClosure.FAILED, at, None, message)
        return None
    return None


async def failure_message(converter: DataConverter, failure: Failure) -> str | None:
    """A recorded failure's message as it was raised.

    With payloads encrypted the message travels in the failure's encoded attributes
    and the history shows only "Encoded failure"; the converter decrypts it. Without
    the key the history's own text is all there is.
    """
    recorded = Failure()
    recorded.CopyFrom(failure)
    try:
        raised = await converter.decode_failure(recorded)
    except UndecryptablePayload:
        return failure.message or None
    message = raised.message if isinstance(raised, FailureError) else str(raised)
    return message or None

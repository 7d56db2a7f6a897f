"""Reads who requested a session's cancellation in Temporal, for its audit trail."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from engine.history import cancel_request_identity
from workflows.shared import WorkflowRun


class CancelRequests:
    """Looks cancel requests up in workflow histories through the worker's client.

    Workflow code sees a cancellation's reason but not its sender; the
    history's cancel-request event names the sender's identity.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name="identify_cancel_request")
    async def identify_cancel_request(self, run: WorkflowRun) -> str | None:
        """Returns the identity that requested the run's cancellation, if the engine kept one."""
        return await cancel_request_identity(
            self._client, self._client.namespace, run.workflow_id, run.run_id
        )

"""The bare engine: a trivial session workflow to measure the product's path against.

It takes the same start input and the same update requests as the product's
workflow and answers each with a counter: no activity, memo or search attribute
upsert. `python -m bench.bare ADDRESS TASK_QUEUE [CACHE]` runs its worker in a process of
its own, as the product's worker runs; CACHE sets `max_cached_workflows` (the SDK's
default otherwise).
"""

from __future__ import annotations

import asyncio
import sys
import uuid

from temporalio import workflow
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from bench.drivers import RPC_TIMEOUT, SdkDriver
    from engine.client import connect
    from engine.sessions import update_id_of
    from runtime.settings import Settings
    from workflows.shared import (
        AbortRequest,
        CompleteRequest,
        PauseRequest,
        RecordCheckRequest,
        ResumeRequest,
        SessionCommand,
        StartSessionInput,
    )
    from workflows.work_session import UPDATE_OF


@workflow.defn
class BareSessionWorkflow:
    """Counts the messages of one session until it is completed or aborted."""

    @workflow.init
    def __init__(self, input: StartSessionInput) -> None:
        self._changes = 0
        self._finished = False

    @workflow.run
    async def run(self, input: StartSessionInput) -> int:
        """Waits for the end of the session."""
        await workflow.wait_condition(lambda: self._finished and workflow.all_handlers_finished())
        return self._changes

    def _count(self, command: SessionCommand) -> int:
        self._changes += 1
        self._finished = isinstance(command, AbortRequest | CompleteRequest)
        return self._changes

    @workflow.update
    def pause(self, request: PauseRequest) -> int:
        """Counts a pause."""
        return self._count(request)

    @workflow.update
    def resume(self, request: ResumeRequest) -> int:
        """Counts a resume."""
        return self._count(request)

    @workflow.update
    def abort(self, request: AbortRequest) -> int:
        """Counts an abort and ends."""
        return self._count(request)

    @workflow.update
    def complete(self, request: CompleteRequest) -> int:
        """Counts a completion and ends."""
        return self._count(request)

    @workflow.update
    def record_check(self, request: RecordCheckRequest) -> int:
        """Counts a check."""
        return self._count(request)


class BareDriver(SdkDriver):
    """The SDK driver's lifecycle, sent to the bare workflow."""

    async def start(self) -> str:
        """Starts the bare workflow with the same input the product's start sends."""
        session_id = str(uuid.uuid4())
        await self._client.start_workflow(
            BareSessionWorkflow.run,
            StartSessionInput(session_id=session_id, worker_id=self._user_id, sop=self._sop),
            id=session_id,
            task_queue=self._task_queue,
            rpc_timeout=RPC_TIMEOUT,
        )
        return session_id

    async def _send(self, session_id: str, command: SessionCommand) -> None:
        # Update names are the product's; the bare workflow answers a counter and never
        # continues as new, so one call is the whole path.
        name: str = UPDATE_OF[type(command)].__name__
        await self._client.get_workflow_handle(session_id).execute_update(
            name, command, id=update_id_of(command), result_type=int, rpc_timeout=RPC_TIMEOUT
        )


# `Worker`'s own default of `max_cached_workflows`.
SDK_DEFAULT_CACHE = 1000


async def _serve(address: str, task_queue: str, max_cached_workflows: int) -> None:
    client = await connect(Settings(temporal_address=address))
    await Worker(
        client,
        task_queue=task_queue,
        workflows=[BareSessionWorkflow],
        max_cached_workflows=max_cached_workflows,
    ).run()


if __name__ == "__main__":
    cache = int(sys.argv[3]) if len(sys.argv) > 3 else SDK_DEFAULT_CACHE
    asyncio.run(_serve(sys.argv[1], sys.argv[2], cache))

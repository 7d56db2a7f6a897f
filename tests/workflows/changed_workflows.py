"""Two versions of one change to the workflow's logic, for the replay test.

A module of its own: the workflow sandbox re-imports it, so it does no I/O.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    # Passed through like the workflow's own imports, so both see the same payload classes.
    from workflows.shared import SessionView, StartSessionInput
from workflows.whole_views import WholeViews
from workflows.work_session import WorkSessionWorkflow


@workflow.defn(name="WorkSessionWorkflow")
class UnguardedChange(WorkSessionWorkflow):
    """A logic change shipped without a patch: one new timer before the session starts."""

    @workflow.run
    async def run(self, input: StartSessionInput) -> SessionView:
        await workflow.sleep(0.01)
        return await super().run(input)


@workflow.defn(name="WorkSessionWorkflow")
class PatchedChange(WorkSessionWorkflow):
    """The same change behind `workflow.patched`, the project's versioning policy."""

    @workflow.run
    async def run(self, input: StartSessionInput) -> SessionView:
        if workflow.patched("grace-timer"):
            await workflow.sleep(0.01)
        return await super().run(input)


@workflow.defn(name="WorkSessionWorkflow")
class OlderRelease(WorkSessionWorkflow):
    """The model of releases before `compact-history`: whole views and a new run per pause."""

    @workflow.init
    def __init__(self, input: StartSessionInput) -> None:
        super().__init__(input)
        self._whole_views = WholeViews(self._session)

    @workflow.run
    async def run(self, input: StartSessionInput) -> SessionView:
        return await super().run(input)


@workflow.defn(name="WorkSessionWorkflow")
class BeforeCancelWasAnAbort(WorkSessionWorkflow):
    """The release before `cancel-is-an-abort`: a cancellation closes the workflow as Canceled."""

    @workflow.run
    async def run(self, input: StartSessionInput) -> SessionView:
        return await self._run_compact(input)


@workflow.defn(name="WorkSessionWorkflow")
class AuditByActivity(WorkSessionWorkflow):
    """A run started before `audit-in-workflow-task`: each audit write is an activity
    task, and updates reach the run while it is written."""

    @workflow.init
    def __init__(self, input: StartSessionInput) -> None:
        super().__init__(input)
        self._audit_in_task = False

    @workflow.run
    async def run(self, input: StartSessionInput) -> SessionView:
        return await super().run(input)

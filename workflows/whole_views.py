"""The run model of releases before `compact-history`, kept only for the runs they started.

Those runs answer every update with the whole session, upsert the list memo on
every change and continue as new on every pause. `WorkSessionWorkflow` uses this
model only where `workflow.patched("compact-history")` is false: when it replays
a history from those releases, or carries on a run they started. No new run ever
reaches it. docs/versioning.md dates its removal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as sa
    from workflows.domain import WorkSession
    from workflows.shared import (
        SUMMARY_MEMO_KEY,
        AuditEventType,
        SessionStatus,
        SessionSummary,
        SessionView,
    )

# The patch of the last change made to this model: old histories lack it.
CONTINUE_AS_NEW_WHEN_PAUSED = "continue-as-new-when-paused"


class WholeViews:
    """What a run of the older model does differently: its answers and its loop."""

    def __init__(self, session: WorkSession) -> None:
        self._session = session
        self._paused_in_this_run = False

    def answer(self, summary: SessionSummary, change_type: AuditEventType) -> SessionView:
        """Publishes an accepted change at once and answers with the whole session."""
        workflow.upsert_memo({SUMMARY_MEMO_KEY: summary})
        if change_type != AuditEventType.CHECK_RECORDED:
            workflow.upsert_search_attributes([sa.SESSION_STATUS.value_set(summary.status.value)])
        if summary.status == SessionStatus.PAUSED:
            self._paused_in_this_run = True
        return self._session.view()

    async def run(
        self,
        audit_pending: Callable[[], bool],
        flush_audit: Callable[[], Awaitable[None]],
        continue_as_new: Callable[[], Awaitable[NoReturn]],
    ) -> SessionView:
        """Writes each change's audit event as it comes and starts a new run on every pause."""
        while True:
            await workflow.wait_condition(
                lambda: (
                    audit_pending()
                    or self._session.is_terminal
                    or self._paused_in_this_run
                    or workflow.info().is_continue_as_new_suggested()
                )
            )
            if workflow.info().is_continue_as_new_suggested() and not self._session.is_terminal:
                await continue_as_new()
            if audit_pending():
                await flush_audit()
                continue
            if self._paused_in_this_run:
                self._paused_in_this_run = False
                if self._session.status == SessionStatus.PAUSED and workflow.patched(
                    CONTINUE_AS_NEW_WHEN_PAUSED
                ):
                    await continue_as_new()
                continue
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not audit_pending():
                return self._session.view()

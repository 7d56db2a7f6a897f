"""Every stored history replays under the current workflow code (DESIGN section 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from engine.client import DATA_CONVERTER
from tests.workflows.changed_workflows import PatchedChange, UnguardedChange
from workflows.work_session import (
    AUDIT_IN_WORKFLOW_TASK,
    CANCEL_IS_AN_ABORT,
    COMPACT_HISTORY,
    CONTINUE_AS_NEW_BEFORE_AUDIT,
    FOLDED_PATCHES,
    STATUS_WITH_AUDIT_WRITE,
    WorkSessionWorkflow,
)

HISTORY_DIR = Path(__file__).resolve().parent.parent / "histories"
HISTORIES = sorted(HISTORY_DIR.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


async def replay(workflow_class: type, path: Path) -> None:
    replayer = Replayer(workflows=[workflow_class], data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(load(path))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_stored_history_replays_under_current_code(path: Path) -> None:
    await replay(WorkSessionWorkflow, path)


def test_stored_histories_cover_every_message_and_continue_as_new() -> None:
    text = "\n".join(p.read_text() for p in HISTORIES)
    for update in ("pause", "resume", "abort", "complete", "record_check"):
        assert f'"name": "{update}"' in text, update
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW" in text
    # A cancellation requested in Temporal, which the session turns into an abort.
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED" in text
    # Histories from before the continue-as-new-when-paused patch and with its marker.
    assert "EVENT_TYPE_MARKER_RECORDED" in text
    assert any("EVENT_TYPE_MARKER_RECORDED" not in p.read_text() for p in HISTORIES)


def patches_marked(path: Path) -> set[str]:
    """The patch ids whose markers a stored history holds."""
    return {
        str(marker["id"])
        for event in load(path).events
        if event.HasField("marker_recorded_event_attributes")
        for marker in DATA_CONVERTER.payload_converter.from_payloads(
            event.marker_recorded_event_attributes.details["patch-data"].payloads
        )
    }


@pytest.mark.parametrize(
    "patch",
    [
        COMPACT_HISTORY,
        CANCEL_IS_AN_ABORT,
        AUDIT_IN_WORKFLOW_TASK,
        CONTINUE_AS_NEW_BEFORE_AUDIT,
        FOLDED_PATCHES,
        STATUS_WITH_AUDIT_WRITE,
    ],
)
def test_a_stored_history_takes_the_new_branch_of_every_patch(patch: str) -> None:
    assert any(patch in patches_marked(path) for path in HISTORIES)


async def test_a_change_without_a_patch_fails_replay_and_the_patched_change_replays() -> None:
    oldest = HISTORIES[0]

    with pytest.raises(NondeterminismError):
        await replay(UnguardedChange, oldest)
    await replay(PatchedChange, oldest)

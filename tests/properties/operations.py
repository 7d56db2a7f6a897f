"""Random session commands for property tests: each runs on the domain object and on the workflow.

Commands come from the owner, another worker and a supervisor; check answers hit
unknown ids, the wrong kind of answer, out-of-range and non-finite values, and
texts over their limits, so most sequences mix accepted and refused commands.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from tests.scenarios import SOP
from workflows.domain import MAX_NOTE_LENGTH, MAX_REASON_LENGTH
from workflows.shared import (
    AbortRequest,
    Actor,
    AuditEventType,
    CheckKind,
    CompleteRequest,
    PauseRequest,
    RecordCheckRequest,
    ResumeRequest,
    SessionCommand,
)

OWNER = Actor("owner-1", ["worker"])
OTHER_WORKER = Actor("other-worker", ["worker"])
SUPERVISOR = Actor("some-supervisor", ["supervisor"])

CHECK_KINDS = {check.id: check.kind for step in SOP.steps for check in step.checks}
REQUIRED_CHECKS = [c.id for s in SOP.steps for c in s.checks if c.required]


Command = SessionCommand

EVENT_TYPE = {
    PauseRequest: AuditEventType.SESSION_PAUSED,
    ResumeRequest: AuditEventType.SESSION_RESUMED,
    AbortRequest: AuditEventType.SESSION_ABORTED,
    CompleteRequest: AuditEventType.SESSION_COMPLETED,
    RecordCheckRequest: AuditEventType.CHECK_RECORDED,
}


def _actors() -> st.SearchStrategy[Actor]:
    # Mostly the owner, so that sequences get somewhere.
    return st.sampled_from([OWNER, OWNER, OWNER, OWNER, OTHER_WORKER, SUPERVISOR])


def _texts(limit: int) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.text(max_size=12), st.just("t" * (limit + 1)))


def _values(finite_only: bool) -> st.SearchStrategy[float | None]:
    values = st.floats(min_value=-10, max_value=20, allow_nan=False)
    if finite_only:
        return st.one_of(st.none(), values)
    return st.one_of(st.none(), values, st.sampled_from([math.nan, math.inf, -math.inf]))


def _keys() -> st.SearchStrategy[str | None]:
    # Mostly none: every reuse of a key is a replay that records nothing new.
    return st.sampled_from([None, None, None, None, "key-a", "key-b"])


def _fitting_answer(check_id: str) -> st.SearchStrategy[RecordCheckRequest]:
    """An answer of the right kind from the owner, which the session accepts when in progress."""
    if CHECK_KINDS[check_id] == CheckKind.CONFIRM:
        answer = st.fixed_dictionaries(
            {"passed": st.sampled_from([True, True, False]), "value": st.none()}
        )
    else:
        answer = st.fixed_dictionaries(
            {"passed": st.none(), "value": st.floats(min_value=-2, max_value=8)}
        )
    return answer.flatmap(
        lambda a: st.builds(
            RecordCheckRequest,
            actor=st.just(OWNER),
            check_id=st.just(check_id),
            passed=st.just(a["passed"]),
            value=st.just(a["value"]),
            note=st.none(),
            idempotency_key=_keys(),
        )
    )


def commands(finite_only: bool = False) -> st.SearchStrategy[Command]:
    """Any command; `finite_only` for runs through Temporal, whose JSON has no NaN."""
    check_ids = st.sampled_from([*CHECK_KINDS, "no-such-check"])
    kinds: dict[str, tuple[int, st.SearchStrategy[Command]]] = {
        "fitting answer": (10, st.sampled_from(list(CHECK_KINDS)).flatmap(_fitting_answer)),
        "complete": (3, st.builds(CompleteRequest, _actors())),
        "resume": (3, st.builds(ResumeRequest, _actors())),
        "pause": (2, st.builds(PauseRequest, _actors(), _texts(MAX_REASON_LENGTH))),
        "any answer": (
            3,
            st.builds(
                RecordCheckRequest,
                _actors(),
                check_ids,
                st.one_of(st.none(), st.booleans()),
                _values(finite_only),
                _texts(MAX_NOTE_LENGTH),
                _keys(),
            ),
        ),
        "abort": (1, st.builds(AbortRequest, _actors(), _texts(MAX_REASON_LENGTH))),
    }
    # Weighted, and the simplest first (Hypothesis favours it), so that many
    # sequences pass every required check and complete.
    weighted = [name for name, (weight, _) in kinds.items() for _ in range(weight)]
    return st.sampled_from(weighted).flatmap(lambda name: kinds[name][1])


def steps(finite_only: bool = False, max_size: int = 40) -> st.SearchStrategy[list[Any]]:
    """Commands, each after a pause of up to a day (time matters for durations)."""
    gaps = st.floats(min_value=0, max_value=86_400).map(lambda s: timedelta(seconds=s))
    return st.lists(
        st.tuples(gaps, commands(finite_only)), min_size=max_size // 4, max_size=max_size
    )


def passed_required(session_checks: list[Any]) -> int:
    """Counts required checks whose latest record passed, straight from the records."""
    latest: dict[str, bool] = {}
    for record in session_checks:
        latest[record.check_id] = record.passed
    return sum(1 for check_id in REQUIRED_CHECKS if latest.get(check_id, False))

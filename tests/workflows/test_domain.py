"""The session state machine, without a server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import sop_snapshot
from workflows.domain import DomainError, WorkSession, durations
from workflows.shared import (
    Actor,
    AuditEventType,
    SessionStatus,
)

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
OWNER = Actor("alice", ["worker"])
OTHER = Actor("bob", ["worker"])
SUPERVISOR = Actor("sam", ["supervisor"])

SOP = sop_snapshot("loto", 3, "Lockout")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def new_session() -> WorkSession:
    session, started = WorkSession.start("s-1", "alice", SOP, T0)
    assert started.type == AuditEventType.SESSION_STARTED
    assert started.seq == 1
    return session


def codes_of(call: object) -> str:
    with pytest.raises(DomainError) as refused:
        assert callable(call)
        call()
    return refused.value.code


def test_a_new_session_is_in_progress_with_nothing_recorded() -> None:
    session = new_session()
    assert session.status == SessionStatus.IN_PROGRESS
    assert session.progress().checks_passed == 0
    assert session.progress().checks_required == 3
    assert session.progress().checks_total == 4
    assert session.current_step_id() == "isolate"


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (SessionStatus.IN_PROGRESS, {"pause", "abort", "record_check"}),
        (SessionStatus.PAUSED, {"resume", "abort"}),
        (SessionStatus.ABORTED, set()),
        (SessionStatus.COMPLETED, set()),
    ],
)
def test_each_status_allows_exactly_its_commands(status: SessionStatus, allowed: set[str]) -> None:
    session = new_session()
    session.state.status = status
    attempts: dict[str, Callable[[], object]] = {
        "pause": lambda: session.check_pause(OWNER, None),
        "resume": lambda: session.check_resume(OWNER),
        "abort": lambda: session.check_abort(OWNER, None),
        "record_check": lambda: session.check_record(OWNER, "breaker-off", True, None, None),
    }
    for command, attempt in attempts.items():
        if command in allowed:
            attempt()
        else:
            assert codes_of(attempt) == "invalid_transition", command


def test_only_the_owner_may_change_and_others_learn_nothing() -> None:
    session = new_session()
    assert codes_of(lambda: session.pause(OTHER, None, at(1))) == "session_not_found"
    assert codes_of(lambda: session.pause(SUPERVISOR, None, at(1))) == "forbidden"
    assert session.status == SessionStatus.IN_PROGRESS


def test_pause_resume_keeps_checks_and_counts_paused_time_apart() -> None:
    session = new_session()
    session.record_check(OWNER, "breaker-off", True, None, "ok", at(5))
    session.pause(OWNER, "lunch", at(10))
    assert session.summary().pause_reason == "lunch"
    assert durations(session.summary(), at(40)) == (600.0, 1800.0)
    session.resume(OWNER, at(40))
    session.record_check(OWNER, "residual-v", None, 1.5, None, at(45))

    assert [r.check_id for r in session.state.checks] == ["breaker-off", "residual-v"]
    assert durations(session.summary(), at(50)) == (20 * 60.0, 30 * 60.0)
    assert session.summary().paused_at is None
    assert [h.status for h in session.state.history] == [
        SessionStatus.IN_PROGRESS,
        SessionStatus.PAUSED,
        SessionStatus.IN_PROGRESS,
    ]


def test_abort_while_paused_stops_both_clocks() -> None:
    session = new_session()
    session.pause(OWNER, None, at(10))
    event = session.abort(OWNER, "wrong press", at(20))

    assert event.type == AuditEventType.SESSION_ABORTED
    assert event.data == {"reason": "wrong press"}
    assert session.is_terminal
    assert durations(session.summary(), at(500)) == (600.0, 600.0)


def test_measurements_are_judged_by_their_limits_and_redone_checks_count_latest() -> None:
    session = new_session()
    session.record_check(OWNER, "breaker-off", True, None, None, at(1))
    session.record_check(OWNER, "try-start", True, None, None, at(1.5))
    session.record_check(OWNER, "residual-v", None, 12.0, None, at(2))
    assert session.missing_required_checks() == ["residual-v"]
    assert codes_of(lambda: session.complete(OWNER, at(3))) == "checks_incomplete"

    session.record_check(OWNER, "residual-v", None, 5.0, None, at(4))

    assert [r.passed for r in session.state.checks] == [True, True, False, True]
    assert session.current_step_id() is None
    event = session.complete(OWNER, at(5))
    assert event.seq == 6
    assert session.status == SessionStatus.COMPLETED


@pytest.mark.parametrize(
    ("check_id", "passed", "value", "code"),
    [
        ("nope", True, None, "unknown_check"),
        ("breaker-off", None, None, "invalid_check_answer"),
        ("breaker-off", True, 1.0, "invalid_check_answer"),
        ("residual-v", True, None, "invalid_check_answer"),
        ("residual-v", None, float("nan"), "invalid_check_answer"),
        ("residual-v", None, float("inf"), "invalid_check_answer"),
    ],
)
def test_answers_must_fit_the_check(
    check_id: str, passed: bool | None, value: float | None, code: str
) -> None:
    session = new_session()
    refused = codes_of(lambda: session.record_check(OWNER, check_id, passed, value, None, at(1)))
    assert refused == code
    assert session.state.checks == []


def test_a_repeated_idempotency_key_records_nothing_new() -> None:
    session = new_session()
    first = session.record_check(OWNER, "breaker-off", True, None, None, at(1), "k1")
    again = session.record_check(OWNER, "breaker-off", True, None, None, at(2), "k1")

    assert first is not None
    assert again is None
    assert len(session.state.checks) == 1


def test_text_limits_are_enforced() -> None:
    session = new_session()
    assert codes_of(lambda: session.pause(OWNER, "x" * 501, at(1))) == "text_too_long"
    too_long_note = "n" * 2001
    assert (
        codes_of(
            lambda: session.record_check(OWNER, "breaker-off", True, None, too_long_note, at(1))
        )
        == "text_too_long"
    )


def test_audit_sequence_numbers_follow_every_change() -> None:
    session = new_session()
    events = [
        session.record_check(OWNER, "breaker-off", True, None, None, at(1)),
        session.pause(OWNER, None, at(2)),
        session.resume(OWNER, at(3)),
        session.abort(OWNER, None, at(4)),
    ]
    assert [e.seq for e in events if e] == [2, 3, 4, 5]
    assert [e.type for e in events if e] == [
        AuditEventType.CHECK_RECORDED,
        AuditEventType.SESSION_PAUSED,
        AuditEventType.SESSION_RESUMED,
        AuditEventType.SESSION_ABORTED,
    ]

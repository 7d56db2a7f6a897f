"""The session state machine, without a server."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import sop_snapshot
from workflows.domain import (
    MAX_REASON_LENGTH,
    MAX_RECORDS_PER_SESSION,
    MAX_SESSION_TEXT_BYTES,
    MAX_STATUS_CHANGES_PER_SESSION,
    TEMPORAL_ACTOR,
    DomainError,
    WorkSession,
    durations,
    ended_in_temporal,
)
from workflows.shared import (
    AbortRequest,
    Actor,
    AuditEventType,
    CompleteRequest,
    PauseRequest,
    RecordCheckRequest,
    ResumeRequest,
    SessionStatus,
    TemporalClosure,
    TemporalEnding,
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
        "pause": lambda: session.refuse(PauseRequest(OWNER)),
        "resume": lambda: session.refuse(ResumeRequest(OWNER)),
        "abort": lambda: session.refuse(AbortRequest(OWNER)),
        "record_check": lambda: session.refuse(RecordCheckRequest(OWNER, "breaker-off", True)),
    }
    for command, attempt in attempts.items():
        if command in allowed:
            attempt()
        else:
            assert codes_of(attempt) == "invalid_transition", command


def test_only_the_owner_may_change_and_others_learn_nothing() -> None:
    session = new_session()
    assert codes_of(lambda: session.apply(PauseRequest(OTHER, None), at(1))) == "session_not_found"
    assert codes_of(lambda: session.apply(PauseRequest(SUPERVISOR, None), at(1))) == "forbidden"
    assert session.status == SessionStatus.IN_PROGRESS


def test_pause_resume_keeps_checks_and_counts_paused_time_apart() -> None:
    session = new_session()
    session.apply(RecordCheckRequest(OWNER, "breaker-off", True, None, "ok"), at(5))
    session.apply(PauseRequest(OWNER, "lunch"), at(10))
    assert session.summary().pause_reason == "lunch"
    assert durations(session.summary(), at(40)) == (600.0, 1800.0)
    session.apply(ResumeRequest(OWNER), at(40))
    session.apply(RecordCheckRequest(OWNER, "residual-v", None, 1.5, None), at(45))

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
    session.apply(PauseRequest(OWNER, None), at(10))
    event = session.apply(AbortRequest(OWNER, "wrong press"), at(20)).event

    assert event is not None
    assert event.type == AuditEventType.SESSION_ABORTED
    assert event.data == {"reason": "wrong press"}
    assert session.is_terminal
    assert durations(session.summary(), at(500)) == (600.0, 600.0)


def test_measurements_are_judged_by_their_limits_and_redone_checks_count_latest() -> None:
    session = new_session()
    session.apply(RecordCheckRequest(OWNER, "breaker-off", True, None, None), at(1))
    session.apply(RecordCheckRequest(OWNER, "try-start", True, None, None), at(1.5))
    session.apply(RecordCheckRequest(OWNER, "residual-v", None, 12.0, None), at(2))
    assert session.missing_required_checks() == ["residual-v"]
    assert codes_of(lambda: session.apply(CompleteRequest(OWNER), at(3))) == "checks_incomplete"

    session.apply(RecordCheckRequest(OWNER, "residual-v", None, 5.0, None), at(4))

    assert [r.passed for r in session.state.checks] == [True, True, False, True]
    assert session.current_step_id() is None
    event = session.apply(CompleteRequest(OWNER), at(5)).event
    assert event is not None
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
    refused = codes_of(
        lambda: session.apply(RecordCheckRequest(OWNER, check_id, passed, value, None), at(1))
    )
    assert refused == code
    assert session.state.checks == []


def test_a_repeated_idempotency_key_records_nothing_new() -> None:
    session = new_session()
    first = session.apply(RecordCheckRequest(OWNER, "breaker-off", True, None, None, "k1"), at(1))
    again = session.apply(RecordCheckRequest(OWNER, "breaker-off", True, None, None, "k1"), at(2))

    assert first.event is not None
    assert again.event is None
    assert len(session.state.checks) == 1
    assert again.change.check == first.change.check == session.state.checks[0]
    assert again.change.version == first.change.version


def test_text_limits_are_enforced() -> None:
    session = new_session()
    assert codes_of(lambda: session.apply(PauseRequest(OWNER, "x" * 501), at(1))) == "text_too_long"
    too_long_note = "n" * 2001
    assert (
        codes_of(
            lambda: session.apply(
                RecordCheckRequest(OWNER, "breaker-off", True, None, too_long_note), at(1)
            )
        )
        == "text_too_long"
    )


def test_audit_sequence_numbers_follow_every_change() -> None:
    session = new_session()
    events = [
        session.apply(RecordCheckRequest(OWNER, "breaker-off", True, None, None), at(1)).event,
        session.apply(PauseRequest(OWNER, None), at(2)).event,
        session.apply(ResumeRequest(OWNER), at(3)).event,
        session.apply(AbortRequest(OWNER, None), at(4)).event,
    ]
    assert [e.seq for e in events if e] == [2, 3, 4, 5]
    assert [e.type for e in events if e] == [
        AuditEventType.CHECK_RECORDED,
        AuditEventType.SESSION_PAUSED,
        AuditEventType.SESSION_RESUMED,
        AuditEventType.SESSION_ABORTED,
    ]


def test_failed_checks_count_latest_records_optional_ones_included() -> None:
    session = new_session()
    session.apply(RecordCheckRequest(OWNER, "residual-v", value=9.0), at(1))
    session.apply(RecordCheckRequest(OWNER, "photo", passed=False), at(2))
    assert session.progress().checks_failed == 2

    session.apply(RecordCheckRequest(OWNER, "residual-v", value=1.0), at(3))

    assert session.progress().checks_failed == 1
    assert session.summary().progress.checks_failed == 1


def test_an_idempotency_key_reused_with_another_answer_is_refused() -> None:
    session = new_session()
    session.apply(RecordCheckRequest(OWNER, "residual-v", value=1.0, idempotency_key="k1"), at(1))

    refused = codes_of(
        lambda: session.apply(
            RecordCheckRequest(OWNER, "residual-v", value=7.0, idempotency_key="k1"), at(2)
        )
    )

    assert refused == "idempotency_key_reused"
    assert [r.value for r in session.state.checks] == [1.0]


@pytest.mark.parametrize(
    "again",
    [
        RecordCheckRequest(OWNER, "residual-v", value=7.0, idempotency_key="k1"),
        RecordCheckRequest(OWNER, "try-start", passed=True, idempotency_key="k1"),
        RecordCheckRequest(OWNER, "residual-v", value=1.0, note="again", idempotency_key="k1"),
    ],
    ids=["another answer", "another check", "another note"],
)
def test_an_idempotency_key_names_one_record(again: RecordCheckRequest) -> None:
    session = new_session()
    session.apply(RecordCheckRequest(OWNER, "residual-v", value=1.0, idempotency_key="k1"), at(1))

    assert codes_of(lambda: session.refuse(again)) == "idempotency_key_reused"
    assert codes_of(lambda: session.apply(again, at(2))) == "idempotency_key_reused"
    assert [(r.check_id, r.value, r.note) for r in session.state.checks] == [
        ("residual-v", 1.0, None)
    ]


def test_a_session_refuses_records_beyond_its_bounds_but_still_ends() -> None:
    session = new_session()
    session.apply(RecordCheckRequest(OWNER, "residual-v", value=1.0), at(0))
    session.apply(RecordCheckRequest(OWNER, "try-start", True), at(0.5))
    for minute in range(2, MAX_RECORDS_PER_SESSION):
        session.apply(RecordCheckRequest(OWNER, "breaker-off", True), at(minute))
    full = codes_of(lambda: session.apply(RecordCheckRequest(OWNER, "breaker-off", True), at(600)))

    assert full == "session_limit_reached"
    session.apply(PauseRequest(OWNER, "full"), at(601))
    session.apply(ResumeRequest(OWNER), at(602))
    session.apply(CompleteRequest(OWNER), at(603))
    assert session.status == SessionStatus.COMPLETED


def test_notes_of_four_byte_characters_fill_the_text_budget_then_are_refused() -> None:
    session = new_session()
    note = "\U0001f6a7" * 2000
    recorded = 0
    while True:
        try:
            session.apply(RecordCheckRequest(OWNER, "breaker-off", True, note=note), at(recorded))
        except DomainError as refused:
            assert refused.code == "session_limit_reached"
            break
        recorded += 1

    assert recorded == MAX_SESSION_TEXT_BYTES // (4 * 2000 + 2)
    session.apply(RecordCheckRequest(OWNER, "breaker-off", True), at(900))
    session.apply(AbortRequest(OWNER, "\U0001f6a7" * 500), at(901))
    assert session.is_terminal


def test_pauses_stop_while_room_remains_to_resume_and_end() -> None:
    session = new_session()
    minute = 0
    while True:
        try:
            session.apply(PauseRequest(OWNER), at(minute))
        except DomainError as refused:
            assert refused.code == "session_limit_reached"
            break
        session.apply(ResumeRequest(OWNER), at(minute + 1))
        minute += 2

    session.apply(AbortRequest(OWNER), at(minute + 1))
    assert len(session.state.history) <= MAX_STATUS_CHANGES_PER_SESSION


def test_the_audit_type_comes_from_the_command() -> None:
    session = new_session()
    session.apply(PauseRequest(OWNER), at(1))
    resumed = session.apply(ResumeRequest(OWNER), at(2)).event
    assert resumed is not None
    assert resumed.type == AuditEventType.SESSION_RESUMED


def test_a_change_carries_only_what_changed() -> None:
    session = new_session()
    change = session.apply(RecordCheckRequest(OWNER, "breaker-off", True, note="ok"), at(1)).change

    assert change.version == 2 == session.view().version
    assert change.check == session.state.checks[-1]
    assert change.status_change is None
    paused = session.apply(PauseRequest(OWNER, "lunch"), at(2)).change
    assert paused.check is None
    assert paused.status_change == session.state.history[-1]


def paused_with_a_check() -> WorkSession:
    session = new_session()
    session.apply(RecordCheckRequest(OWNER, "breaker-off", passed=True), at(1))
    session.apply(PauseRequest(OWNER, "lunch"), at(2))
    return session


def test_a_cancellation_in_temporal_aborts_keeping_checks_and_naming_who_asked() -> None:
    session = paused_with_a_check()
    ending = TemporalEnding(TemporalClosure.CANCELLED, at(9), "temporal-cli:op@host", "wrong SOP")

    event = session.end_in_temporal(ending, at(10))

    assert event is not None
    assert session.status == SessionStatus.ABORTED
    assert [r.check_id for r in session.state.checks] == ["breaker-off"]
    reason = "Cancellation requested in Temporal by temporal-cli:op@host: wrong SOP"
    assert session.state.abort_reason == reason
    assert session.state.history[-1].by == "temporal-cli:op@host"
    assert durations(session.summary(), at(60)) == (120.0, 480.0)
    assert (event.type, event.seq, event.actor) == (
        AuditEventType.SESSION_ABORTED,
        4,
        ending.identity,
    )
    assert event.data == {
        "reason": reason,
        "ended_in_temporal": "cancelled",
        "identity": ending.identity,
    }
    # Ended already: nothing more happens, whatever Temporal does next.
    assert session.end_in_temporal(ending, at(11)) is None
    assert codes_of(lambda: session.refuse(ResumeRequest(OWNER))) == "invalid_transition"


def test_an_abort_named_later_ends_as_one_named_at_once() -> None:
    told = TemporalEnding(TemporalClosure.CANCELLED, at(9), "temporal-cli:op@host", "wrong SOP")
    named_at_once = paused_with_a_check()
    event_named_at_once = named_at_once.end_in_temporal(told, at(10))
    named_later = paused_with_a_check()
    unnamed = dataclasses.replace(told, identity=None)

    first = named_later.end_in_temporal(unnamed, at(10))
    assert first is not None
    assert named_later.status == SessionStatus.ABORTED
    assert named_later.state.history[-1].by != told.identity
    event = named_later.name_who_ended_it(first, told)

    assert event == event_named_at_once
    assert named_later.view() == named_at_once.view()


def test_an_ending_without_identity_or_reason_names_temporal_and_stays_within_bounds() -> None:
    session = new_session()
    event = session.end_in_temporal(TemporalEnding(TemporalClosure.TERMINATED, at(1)), at(1))
    assert event is not None and event.actor == TEMPORAL_ACTOR
    assert session.state.abort_reason == "Terminated in Temporal"

    noisy = TemporalEnding(TemporalClosure.TERMINATED, at(1), "op", "a\x00b\n" + "x" * 900)
    assert new_session().end_in_temporal(noisy, at(1)) is not None
    reason = ended_in_temporal(new_session().view(), noisy)[0].summary.abort_reason
    assert reason is not None and len(reason) == MAX_REASON_LENGTH
    assert reason.startswith("Terminated in Temporal by op: a b ")


@pytest.mark.parametrize("closure", list(TemporalClosure))
def test_a_closed_workflow_s_view_is_the_same_abort_the_workflow_would_apply(
    closure: TemporalClosure,
) -> None:
    ending = TemporalEnding(closure, at(5), "someone", "why")
    before = paused_with_a_check().view()
    in_workflow = paused_with_a_check()
    expected_event = in_workflow.end_in_temporal(ending, at(5))

    shown, event = ended_in_temporal(before, ending)

    assert shown == in_workflow.view()
    assert event == expected_event
    assert shown.summary.status == SessionStatus.ABORTED
    assert shown.version == before.version + 1


def test_a_finished_session_closed_in_temporal_stays_as_it_ended() -> None:
    session = new_session()
    session.apply(AbortRequest(OWNER, "done"), at(1))
    view = session.view()

    assert ended_in_temporal(view, TemporalEnding(TemporalClosure.TERMINATED, at(2))) == (
        view,
        None,
    )

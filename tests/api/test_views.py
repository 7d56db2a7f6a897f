"""The API's views of recently used sessions: a compact change merged into a whole view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.views import SessionViews
from tests.helpers import sop_snapshot
from workflows.domain import WorkSession
from workflows.shared import Actor, PauseRequest, RecordCheckRequest, SessionChange

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
OWNER = Actor("alice", ["worker"])
SOP = sop_snapshot("loto", 3, "Lockout")


def check(session: WorkSession, check_id: str, minute: int) -> SessionChange:
    request = RecordCheckRequest(OWNER, check_id, True, None, None, None)
    return session.apply(request, T0 + timedelta(minutes=minute)).change


def test_a_change_merges_into_the_view_just_before_it() -> None:
    session, _ = WorkSession.start("s-1", "alice", SOP, T0)
    views = SessionViews(8)
    views.remember(session.view())
    change = check(session, "breaker-off", 1)

    merged = views.merge("s-1", change)

    assert merged == session.view()


def test_a_view_read_after_the_change_answers_it_without_the_change_twice() -> None:
    session, _ = WorkSession.start("s-1", "alice", SOP, T0)
    change = check(session, "breaker-off", 1)
    views = SessionViews(8)
    views.remember(session.view())

    merged = views.merge("s-1", change)

    assert merged == session.view()
    assert merged is not None and len(merged.safety_checks) == 1


def test_a_view_more_than_one_change_behind_is_a_miss() -> None:
    session, _ = WorkSession.start("s-1", "alice", SOP, T0)
    views = SessionViews(8)
    views.remember(session.view())
    check(session, "breaker-off", 1)
    pause = session.apply(PauseRequest(OWNER, None), T0 + timedelta(minutes=2)).change

    assert views.merge("s-1", pause) is None


def test_only_sessions_served_are_held_and_the_oldest_leave_first() -> None:
    views = SessionViews(2)
    for number in range(3):
        session, _ = WorkSession.start(f"s-{number}", "alice", SOP, T0)
        check(session, "breaker-off", 1)
        views.remember(session.view())

    assert [views.holds(f"s-{number}") for number in range(4)] == [False, True, True, False]

"""The feature that defines the product, through the REST contract."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runtime.settings import Settings
from tests.helpers import assert_eventually, bearer, new_user
from tests.helpers.api import act, api_of_its_own, publish_sop, record, start_session


@pytest.fixture
async def sop(api: httpx.AsyncClient) -> dict[str, Any]:
    return await publish_sop(api)


async def listed_ids(api: httpx.AsyncClient, user: str, *roles: str, **params: Any) -> list[str]:
    response = await api.get("/api/v1/sessions", params=params, headers=bearer(user, *roles))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_worker_starts_a_second_session_while_one_is_in_progress(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker = new_user()
    first = await start_session(api, worker, sop["id"])
    second = await start_session(api, worker, sop["id"])

    assert first["id"] != second["id"]
    for session in (first, second):
        assert session["status"] == "IN_PROGRESS"
        assert session["sop_title"] == sop["title"]
        assert session["worker_id"] == worker
        assert session["progress"] == {
            "checks_passed": 0,
            "checks_required": 3,
            "checks_total": 4,
            "checks_failed": 0,
        }

    async def both_listed() -> None:
        assert set(await listed_ids(api, worker)) == {first["id"], second["id"]}

    await assert_eventually(both_listed)


async def test_pause_and_resume_keep_every_check(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker = new_user()
    session = await start_session(api, worker, sop["id"])
    sid = session["id"]
    assert (await record(api, worker, sid, "breaker-off", passed=True)).status_code == 201
    measured = await record(api, worker, sid, "residual-v", value=2.5, note="meter M-12")
    assert measured.status_code == 201
    assert measured.json()["safety_checks"][-1]["passed"] is True

    paused = await act(api, worker, sid, "pause", {"reason": "called to another line"})
    assert paused.status_code == 200
    body = paused.json()
    assert body["status"] == "PAUSED"
    assert body["paused_at"] is not None
    assert body["pause_reason"] == "called to another line"
    assert body["history"][-1]["reason"] == "called to another line"

    resumed = await act(api, worker, sid, "resume")
    assert resumed.status_code == 200
    body = resumed.json()
    assert body["status"] == "IN_PROGRESS"
    assert [c["check_id"] for c in body["safety_checks"]] == ["breaker-off", "residual-v"]
    assert body["safety_checks"][1]["value"] == 2.5
    assert body["safety_checks"][1]["note"] == "meter M-12"
    assert body["progress"]["checks_passed"] == 2
    assert [h["status"] for h in body["history"]] == ["IN_PROGRESS", "PAUSED", "IN_PROGRESS"]
    assert body["paused_seconds"] > 0
    assert body["paused_at"] is None


async def test_api_replicas_that_never_served_a_session_answer_with_the_whole_session(
    api: httpx.AsyncClient, sop: dict[str, Any], settings: Settings
) -> None:
    worker = new_user()
    sid = (await start_session(api, worker, sop["id"]))["id"]
    assert (await record(api, worker, sid, "breaker-off", passed=True)).status_code == 201
    assert (await act(api, worker, sid, "pause")).status_code == 200

    async with api_of_its_own(settings) as (replica, _), api_of_its_own(settings) as (other, _):
        resumed = await act(replica, worker, sid, "resume")
        refused = await act(other, worker, sid, "resume")
        measured = await record(replica, worker, sid, "residual-v", value=2.5)

    assert resumed.status_code == 200
    assert [c["check_id"] for c in resumed.json()["safety_checks"]] == ["breaker-off"]
    assert [h["status"] for h in resumed.json()["history"]] == [
        "IN_PROGRESS",
        "PAUSED",
        "IN_PROGRESS",
    ]
    assert refused.status_code == 409
    assert refused.json()["code"] == "invalid_transition"
    assert [c["check_id"] for c in measured.json()["safety_checks"]] == [
        "breaker-off",
        "residual-v",
    ]
    # The first API's view stopped at the pause: its answer shows what the replica changed.
    last = await record(api, worker, sid, "try-start", passed=True)
    assert last.status_code == 201
    body = last.json()
    assert [c["check_id"] for c in body["safety_checks"]] == [
        "breaker-off",
        "residual-v",
        "try-start",
    ]
    assert [h["status"] for h in body["history"]] == ["IN_PROGRESS", "PAUSED", "IN_PROGRESS"]
    assert body["progress"]["checks_passed"] == 3


async def test_no_check_can_be_recorded_while_paused(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker = new_user()
    sid = (await start_session(api, worker, sop["id"]))["id"]
    await act(api, worker, sid, "pause")

    refused = await record(api, worker, sid, "breaker-off", passed=True)

    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "invalid_transition"
    detail = await api.get(f"/api/v1/sessions/{sid}", headers=bearer(worker))
    assert detail.json()["safety_checks"] == []


async def test_aborted_session_refuses_changes_keeps_checks_and_leaves_active_list(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker = new_user()
    kept = (await start_session(api, worker, sop["id"]))["id"]
    sid = (await start_session(api, worker, sop["id"]))["id"]
    await record(api, worker, sid, "breaker-off", passed=True)

    aborted = await act(api, worker, sid, "abort", {"reason": "wrong press"})
    assert aborted.status_code == 200
    assert aborted.json()["status"] == "ABORTED"
    assert aborted.json()["abort_reason"] == "wrong press"
    assert aborted.json()["ended_at"] is not None

    for action, body in [("pause", None), ("resume", None), ("abort", None), ("complete", None)]:
        refused = await act(api, worker, sid, action, body)
        assert refused.status_code == 409, (action, refused.text)
        assert refused.json()["code"] == "invalid_transition"
    refused_check = await record(api, worker, sid, "residual-v", value=1)
    assert refused_check.status_code == 409

    detail = await api.get(f"/api/v1/sessions/{sid}", headers=bearer(worker))
    assert detail.status_code == 200
    assert detail.json()["status"] == "ABORTED"
    assert [c["check_id"] for c in detail.json()["safety_checks"]] == ["breaker-off"]

    async def only_kept_is_active() -> None:
        assert await listed_ids(api, worker) == [kept]
        assert await listed_ids(api, worker, status="ABORTED") == [sid]
        assert set(await listed_ids(api, worker, status=["ABORTED", "IN_PROGRESS"])) == {
            kept,
            sid,
        }

    await assert_eventually(only_kept_is_active)


async def test_complete_needs_every_required_check_passed(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker = new_user()
    sid = (await start_session(api, worker, sop["id"]))["id"]
    await record(api, worker, sid, "breaker-off", passed=True)
    failed = await record(api, worker, sid, "residual-v", value=48.0)
    assert failed.json()["safety_checks"][-1]["passed"] is False

    refused = await act(api, worker, sid, "complete")
    assert refused.status_code == 409
    assert refused.json()["code"] == "checks_incomplete"
    assert refused.json()["missing_check_ids"] == ["residual-v", "try-start"]

    redone = await record(api, worker, sid, "residual-v", value=0.4)
    assert redone.json()["current_step_id"] == "verify"
    await record(api, worker, sid, "try-start", passed=True)
    completed = await act(api, worker, sid, "complete")

    assert completed.status_code == 200
    body = completed.json()
    assert body["status"] == "COMPLETED"
    assert body["progress"]["checks_passed"] == 3
    assert [c["passed"] for c in body["safety_checks"]] == [True, False, True, True]
    assert body["current_step_id"] is None


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"check_id": "no-such-check", "passed": True}, "unknown_check"),
        ({"check_id": "breaker-off", "value": 3}, "invalid_check_answer"),
        ({"check_id": "residual-v", "passed": True}, "invalid_check_answer"),
        ({"check_id": "residual-v"}, "invalid_check_answer"),
    ],
)
async def test_answers_that_do_not_fit_the_check_are_refused(
    api: httpx.AsyncClient, sop: dict[str, Any], answer: dict[str, Any], code: str
) -> None:
    worker = new_user()
    sid = (await start_session(api, worker, sop["id"]))["id"]

    refused = await api.post(f"/api/v1/sessions/{sid}/checks", json=answer, headers=bearer(worker))

    assert refused.status_code == 422
    assert refused.json()["code"] == code
    detail = await api.get(f"/api/v1/sessions/{sid}", headers=bearer(worker))
    assert detail.json()["safety_checks"] == []


async def test_only_the_owner_changes_a_session(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    owner, other = new_user(), new_user()
    supervisor = new_user("sup")
    sid = (await start_session(api, owner, sop["id"]))["id"]

    for action in ("pause", "abort", "complete"):
        as_worker = await act(api, other, sid, action)
        assert as_worker.status_code == 404, action
        assert as_worker.json()["code"] == "session_not_found"
    assert (await record(api, other, sid, "breaker-off", passed=True)).status_code == 404
    read = await api.get(f"/api/v1/sessions/{sid}", headers=bearer(other))
    assert read.status_code == 404

    as_supervisor = await api.post(
        f"/api/v1/sessions/{sid}/pause", headers=bearer(supervisor, "supervisor")
    )
    assert as_supervisor.status_code == 403
    assert as_supervisor.json()["code"] == "forbidden"
    seen = await api.get(f"/api/v1/sessions/{sid}", headers=bearer(supervisor, "supervisor"))
    assert seen.status_code == 200
    assert seen.json()["status"] == "IN_PROGRESS"


async def test_changes_to_a_finished_session_reveal_nothing_to_others(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    owner, other = new_user(), new_user()
    sid = (await start_session(api, owner, sop["id"]))["id"]
    await act(api, owner, sid, "abort")

    assert (await act(api, other, sid, "resume")).status_code == 404
    as_supervisor = await api.post(
        f"/api/v1/sessions/{sid}/resume", headers=bearer("sup-x", "supervisor")
    )
    assert as_supervisor.status_code == 403


async def test_unknown_session_is_404_and_unknown_sop_is_404(api: httpx.AsyncClient) -> None:
    worker = new_user()
    missing = await act(api, worker, "00000000-0000-0000-0000-000000000000", "pause")
    assert missing.status_code == 404
    assert missing.json()["code"] == "session_not_found"

    unknown_sop = await api.post(
        "/api/v1/sessions", json={"sop_id": "no-such-sop"}, headers=bearer(worker)
    )
    assert unknown_sop.status_code == 404
    assert unknown_sop.json()["code"] == "sop_not_found"


async def test_supervisor_lists_everyone_and_filters_by_worker(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    alice, bob = new_user(), new_user()
    a = (await start_session(api, alice, sop["id"]))["id"]
    b = (await start_session(api, bob, sop["id"]))["id"]
    await act(api, bob, b, "abort", {"reason": "duplicate"})

    async def supervisor_sees_both() -> None:
        everyone: list[str] = []
        params: dict[str, Any] = {"status": ["IN_PROGRESS", "ABORTED"], "limit": 200}
        while True:
            response = await api.get(
                "/api/v1/sessions", params=params, headers=bearer("sup", "supervisor")
            )
            page = response.json()
            everyone += [item["id"] for item in page["items"]]
            if not page["next_page_token"]:
                break
            params["page_token"] = page["next_page_token"]
        assert {a, b} <= set(everyone)
        assert await listed_ids(api, "sup", "supervisor", worker_id=bob, status="ABORTED") == [b]

    await assert_eventually(supervisor_sees_both)
    forbidden = await api.get("/api/v1/sessions", params={"worker_id": bob}, headers=bearer(alice))
    assert forbidden.status_code == 403


async def test_list_items_carry_summary_fields_and_paginate(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker = new_user()
    started = [(await start_session(api, worker, sop["id"]))["id"] for _ in range(3)]
    await act(api, worker, started[0], "pause", {"reason": "lunch"})

    async def paged() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = None
        while True:
            params: dict[str, Any] = {"limit": 2}
            if token:
                params["page_token"] = token
            response = await api.get("/api/v1/sessions", params=params, headers=bearer(worker))
            assert response.status_code == 200
            page = response.json()
            assert len(page["items"]) <= 2
            items += page["items"]
            token = page["next_page_token"]
            if not token:
                break
        assert {i["id"] for i in items} == set(started)
        paused = next(i for i in items if i["id"] == started[0])
        assert paused["status"] == "PAUSED"
        assert paused["pause_reason"] == "lunch"
        return items

    items = await assert_eventually(paged)
    for item in items:
        assert item["sop_title"] == sop["title"]
        assert "safety_checks" not in item
        assert item["progress"]["checks_required"] == 3


async def test_idempotency_key_returns_the_same_session_and_the_same_check(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker = new_user()
    first = await start_session(api, worker, sop["id"], **{"Idempotency-Key": "start-1"})
    again = await start_session(api, worker, sop["id"], **{"Idempotency-Key": "start-1"})
    assert again["id"] == first["id"]

    sid = first["id"]
    for _ in range(2):
        response = await api.post(
            f"/api/v1/sessions/{sid}/checks",
            json={"check_id": "breaker-off", "passed": True},
            headers={**bearer(worker), "Idempotency-Key": "check-1"},
        )
        assert response.status_code == 201
    assert len(response.json()["safety_checks"]) == 1

    async def one_session() -> None:
        assert await listed_ids(api, worker) == [sid]

    await assert_eventually(one_session)


async def test_supervisor_reads_the_audit_trail_of_an_aborted_session(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker = new_user()
    sid = (await start_session(api, worker, sop["id"]))["id"]
    await record(api, worker, sid, "breaker-off", passed=True)
    await act(api, worker, sid, "pause", {"reason": "break"})
    await act(api, worker, sid, "resume")
    await act(api, worker, sid, "abort", {"reason": "wrong machine"})
    expected = [
        "session_started",
        "check_recorded",
        "session_paused",
        "session_resumed",
        "session_aborted",
    ]

    async def trail_complete() -> list[dict[str, Any]]:
        response = await api.get(
            f"/api/v1/sessions/{sid}/audit", headers=bearer("sup", "supervisor")
        )
        assert response.status_code == 200
        items: list[dict[str, Any]] = response.json()["items"]
        assert [e["type"] for e in items] == expected
        return items

    items = await assert_eventually(trail_complete)
    assert [e["seq"] for e in items] == [1, 2, 3, 4, 5]
    assert items[-1]["data"]["reason"] == "wrong machine"
    assert all(e["worker_id"] == worker and e["sop_id"] == sop["id"] for e in items)

    csv_response = await api.get(
        "/api/v1/audit",
        params={"session_id": sid, "format": "csv"},
        headers=bearer("sup", "supervisor"),
    )
    assert csv_response.status_code == 200
    assert csv_response.headers["content-type"].startswith("text/csv")
    lines = csv_response.text.strip().splitlines()
    assert lines[0].startswith("session_id,seq,type")
    assert len(lines) == 6

    as_worker = await api.get("/api/v1/audit", headers=bearer(worker))
    assert as_worker.status_code == 403
    stranger = await api.get(f"/api/v1/sessions/{sid}/audit", headers=bearer(new_user()))
    assert stranger.status_code == 404

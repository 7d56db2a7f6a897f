"""Crash tests: the worker, the Temporal server and the API killed with SIGKILL under real load.

A 2xx means the change is in Temporal history and its audit event lands exactly
once, whatever is killed and restarted (DESIGN section 6). Each test prints its
figures and keeps them in test-artifacts/durability.json.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from devstack.processes import ManagedProcess
from tests.durability.stack import (
    RPC_TIMEOUT_SECONDS,
    SOP_ID,
    CheckLoad,
    LiveStack,
    audit_gaps,
    bearer,
    count_checks,
    fitting_answers,
    report,
    retried,
)
from tests.helpers import assert_eventually

pytestmark = pytest.mark.slow

# The SDK retries an unreachable server for up to 10 s on top of the RPC timeout.
OUTAGE_ANSWER_BOUND_SECONDS = RPC_TIMEOUT_SECONDS + 12
WARM_UP_OPERATIONS = 100
START_BURST = 30


def unchanging(view: dict[str, Any]) -> dict[str, Any]:
    """A session without the durations, which grow with the clock."""
    return {k: v for k, v in view.items() if k not in ("active_seconds", "paused_seconds")}


async def expect(status: int, request: Awaitable[httpx.Response]) -> httpx.Response:
    response = await request
    assert response.status_code == status, response.text
    return response


async def closed(stack: LiveStack, session_ids: list[str]) -> None:
    """Asserts that these sessions' workflows have closed."""
    for session_id in session_ids:
        described = await stack.client.get_workflow_handle(session_id).describe()
        assert described.status == WorkflowExecutionStatus.COMPLETED


def restart_after_kill(
    process: ManagedProcess, ready: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """A crash for `load_through`: the process killed, started a second later, then ready."""

    async def crash() -> None:
        process.kill()
        await asyncio.sleep(1.0)
        process.start()
        await ready()

    return crash


async def load_through(load: CheckLoad, crash: Callable[[], Awaitable[None]]) -> int:
    """Runs the load, crashes something mid-way, waits for progress after recovery, stops it.

    Returns how many operations had been accepted when the crash came.
    """
    running = asyncio.create_task(load.run())
    try:

        async def warmed_up() -> None:
            assert len(load.accepted) >= WARM_UP_OPERATIONS, "load warmed up"

        await assert_eventually(warmed_up, timeout=30)
        accepted_before = len(load.accepted)
        await crash()
        recovered = len(load.accepted)

        async def progressing() -> None:
            progressed = len(load.accepted) >= recovered + 2 * len(load.sessions)
            assert progressed or load.unexpected, "load progressing after recovery"

        await assert_eventually(progressing, timeout=90)
    finally:
        load.stop.set()
        await running
    return accepted_before


async def test_worker_killed_under_load_loses_and_duplicates_nothing(
    stack: LiveStack,
) -> None:
    began = time.monotonic()
    async with stack.http() as http:
        sessions = [
            (user, (await stack.start_session(http, user))["id"])
            for user in ("crew-1", "crew-2", "crew-3")
            for _ in range(2)
        ]
        load = CheckLoad(http, sessions)
        accepted_before = await load_through(
            load, restart_after_kill(stack.worker, stack.wait_for_worker)
        )
        views = {sid: await stack.session(http, user, sid) for user, sid in sessions}
    expected_rows = {
        sid: 1 + sum(op.session_id == sid for op in load.accepted) for _user, sid in sessions
    }
    waited = time.monotonic()
    audit = await stack.settled_audit(expected_rows)

    figures: dict[str, Any] = {
        "sessions": len(sessions),
        "accepted_before_kill": accepted_before,
        **count_checks(views, load, audit),
        "audit_rows": sum(len(events) for events in audit.values()),
        "audit_rows_expected": sum(expected_rows.values()),
        "refused_attempts": dict(load.refusals),
        "audit_wait_seconds": round(time.monotonic() - waited, 1),
        "seconds": round(time.monotonic() - began, 1),
    }
    report("worker_killed_under_load", figures)
    assert load.unexpected == []
    assert figures["checks_found"] == figures["operations_accepted"] > accepted_before
    assert figures["lost"] == figures["duplicates"] == figures["unrequested"] == 0
    assert figures["audit_lost"] == figures["audit_duplicates"] == 0
    assert figures["audit_rows"] == figures["audit_rows_expected"]
    assert audit_gaps(audit) == []


async def test_temporal_killed_mid_load_keeps_every_session_as_it_was(
    stack: LiveStack,
) -> None:
    began = time.monotonic()
    user = "crew-server"
    headers = bearer(user)
    answers = fitting_answers()
    async with stack.http() as http:

        def post(path: str, body: Any = None) -> Awaitable[httpx.Response]:
            return http.post(f"/api/v1/sessions/{path}", json=body, headers=headers)

        paused = [(await stack.start_session(http, user))["id"] for _ in range(2)]
        for sid in paused:
            await expect(201, post(f"{sid}/checks", {**answers[0], "note": "before the pause"}))
            await expect(200, post(f"{sid}/pause", {"reason": "lunch"}))
        completed = (await stack.start_session(http, user))["id"]
        for answer in answers:
            await expect(201, post(f"{completed}/checks", answer))
        await expect(200, post(f"{completed}/complete"))
        aborted = (await stack.start_session(http, user))["id"]
        await expect(200, post(f"{aborted}/abort"))
        settled = [*paused, completed, aborted]
        before = {sid: unchanging(await stack.session(http, user, sid)) for sid in settled}
        # An ending's audit write goes with the batch after its answer; the two ended
        # sessions are settled once their workflows have closed.
        await assert_eventually(functools.partial(closed, stack, [completed, aborted]))

        sessions = [(user, (await stack.start_session(http, user))["id"]) for _ in range(4)]
        load = CheckLoad(http, sessions)
        worker_pid, api_pid = stack.worker.pid, stack.api.pid
        accepted_before = await load_through(
            load, restart_after_kill(stack.temporal, stack.wait_for_temporal)
        )
        views = {sid: await stack.session(http, user, sid) for _user, sid in sessions}
        # A session whose workflow task was in flight when the server died waits for
        # that task to time out: until then its reads answer 503, as the contract allows.
        after = {
            sid: unchanging(
                await assert_eventually(
                    functools.partial(stack.session, http, user, sid), timeout=30
                )
            )
            for sid in settled
        }

        async def paused_still_listed_as_paused() -> None:
            listed = await http.get(
                "/api/v1/sessions", params={"status": "PAUSED"}, headers=headers
            )
            assert {item["id"] for item in listed.json()["items"]} == set(paused)

        await assert_eventually(paused_still_listed_as_paused, timeout=30)
        resumed = await expect(200, post(f"{paused[0]}/resume"))
    expected_rows = {
        **{sid: 1 + sum(op.session_id == sid for op in load.accepted) for _user, sid in sessions},
        paused[0]: 4,
        paused[1]: 3,
        completed: 2 + len(answers),
        aborted: 2,
    }
    audit = await stack.settled_audit(expected_rows)

    figures: dict[str, Any] = {
        "sessions_under_load": len(sessions),
        "sessions_settled": len(settled),
        "sessions_changed_by_the_crash": sum(before[sid] != after[sid] for sid in settled),
        "accepted_before_kill": accepted_before,
        **count_checks(views, load, audit),
        "audit_rows": sum(len(events) for events in audit.values()),
        "audit_rows_expected": sum(expected_rows.values()),
        "refused_attempts": dict(load.refusals),
        "seconds": round(time.monotonic() - began, 1),
    }
    report("temporal_killed_mid_load", figures)
    assert load.unexpected == []
    assert after == before
    assert [after[sid]["status"] for sid in paused] == ["PAUSED", "PAUSED"]
    assert resumed.json()["status"] == "IN_PROGRESS"
    assert figures["checks_found"] == figures["operations_accepted"] > accepted_before
    assert figures["lost"] == figures["duplicates"] == figures["unrequested"] == 0
    assert figures["audit_lost"] == figures["audit_duplicates"] == 0
    assert figures["audit_rows"] == figures["audit_rows_expected"]
    assert audit_gaps(audit) == []
    # The worker and the API rode out the outage without a restart.
    assert stack.worker.running and stack.worker.pid == worker_pid
    assert stack.api.running and stack.api.pid == api_pid


async def test_api_killed_mid_request_then_same_key_retried_acts_once(
    stack: LiveStack,
) -> None:
    began = time.monotonic()
    user = "crew-retry"
    headers = bearer(user)
    start_keys = [f"start-{i}-{uuid.uuid4()}" for i in range(START_BURST)]
    check_key = f"check-{uuid.uuid4()}"
    check = {**fitting_answers()[0], "note": check_key}

    def post_start(http: httpx.AsyncClient, key: str) -> Any:
        return http.post(
            "/api/v1/sessions", json={"sop_id": SOP_ID}, headers={**headers, "Idempotency-Key": key}
        )

    def post_check(http: httpx.AsyncClient, session_id: str) -> Any:
        return http.post(
            f"/api/v1/sessions/{session_id}/checks",
            json=check,
            headers={**headers, "Idempotency-Key": check_key},
        )

    async with stack.http() as http:
        checked = (await stack.start_session(http, user))["id"]
    # Without a worker the check's update waits inside Temporal: it is surely in flight
    # when the API dies. The burst of starts is cut off wherever each one happens to be.
    stack.worker.stop()
    async with stack.http() as http:
        in_flight = [asyncio.create_task(post_check(http, checked))]
        in_flight += [asyncio.create_task(post_start(http, key)) for key in start_keys]
        # Kill at the first answer: the rest of the burst is surely still in flight.
        await asyncio.wait(in_flight[1:], timeout=10, return_when=asyncio.FIRST_COMPLETED)
        stack.api.kill()
        outcomes = await asyncio.gather(*in_flight, return_exceptions=True)
    check_outcome, start_outcomes = outcomes[0], dict(zip(start_keys, outcomes[1:], strict=True))
    answered = {
        key: outcome.json()["id"]
        for key, outcome in start_outcomes.items()
        if isinstance(outcome, httpx.Response) and outcome.status_code == 201
    }
    await asyncio.sleep(1)  # visibility catches up in milliseconds
    in_temporal = (await stack.client.count_workflows(f"WorkerId = '{user}'")).count - 1

    stack.worker.start()
    stack.api.start()
    await stack.wait_for_worker()
    await stack.wait_until_ready()
    async with stack.http() as http:
        unavailable = 0
        retried_starts: dict[str, httpx.Response] = {}
        for key in start_keys:
            retried_starts[key], refused = await retried(functools.partial(post_start, http, key))
            unavailable += refused
        retried_checks = []
        for _ in range(2):
            response, refused = await retried(lambda: post_check(http, checked))
            retried_checks.append(response)
            unavailable += refused
        started = {key: response.json()["id"] for key, response in retried_starts.items()}

        async def every_session_once() -> list[str]:
            listed = await http.get("/api/v1/sessions", headers=headers)
            ids = sorted(item["id"] for item in listed.json()["items"])
            assert ids == sorted([checked, *started.values()])
            return ids

        listed = await assert_eventually(every_session_once, timeout=15)
        view = await stack.session(http, user, checked)
    audit = await stack.settled_audit({checked: 2, **dict.fromkeys(started.values(), 1)})
    notes = Counter(c["note"] for c in view["safety_checks"])

    figures: dict[str, Any] = {
        "requests_in_flight": len(in_flight),
        "answered_before_kill": len(answered),
        "cut_off": sum(isinstance(o, httpx.TransportError) for o in outcomes),
        "started_though_cut_off": in_temporal - len(answered),
        "retry_statuses": dict(
            Counter(r.status_code for r in [*retried_starts.values(), *retried_checks])
        ),
        "503_before_success": unavailable,
        "sessions_after_retry": len(listed) - 1,
        "distinct_session_ids": len(set(started.values())),
        "check_records": notes[check_key],
        "audit_rows": sum(len(events) for events in audit.values()),
        "audit_rows_expected": 2 + len(started),
        "duplicates": max(0, notes[check_key] - 1) + len(listed) - 1 - len(start_keys),
        "lost": int(notes[check_key] == 0) + len(start_keys) - len(set(started.values())),
        "seconds": round(time.monotonic() - began, 1),
    }
    report("api_killed_mid_request", figures)
    assert isinstance(check_outcome, httpx.TransportError), check_outcome
    assert figures["cut_off"] > 1
    assert figures["retry_statuses"] == {201: START_BURST + 2}
    assert all(started[key] == session_id for key, session_id in answered.items())
    assert figures["distinct_session_ids"] == figures["sessions_after_retry"] == START_BURST
    assert retried_checks[0].json()["safety_checks"] == retried_checks[1].json()["safety_checks"]
    assert notes == Counter({check_key: 1})
    assert [e.type.value for e in audit[checked]] == ["session_started", "check_recorded"]
    assert all(
        [e.type.value for e in audit[sid]] == ["session_started"] for sid in started.values()
    )


async def test_temporal_unreachable_means_503_then_recovers_by_itself(
    stack: LiveStack,
) -> None:
    began = time.monotonic()
    user = "crew-outage"
    headers = bearer(user)
    check = fitting_answers()[0]
    async with stack.http() as http:
        session = (await stack.start_session(http, user))["id"]
        worker_pid, api_pid = stack.worker.pid, stack.api.pid
        stack.temporal.kill()

        calls: list[tuple[str, str, Any]] = [
            ("GET", "/readyz", None),
            ("GET", "/api/v1/sessions", None),
            ("GET", f"/api/v1/sessions/{session}", None),
            ("GET", f"/api/v1/sessions/{session}/audit", None),
            ("POST", "/api/v1/sessions", {"sop_id": SOP_ID}),
            ("POST", f"/api/v1/sessions/{session}/checks", check),
            ("POST", f"/api/v1/sessions/{session}/pause", None),
            ("POST", f"/api/v1/sessions/{session}/abort", None),
            ("POST", f"/api/v1/sessions/{session}/complete", None),
        ]

        async def call(method: str, path: str, body: Any) -> tuple[int, str | None, float]:
            sent = time.monotonic()
            response = await http.request(method, path, json=body, headers=headers)
            is_problem = response.headers.get("content-type") == "application/problem+json"
            code = response.json().get("code") if is_problem else None
            return response.status_code, code, round(time.monotonic() - sent, 2)

        answers = await asyncio.gather(*(call(*c) for c in calls))
        during = {
            f"{method} {path.replace(session, '{id}')}": answer
            for (method, path, _body), answer in zip(calls, answers, strict=True)
        }
        healthz = await http.get("/healthz")
        sops = await http.get("/api/v1/sops", headers=headers)

        stack.temporal.start()
        restarted = time.monotonic()
        await stack.wait_until_ready(timeout=60)
        api_recovery_seconds = round(time.monotonic() - restarted, 1)
        # The worker polls again on its own schedule: a careful client retries its key.
        key = f"after-outage-{uuid.uuid4()}"
        recorded, retries_after_ready = await retried(
            lambda: http.post(
                f"/api/v1/sessions/{session}/checks",
                json={**check, "note": key},
                headers={**headers, "Idempotency-Key": key},
            )
        )
        worker_recovery_seconds = round(time.monotonic() - restarted, 1)
        new = await http.post("/api/v1/sessions", json={"sop_id": SOP_ID}, headers=headers)

        async def only_answered_starts_exist() -> None:
            listed = await http.get("/api/v1/sessions", headers=headers)
            ids = sorted(item["id"] for item in listed.json()["items"])
            assert ids == sorted([session, new.json()["id"]])

        await assert_eventually(only_answered_starts_exist, timeout=15)
        after = await stack.session(http, user, session)

    figures: dict[str, Any] = {
        "requests_during_outage": len(during),
        "statuses_during_outage": dict(Counter(status for status, _code, _t in during.values())),
        "slowest_answer_seconds": max(t for _s, _c, t in during.values()),
        "answers": {call: f"{status} {code} {t}s" for call, (status, code, t) in during.items()},
        "api_ready_after_restart_seconds": api_recovery_seconds,
        "worker_serving_after_restart_seconds": worker_recovery_seconds,
        "503_retries_after_ready": retries_after_ready,
        "after_recovery": [recorded.status_code, new.status_code],
        "seconds": round(time.monotonic() - began, 1),
    }
    report("temporal_unreachable", figures)
    readyz = during.pop("GET /readyz")
    assert readyz[:2] == (503, "not_ready")
    assert {c: answer[:2] for c, answer in during.items()} == dict.fromkeys(
        during, (503, "temporal_unavailable")
    )
    assert figures["slowest_answer_seconds"] < OUTAGE_ANSWER_BOUND_SECONDS
    assert healthz.status_code == 200
    assert sops.status_code == 200
    assert recorded.status_code == 201, recorded.text
    assert new.status_code == 201, new.text
    # Nothing asked for during the outage happened.
    assert after["status"] == "IN_PROGRESS"
    assert [c["note"] for c in after["safety_checks"]] == [key]
    assert stack.worker.running and stack.worker.pid == worker_pid
    assert stack.api.running and stack.api.pid == api_pid

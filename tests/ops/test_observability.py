"""Prometheus metrics at /metrics, and logs that name the request and never a token."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.audit import AuditActivities
from api.auth import mint_token
from api.metrics import keep_session_gauges_fresh, refresh_session_gauges
from engine.client import connect
from runtime.logs import (
    JsonFormatter,
    TextFormatter,
    bind_log_context,
    reset_log_context,
    start_log_context,
)
from runtime.settings import Settings
from store.audit import AuditLog
from tests.helpers import TEST_SECRET, assert_eventually, bearer, new_user
from tests.helpers.api import act, new_session, publish_sop, record, start_session
from workflows.shared import AuditEvent, AuditEventType

PAUSE_ROUTE = "/api/v1/sessions/{session_id}/pause"


async def scrape(api: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, keyed by name and labels."""
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_requests_sessions_and_transitions(api: httpx.AsyncClient) -> None:
    sop = await publish_sop(api)
    worker = new_user()
    before = await scrape(api)

    session = await start_session(api, worker, sop["id"])
    assert (await record(api, worker, session["id"], "breaker-off", passed=True)).status_code == 201
    assert (await act(api, worker, session["id"], "pause")).status_code == 200
    assert (await act(api, worker, session["id"], "pause")).status_code == 409
    after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("work_sessions_started_total") == 1
    assert delta("work_session_transitions_total", type="check_recorded") == 1
    assert delta("work_session_transitions_total", type="session_paused") == 1
    assert delta("work_session_transitions_total", type="session_resumed") == 0
    pause = {"method": "POST", "route": PAUSE_ROUTE}
    assert delta("http_requests_total", **pause, status="200") == 1
    assert delta("http_requests_total", **pause, status="409") == 1
    assert delta("http_request_duration_seconds_count", **pause, status="200") == 1
    assert delta("http_request_duration_seconds_sum", **pause, status="200") > 0
    # Labels carry the route template, never a session id.
    assert not any(session["id"] in str(labels) for _, labels in after)


async def test_unknown_paths_share_one_label(api: httpx.AsyncClient) -> None:
    before = await scrape(api)
    for n in range(3):
        assert (await api.get(f"/no-such-page-{n}")).status_code == 404
    after = await scrape(api)
    labels = {"method": "GET", "route": "unmatched", "status": "404"}
    assert (
        value(after, "http_requests_total", **labels)
        - value(before, "http_requests_total", **labels)
        == 3
    )


def capture_logs(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """Captures every log line of the test as `formatter` writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Every log line of the test as the production JSON formatter writes it."""
    yield from capture_logs(JsonFormatter())


@pytest.fixture
def text_logs() -> Iterator[io.StringIO]:
    """Every log line of the test as `LOG_FORMAT=text` writes it."""
    yield from capture_logs(TextFormatter())


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


async def test_access_log_names_request_session_and_worker_but_not_the_token(
    api: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    worker, session = await new_session(api)
    token = mint_token(TEST_SECRET, worker, ["worker"])

    response = await api.post(
        f"/api/v1/sessions/{session['id']}/pause",
        json={"reason": "lunch"},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-ops-test-1"},
    )

    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-ops-test-1"
    access = [e for e in lines(json_logs) if e.get("request_id") == "req-ops-test-1"]
    assert access, json_logs.getvalue()
    entry = access[-1]
    assert entry["logger"] == "api.access"
    assert entry["session_id"] == session["id"]
    assert entry["sub"] == worker
    assert entry["route"] == "/api/v1/sessions/{session_id}/pause"
    assert entry["status"] == 200 and entry["method"] == "POST"
    assert entry["code"] is None
    assert isinstance(entry["duration_ms"], float)
    assert token not in json_logs.getvalue()
    assert token.split(".")[2] not in json_logs.getvalue()


async def test_request_ids_are_made_when_missing_or_unsafe(
    api: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    made = (await api.get("/healthz")).headers["X-Request-ID"]
    unsafe = "bad id\nwith a forged log line"
    replaced = (await api.get("/healthz", headers={"X-Request-ID": unsafe})).headers["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert re.fullmatch(r"[0-9a-f]{32}", replaced) and replaced != made
    assert unsafe not in json_logs.getvalue()


async def test_a_forged_token_is_refused_and_neither_logged_nor_trusted(
    api: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    forged = mint_token("not-the-server-secret-0123456789abcdef", "mallory", ["supervisor"])

    response = await api.get(
        "/api/v1/sessions",
        headers={"Authorization": f"Bearer {forged}", "X-Request-ID": "req-forged"},
    )

    assert response.status_code == 401
    entry = next(e for e in lines(json_logs) if e.get("request_id") == "req-forged")
    assert entry["status"] == 401
    assert "sub" not in entry
    assert "mallory" not in json_logs.getvalue()
    assert forged not in json_logs.getvalue()


def test_log_lines_carry_the_context_and_redact_tokens_that_slip_in() -> None:
    token = mint_token(TEST_SECRET, "alice", ["worker"])
    record = logging.makeLogRecord(
        {"name": "t", "levelname": "INFO", "msg": "header was Bearer %s", "args": (token,)}
    )
    context = start_log_context(request_id="req-1")
    try:
        bind_log_context(session_id="s-1", sub="alice")
        entry = json.loads(JsonFormatter().format(record))
        text = TextFormatter().format(record)
    finally:
        reset_log_context(context)

    assert entry["request_id"] == "req-1"
    assert entry["session_id"] == "s-1" and entry["sub"] == "alice"
    assert token not in entry["message"] and "[redacted-token]" in entry["message"]
    assert text.endswith(
        "header was Bearer [redacted-token] request_id=req-1 session_id=s-1 sub=alice"
    )
    assert "request_id" not in json.loads(JsonFormatter().format(record))


async def test_problems_are_counted_by_code_and_failed_checks_by_result(
    api: httpx.AsyncClient,
) -> None:
    worker, session = await new_session(api)
    before = await scrape(api)

    assert (await record(api, worker, session["id"], "residual-v", value=9.0)).status_code == 201
    assert (await record(api, worker, session["id"], "residual-v", value=1.0)).status_code == 201
    assert (
        await record(api, worker, session["id"], "no-such-check", passed=True)
    ).status_code == 422
    assert (await act(api, worker, session["id"], "resume")).status_code == 409
    after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("work_session_checks_recorded_total", result="failed") == 1
    assert delta("work_session_checks_recorded_total", result="passed") == 1
    checks = {"method": "POST", "route": "/api/v1/sessions/{session_id}/checks"}
    assert delta("http_problems_total", **checks, code="unknown_check") == 1
    resume = {"method": "POST", "route": "/api/v1/sessions/{session_id}/resume"}
    assert delta("http_problems_total", **resume, code="invalid_transition") == 1


async def test_session_gauges_count_running_sessions_by_status(
    api: httpx.AsyncClient, temporal_client: Client
) -> None:
    async def gauges() -> tuple[float, float]:
        await refresh_session_gauges(temporal_client, timedelta(seconds=5))
        samples = await scrape(api)
        return (
            value(samples, "work_sessions", status="IN_PROGRESS"),
            value(samples, "work_sessions", status="PAUSED"),
        )

    async def settled() -> tuple[float, float]:
        # Status changes reach visibility with their session's next audit write, within
        # about a second: the baseline waits for earlier tests' changes to land.
        previous = await gauges()
        while True:
            await asyncio.sleep(1.5)
            current = await gauges()
            if current == previous:
                return current
            previous = current

    sop = await publish_sop(api)
    worker = new_user()
    in_progress, paused = await settled()
    working = await start_session(api, worker, sop["id"])
    resting = await start_session(api, worker, sop["id"])
    ended = await start_session(api, worker, sop["id"])
    assert (await act(api, worker, resting["id"], "pause")).status_code == 200
    assert (await act(api, worker, ended["id"], "pause")).status_code == 200
    assert (await act(api, worker, ended["id"], "abort")).status_code == 200

    async def counted() -> None:
        assert await gauges() == (in_progress + 1, paused + 1)

    await assert_eventually(counted)
    assert working["status"] == "IN_PROGRESS"


async def test_text_access_lines_carry_request_user_session_code_and_duration(
    api: httpx.AsyncClient, text_logs: io.StringIO
) -> None:
    worker, session = await new_session(api)

    response = await api.post(
        f"/api/v1/sessions/{session['id']}/resume",
        headers={**bearer(worker), "X-Request-ID": "req-text-1"},
    )

    assert response.status_code == 409
    line = next(line for line in text_logs.getvalue().splitlines() if "req-text-1" in line)
    assert (
        f"api.access POST /api/v1/sessions/{session['id']}/resume 409 invalid_transition " in line
    )
    assert re.search(r" \d+\.\dms ", line), line
    assert f"sub={worker}" in line and f"session_id={session['id']}" in line


async def test_static_files_are_named_in_logs_and_share_one_label(
    api: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    before = await scrape(api)
    assert (
        await api.get("/static/app.css", headers={"X-Request-ID": "req-static"})
    ).status_code == 200
    after = await scrape(api)

    entry = next(e for e in lines(json_logs) if e.get("request_id") == "req-static")
    assert entry["message"].startswith("GET /static/app.css 200 ")
    labels = {"method": "GET", "route": "/static/{path}", "status": "200"}
    assert (
        value(after, "http_requests_total", **labels)
        - value(before, "http_requests_total", **labels)
        == 1
    )


async def test_the_audit_activity_logs_one_short_line_per_batch(
    audit_log: AuditLog, json_logs: io.StringIO
) -> None:
    session_id = f"audit-log-{uuid.uuid4().hex[:8]}"
    events = [
        AuditEvent(session_id, seq, kind, "alice", datetime.now(UTC), "alice", "loto")
        for seq, kind in [(1, AuditEventType.SESSION_STARTED), (2, AuditEventType.CHECK_RECORDED)]
    ]
    append = AuditActivities(audit_log).append_audit_events

    assert await ActivityEnvironment().run(append, events) == 2
    assert await ActivityEnvironment().run(append, events) == 0

    logged = [
        e
        for e in lines(json_logs)
        if e["logger"] == "activities.audit" and e.get("session_id") == session_id
    ]
    assert [e["message"] for e in logged] == [
        f"audit of session {session_id} seq 1-2 appended, 2 new",
        f"audit of session {session_id} seq 1-2 appended, 0 new",
    ]
    assert logged[0]["first_seq"] == 1 and logged[0]["last_seq"] == 2


async def test_session_gauges_keep_trying_while_temporal_is_unreachable(
    json_logs: io.StringIO,
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    client = await connect(Settings(temporal_address=address), lazy=True)
    refresher = asyncio.create_task(
        keep_session_gauges_fresh(client, timedelta(seconds=0.05), timedelta(seconds=1))
    )

    async def retried() -> None:
        warnings = [e for e in lines(json_logs) if e["logger"] == "api.metrics"]
        assert len(warnings) >= 2 and not refresher.done()

    try:
        await assert_eventually(retried)
    finally:
        refresher.cancel()

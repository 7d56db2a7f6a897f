"""One trace per request: HTTP span → Temporal client span → workflow → audit activity."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Replayer

from api.auth import mint_token
from api.deps import Services
from api.gateway import WRITE_AUDIT_SPAN
from api.main import create_app
from devstack.processes import free_port
from devstack.stack import build_stack
from engine.client import DATA_CONVERTER, connect
from engine.tracing import SessionTracingInterceptor
from runtime.settings import Settings
from runtime.tracing import REQUEST_ID, Tracing, tracing_from_environment, tracing_wanted
from store.audit import AuditLog
from tests.api.test_encryption import encrypted_namespace
from tests.helpers import assert_eventually, bearer, new_user
from tests.helpers.api import new_session, publish_sop, start_session
from worker import build_worker
from workflows.work_session import AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER, WorkSessionWorkflow

ROOT = Path(__file__).resolve().parents[2]
AUDIT_RUN = "RunActivity:append_audit_events"
AUDIT_START = "StartActivity:append_audit_events"


@pytest.fixture(scope="module")
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@asynccontextmanager
async def traced_stack(
    settings: Settings, audit_log: AuditLog, exported: InMemorySpanExporter, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker of their own, each with a traced client, as two processes have."""
    tracing = Tracing.exporting_to([SimpleSpanProcessor(exported)], "work-sessions-test")
    traced_settings = settings.model_copy(
        update={"temporal_task_queue": f"traced-{uuid.uuid4().hex[:8]}", **overrides}
    )
    api_services = await Services.create(traced_settings, tracing)
    worker_client = await connect(traced_settings, tracing=tracing)
    async with build_worker(worker_client, traced_settings, audit_log):
        app = create_app(traced_settings, api_services, tracing)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            yield api
    await api_services.close()


@pytest.fixture(scope="module")
async def traced_api(
    settings: Settings, services: Services, worker: None, exported: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    async with traced_stack(settings, services.audit_log, exported) as api:
        yield api


class Trace:
    """The spans exported so far, searchable by name, attribute and parent."""

    def __init__(self, spans: tuple[ReadableSpan, ...]) -> None:
        self.spans = spans
        self._by_id = {s.context.span_id: s for s in spans if s.context is not None}

    def named(self, name: str, **attributes: Any) -> list[ReadableSpan]:
        return [
            s
            for s in self.spans
            if s.name == name
            and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
        ]

    def one(self, name: str, **attributes: Any) -> ReadableSpan:
        found = self.named(name, **attributes)
        assert len(found) == 1, f"{name} {attributes}: {[s.name for s in self.spans]}"
        return found[0]

    def parent(self, span: ReadableSpan) -> ReadableSpan:
        assert span.parent is not None, f"{span.name} has no parent"
        assert span.context is not None and span.parent.trace_id == span.context.trace_id
        return self._by_id[span.parent.span_id]


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    found: int = span.context.span_id
    return found


async def audit_written(exported: InMemorySpanExporter, session_id: str, count: int) -> Trace:
    """Waits until `count` audit writes of the session have been traced."""

    async def traced() -> Trace:
        spans = Trace(exported.get_finished_spans())
        assert len(spans.named(AUDIT_RUN, temporalWorkflowID=session_id)) >= count
        return spans

    # The run's own write of a change the API wrote at once comes this much later.
    return await assert_eventually(
        traced, timeout=AUDIT_WRITTEN_BY_CALLER_FLUSH_AFTER.total_seconds() + 10
    )


async def test_a_start_is_one_trace_from_the_request_to_its_audit_write(
    traced_api: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    sop = await publish_sop(traced_api)
    session = await start_session(
        traced_api, new_user(), sop["id"], **{"X-Request-ID": "req-trace-start"}
    )
    spans = await audit_written(exported, session["id"], 1)

    written = spans.one(AUDIT_RUN, temporalWorkflowID=session["id"])
    scheduled = spans.parent(written)
    assert scheduled.name == AUDIT_START
    started = spans.parent(scheduled)
    assert started.name == "StartWorkflow:WorkSessionWorkflow"
    assert started.attributes is not None
    assert started.attributes["temporalWorkflowID"] == session["id"]
    request = spans.parent(started)
    assert request.name == "POST /api/v1/sessions"
    assert spans.one("RunWorkflow:WorkSessionWorkflow", temporalWorkflowID=session["id"]).parent
    for span in (request, started, scheduled, written):
        assert (span.attributes or {}).get(REQUEST_ID) == "req-trace-start", span.name


async def check_recorded_with_its_audit_write(
    api: httpx.AsyncClient, exported: InMemorySpanExporter, request_id: str
) -> tuple[str, Trace]:
    """Records a check of a new session; its id and the trace once the check's audit is written."""
    worker, session = await new_session(api)
    await audit_written(exported, session["id"], 1)

    response = await api.post(
        f"/api/v1/sessions/{session['id']}/checks",
        json={"check_id": "breaker-off", "passed": True},
        headers={**bearer(worker), "X-Request-ID": request_id},
    )
    assert response.status_code == 201, response.text
    return session["id"], await audit_written(exported, session["id"], 2)


async def check_traced_to_its_audit_write(
    api: httpx.AsyncClient, exported: InMemorySpanExporter, request_id: str
) -> None:
    """Records a check and asserts its one trace, from the request to its audit write."""
    _, spans = await check_recorded_with_its_audit_write(api, exported, request_id)

    handled = spans.one("HandleUpdate:record_check", **{REQUEST_ID: request_id})
    scheduled = spans.one(AUDIT_START, **{REQUEST_ID: request_id})
    written = spans.one(AUDIT_RUN, **{REQUEST_ID: request_id})
    assert spans.parent(written) is scheduled
    assert spans.parent(scheduled) is handled
    sent = spans.parent(handled)
    assert sent.name == "StartWorkflowUpdate:record_check"
    validated = spans.one("ValidateUpdate:record_check", **{REQUEST_ID: request_id})
    assert spans.parent(validated) is sent
    request = spans.parent(sent)
    assert request.name == "POST /api/v1/sessions/{session_id}/checks"
    written_at_once = spans.one(WRITE_AUDIT_SPAN, **{REQUEST_ID: request_id})
    assert spans.parent(written_at_once) is request
    assert (written_at_once.attributes or {}).get("seq") == 2
    for span in (request, sent, validated, handled, scheduled, written, written_at_once):
        assert (span.attributes or {}).get(REQUEST_ID) == request_id, span.name


async def test_a_check_is_one_trace_from_the_request_through_the_update_to_its_audit_write(
    traced_api: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    await check_traced_to_its_audit_write(traced_api, exported, "req-trace-check")


async def test_with_payloads_encrypted_a_check_is_still_one_trace_to_its_audit_write(
    settings: Settings, services: Services, temporal_client: Client
) -> None:
    exported = InMemorySpanExporter()
    key = SecretStr(f"k1:{base64.b64encode(os.urandom(32)).decode()}")
    async with traced_stack(
        settings,
        services.audit_log,
        exported,
        payload_encryption_keys=key,
        # A namespace of its own: the other tests' APIs hold no key for these sessions.
        temporal_namespace=await encrypted_namespace(temporal_client),
    ) as api:
        await check_traced_to_its_audit_write(api, exported, "req-trace-encrypted")


async def test_changes_written_in_one_batch_are_written_in_the_oldest_ones_trace_linking_the_rest(
    traced_api: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    worker, session = await new_session(traced_api)
    await audit_written(exported, session["id"], 1)
    for check_id, request_id in (("breaker-off", "req-batch-1"), ("try-start", "req-batch-2")):
        response = await traced_api.post(
            f"/api/v1/sessions/{session['id']}/checks",
            json={"check_id": check_id, "passed": True},
            headers={**bearer(worker), "X-Request-ID": request_id},
        )
        assert response.status_code == 201, response.text

    async def both_written() -> Trace:
        spans = Trace(exported.get_finished_spans())
        first = spans.one("HandleUpdate:record_check", **{REQUEST_ID: "req-batch-1"})
        second = spans.one("HandleUpdate:record_check", **{REQUEST_ID: "req-batch-2"})
        writes = spans.named(AUDIT_START, temporalWorkflowID=session["id"])
        served = {
            span_id(handled): [
                w
                for w in writes
                if spans.parent(w) is handled
                or span_id(handled) in {link.context.span_id for link in w.links}
            ]
            for handled in (first, second)
        }
        assert all(len(found) == 1 for found in served.values()), served
        return spans

    spans = await assert_eventually(both_written)
    first = spans.one("HandleUpdate:record_check", **{REQUEST_ID: "req-batch-1"})
    second = spans.one("HandleUpdate:record_check", **{REQUEST_ID: "req-batch-2"})
    batched = [w for w in spans.named(AUDIT_START, temporalWorkflowID=session["id"]) if w.links]
    if batched:
        # Both changes went in one write (sent well within the flush interval, as here).
        (write,) = batched
        assert spans.parent(write) is first
        assert [link.context.span_id for link in write.links] == [span_id(second)]
        assert (write.attributes or {}).get(REQUEST_ID) == "req-batch-1"
    else:
        for handled in (first, second):
            assert [spans.parent(w) for w in spans.named(AUDIT_START)].count(handled) == 1


async def test_a_refused_change_shows_its_refusal_in_its_own_trace(
    traced_api: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    worker, session = await new_session(traced_api)
    response = await traced_api.post(
        f"/api/v1/sessions/{session['id']}/complete",
        headers={**bearer(worker), "X-Request-ID": "req-trace-refused"},
    )
    assert response.status_code == 409, response.text

    spans = Trace(exported.get_finished_spans())
    refused = spans.one("ValidateUpdate:complete", **{REQUEST_ID: "req-trace-refused"})
    assert spans.parent(refused).name == "StartWorkflowUpdate:complete"
    assert [event.name for event in refused.events] == ["exception"]
    assert not spans.named("HandleUpdate:complete", **{REQUEST_ID: "req-trace-refused"})


@pytest.mark.parametrize(
    ("variables", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "plant-7"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
    ],
)
def test_tracing_is_on_only_when_the_otel_variables_ask_for_an_exporter(
    variables: dict[str, str], wanted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert tracing_wanted(variables) is wanted
    tracing = tracing_from_environment("work-sessions-test")
    assert (tracing is not None) is wanted
    if tracing is not None:
        tracing.provider.shutdown()


def test_an_exporter_that_is_not_installed_stops_the_process_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(ValueError, match="otlp_proto_grpc.*not installed"):
        tracing_from_environment("work-sessions-test")


def test_without_otel_variables_the_processes_load_nothing_of_the_sdk() -> None:
    untraced = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, api.main, worker; api.main.create_app(); "
            "print(*(m for m in sys.modules if m.startswith(("
            "'opentelemetry.sdk', 'opentelemetry.exporter', 'temporalio.contrib.opentelemetry'))))",
        ],
        env=untraced,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.split() == []


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """An OTLP/HTTP trace endpoint on loopback that keeps what it receives."""
    received: list[ExportTraceServiceRequest] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()
            self.wfile.write(ExportTraceServiceResponse().SerializeToString())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


async def test_the_api_exports_its_spans_to_the_otlp_endpoint_the_variables_name(
    settings: Settings, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    with otlp_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "plant-7-api")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        tracing = tracing_from_environment("work-sessions-api")
        assert tracing is not None
        app = create_app(settings, services, tracing)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            response = await api.get("/api/v1/vocabulary", headers={"X-Request-ID": "req-otlp"})
        assert response.status_code == 200

        async def exported() -> None:
            spans = [
                (resource.resource, span)
                for request in received
                for resource in request.resource_spans
                for scope in resource.scope_spans
                for span in scope.spans
                if span.name == "GET /api/v1/vocabulary"
            ]
            assert len(spans) == 1
            resource, span = spans[0]
            attributes = {a.key: a.value.string_value for a in span.attributes}
            assert attributes[REQUEST_ID] == "req-otlp"
            service = {a.key: a.value.string_value for a in resource.attributes}
            assert service["service.name"] == "plant-7-api"

        await assert_eventually(exported)
        tracing.provider.shutdown()


async def test_a_worker_that_replays_every_task_makes_each_span_once(
    settings: Settings, services: Services, worker: None
) -> None:
    exported = InMemorySpanExporter()
    async with traced_stack(
        settings, services.audit_log, exported, worker_max_cached_workflows=0
    ) as api:
        sid, spans = await check_recorded_with_its_audit_write(api, exported, "req-trace-replayed")

    assert len(spans.named("RunWorkflow:WorkSessionWorkflow", temporalWorkflowID=sid)) == 1
    assert len(spans.named("HandleUpdate:record_check", temporalWorkflowID=sid)) == 1
    writes = spans.named(AUDIT_START, temporalWorkflowID=sid)
    assert len(writes) == 2
    # Rebuilt from history before its write, the session no longer knows the check's
    # request: the write joins the session's start trace.
    started = spans.one("StartWorkflow:WorkSessionWorkflow", temporalWorkflowID=sid)
    assert [spans.parent(w) for w in writes] == [started, started]


@pytest.mark.slow
async def test_the_api_and_worker_processes_trace_a_check_configured_only_by_otel_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "trace-processes-secret-0123456789abcdef"
    settings = Settings(
        temporal_address=f"127.0.0.1:{free_port()}",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/app.db",
        auth_jwt_secret=secret,
        api_port=free_port(),
        log_format="json",
        embedded=False,
    )
    worker = new_user()
    headers = {"Authorization": f"Bearer {mint_token(secret, worker, ['worker'])}"}
    with otlp_receiver() as (endpoint, received):
        # The processes inherit the launcher's environment: these variables are all they get.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
        stack = build_stack(settings, tmp_path)
        try:
            await stack.start()
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{settings.api_port}", headers=headers, timeout=30
            ) as api:
                started = await api.post("/api/v1/sessions", json={"sop_id": "loto-press-7"})
                assert started.status_code == 201, started.text
                session_id = started.json()["id"]

                async def start_audited() -> None:
                    audit = await api.get(f"/api/v1/sessions/{session_id}/audit")
                    assert audit.status_code == 200 and audit.json()["items"], audit.text

                # Else the check's event could go in the start's audit write, in its trace.
                await assert_eventually(start_audited, timeout=30)
                recorded = await api.post(
                    f"/api/v1/sessions/{session_id}/checks",
                    json={"check_id": "breaker-off", "passed": True},
                    headers={"X-Request-ID": "req-processes"},
                )
                assert recorded.status_code == 201, recorded.text

            async def traced_to_the_audit_write() -> None:
                spans = {
                    span.span_id: (service, span)
                    for request in received
                    for resource in request.resource_spans
                    for service in [
                        next(
                            a.value.string_value
                            for a in resource.resource.attributes
                            if a.key == "service.name"
                        )
                    ]
                    for scope in resource.scope_spans
                    for span in scope.spans
                    if any(
                        a.key == REQUEST_ID and a.value.string_value == "req-processes"
                        for a in span.attributes
                    )
                }
                written = next((k for k, (_, s) in spans.items() if s.name == AUDIT_RUN), None)
                chain = []
                while written in spans:
                    service, span = spans[written]
                    chain.append(f"{service} {span.name}")
                    written = span.parent_span_id
                assert chain == [
                    f"work-sessions-worker {AUDIT_RUN}",
                    f"work-sessions-worker {AUDIT_START}",
                    "work-sessions-worker HandleUpdate:record_check",
                    "work-sessions-api StartWorkflowUpdate:record_check",
                    "work-sessions-api POST /api/v1/sessions/{session_id}/checks",
                ]

            await assert_eventually(traced_to_the_audit_write, timeout=30, interval=0.2)
        finally:
            await asyncio.to_thread(stack.stop)


async def test_a_traced_session_replays_with_and_without_tracing_making_no_span(
    traced_api: httpx.AsyncClient, exported: InMemorySpanExporter, services: Services
) -> None:
    worker, session = await new_session(traced_api)
    for check_id in ("breaker-off", "residual-v"):
        answer = {"passed": True} if check_id == "breaker-off" else {"value": 1.5}
        response = await traced_api.post(
            f"/api/v1/sessions/{session['id']}/checks",
            json={"check_id": check_id, **answer},
            headers=bearer(worker),
        )
        assert response.status_code == 201, response.text

    async def all_audited() -> None:
        audit = await traced_api.get(
            f"/api/v1/sessions/{session['id']}/audit", headers=bearer(worker)
        )
        assert len(audit.json()["items"]) == 3, audit.text

    await assert_eventually(all_audited)
    history = await services.client.get_workflow_handle(session["id"]).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert "_tracer-data" in started.header.fields, "a traced history"

    replay_spans = InMemorySpanExporter()
    tracing = Tracing.exporting_to([SimpleSpanProcessor(replay_spans)], "work-sessions-test")
    for interceptors in ([], [SessionTracingInterceptor(tracing.provider.get_tracer(__name__))]):
        replayer = Replayer(
            workflows=[WorkSessionWorkflow],
            data_converter=DATA_CONVERTER,
            interceptors=interceptors,
        )
        await replayer.replay_workflow(history)
    assert replay_spans.get_finished_spans() == ()

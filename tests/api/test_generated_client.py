"""A client that `openapi-python-client` generates from the live document drives the main flow.

Integrators generate clients; every answer of the session commands, problems
included, must arrive typed, and the CSV export must arrive as text.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from types import ModuleType
from typing import Any

import httpx
import pytest

from api.auth import mint_token
from api.deps import Services
from api.main import create_app
from runtime.settings import Settings
from tests.api.helpers import sop_definition
from tests.conftest import TEST_SECRET, eventually, new_user

pytestmark = pytest.mark.usefixtures("worker")

PACKAGE = "generated_work_sessions_client"


@pytest.fixture(scope="module")
def generated(
    settings: Settings, services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleType]:
    """The generated client package, imported."""
    root = tmp_path_factory.mktemp("generated")
    document = root / "openapi.json"
    document.write_text(json.dumps(create_app(settings, services).openapi()))
    config = root / "config.yaml"
    # The generated code is imported, not read: no formatting pass.
    config.write_text("post_hooks: []\n")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "openapi_python_client", "generate"),
            *("--path", str(document), "--output-path", str(root / PACKAGE)),
            *("--meta", "none", "--config", str(config)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The generator says "Warning" for each part of the document it had to drop.
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))


class Generated:
    """Calls into the generated package as one user: `call("sessions", "pause_session", ...)`."""

    def __init__(self, package: ModuleType, app: Any, user: str, *roles: str) -> None:
        self.package = package
        self.models = importlib.import_module(f"{package.__name__}.models")
        self.client = package.AuthenticatedClient(
            base_url="http://testserver",
            token=mint_token(TEST_SECRET, user, list(roles)),
            httpx_args={"transport": httpx.ASGITransport(app=app)},
        )

    async def call(self, tag: str, operation: str, *args: Any, **kwargs: Any) -> Any:
        module = importlib.import_module(f"{self.package.__name__}.api.{tag}.{operation}")
        return await module.asyncio_detailed(*args, client=self.client, **kwargs)


@pytest.fixture(scope="module")
def app(settings: Settings, services: Services) -> Any:
    return create_app(settings, services)


def test_every_error_response_is_the_one_problem_and_bodiless_calls_cannot_413(app: Any) -> None:
    document = app.openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/problem+json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Problem"}, (path, status)
            if "requestBody" not in operation:
                assert "413" not in operation["responses"], (method, path)
    problem = document["components"]["schemas"]["Problem"]
    assert problem["properties"]["code"] == {"$ref": "#/components/schemas/ProblemCode"}
    assert "invalid_transition" in document["components"]["schemas"]["ProblemCode"]["enum"]


async def test_a_generated_client_runs_sessions_and_gets_typed_problems(
    generated: ModuleType, app: Any
) -> None:
    supervisor = Generated(generated, app, new_user("sup"), "supervisor")
    worker = Generated(generated, app, new_user(), "worker")
    models = worker.models
    definition = sop_definition()
    published = await supervisor.call(
        "sops", "publish_sop", body=models.SopDefinition.from_dict(definition)
    )
    assert published.status_code == HTTPStatus.CREATED

    started = await worker.call(
        "sessions",
        "start_session",
        body=models.StartSessionIn(sop_id=definition["id"]),
        idempotency_key=str(uuid.uuid4()),
    )
    other = await worker.call(
        "sessions", "start_session", body=models.StartSessionIn(sop_id=definition["id"])
    )
    assert started.status_code == other.status_code == HTTPStatus.CREATED
    session = started.parsed
    assert isinstance(session, models.WorkSessionOut)
    assert session.status == models.SessionStatus.IN_PROGRESS

    confirmed = await worker.call(
        "sessions",
        "record_check",
        session.id,
        body=models.RecordCheckIn(check_id="breaker-off", passed=True),
    )
    measured = await worker.call(
        "sessions",
        "record_check",
        session.id,
        body=models.RecordCheckIn(check_id="residual-v", value=7.5, note="over the limit"),
    )
    assert confirmed.status_code == measured.status_code == HTTPStatus.CREATED
    assert [(c.check_id, c.passed) for c in measured.parsed.safety_checks] == [
        ("breaker-off", True),
        ("residual-v", False),
    ]

    paused = await worker.call("sessions", "pause_session", session.id)
    assert paused.parsed.status == models.SessionStatus.PAUSED

    refused = await worker.call(
        "sessions",
        "record_check",
        session.id,
        body=models.RecordCheckIn(check_id="residual-v", value=0.5),
    )
    assert refused.status_code == HTTPStatus.CONFLICT
    problem = refused.parsed
    assert isinstance(problem, models.Problem)
    assert problem.code == models.ProblemCode.INVALID_TRANSITION
    assert problem.session_status == models.SessionStatus.PAUSED

    unknown = await worker.call("sessions", "get_session", f"no-such-{uuid.uuid4().hex}")
    assert unknown.status_code == HTTPStatus.NOT_FOUND
    assert unknown.parsed.code == models.ProblemCode.SESSION_NOT_FOUND

    invalid = await worker.call(
        "sessions", "record_check", session.id, body=models.RecordCheckIn(check_id="Not An Id")
    )
    assert invalid.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert invalid.parsed.code == models.ProblemCode.VALIDATION_ERROR
    assert [issue.loc for issue in invalid.parsed.errors] == [["body", "check_id"]]

    resumed = await worker.call("sessions", "resume_session", session.id)
    assert resumed.parsed.status == models.SessionStatus.IN_PROGRESS

    aborted = await worker.call(
        "sessions",
        "abort_session",
        other.parsed.id,
        body=models.AbortIn(reason="wrong press"),
    )
    assert aborted.parsed.status == models.SessionStatus.ABORTED
    assert aborted.parsed.abort_reason == "wrong press"

    async def lists_agree() -> None:
        active = await worker.call("sessions", "list_sessions")
        ended = await worker.call(
            "sessions", "list_sessions", status=[models.SessionStatus.ABORTED]
        )
        assert [s.id for s in active.parsed.items] == [session.id]
        assert [s.id for s in ended.parsed.items] == [other.parsed.id]

    await eventually(lists_agree)

    async def audit_landed() -> tuple[Any, Any]:
        page = await supervisor.call("audit", "list_audit_events", session_id=session.id)
        assert len(page.parsed.items) == 5
        return page, await supervisor.call("audit", "get_audit_csv", session_id=session.id)

    as_json, as_csv = await eventually(audit_landed)
    assert [e.type_ for e in as_json.parsed.items] == [
        models.AuditEventType.SESSION_STARTED,
        models.AuditEventType.CHECK_RECORDED,
        models.AuditEventType.CHECK_RECORDED,
        models.AuditEventType.SESSION_PAUSED,
        models.AuditEventType.SESSION_RESUMED,
    ]
    assert as_csv.status_code == HTTPStatus.OK
    assert isinstance(as_csv.parsed, str)
    rows = list(csv.DictReader(io.StringIO(as_csv.parsed)))
    assert [(row["seq"], row["type"]) for row in rows] == [
        (str(e.seq), e.type_.value) for e in as_json.parsed.items
    ]

    as_worker = await worker.call("audit", "get_audit_csv")
    assert as_worker.status_code == HTTPStatus.FORBIDDEN
    assert as_worker.parsed.code == models.ProblemCode.FORBIDDEN

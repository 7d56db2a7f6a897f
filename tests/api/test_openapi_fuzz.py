"""The live OpenAPI document, fuzzed with schemathesis against the in-process app.

Every generated request (valid and invalid) must get an answer the document
declares: a declared status code, a declared content type, a body matching its
schema, and never a 5xx. Invalid data must be refused with a 4xx. Set
`SCHEMATHESIS_MAX_EXAMPLES` for a longer run; the default keeps `make test` quick.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from api.deps import Services
from api.main import create_app
from runtime.settings import Settings
from tests.helpers import bearer, new_user
from tests.helpers.api import publish_sop, start_session

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "15"))
BASE_URL = "http://testserver"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

Send = Callable[[Case[Any], dict[str, str]], httpx.Response]

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
async def app_client(
    settings: Settings, services: Services
) -> AsyncIterator[tuple[OpenApiSchema, httpx.AsyncClient]]:
    app = create_app(settings, services)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # A 500 must come back as a response for the checks to judge, not as an exception.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield schema, client


def _sender(client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> Send:
    """Sends a case through the app on the test's event loop, where the services live."""

    def send(case: Case[Any], headers: dict[str, str]) -> httpx.Response:
        kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
        request = client.request(
            kwargs["method"],
            kwargs["url"],
            headers=kwargs["headers"],
            params=kwargs.get("params"),
            cookies=kwargs.get("cookies") or None,
            json=kwargs.get("json"),
            content=kwargs.get("data"),
        )
        return asyncio.run_coroutine_threadsafe(request, loop).result(timeout=60)

    return send


def _fuzz(
    schema: OpenApiSchema,
    send: Send,
    mode: GenerationMode,
    headers: dict[str, str],
    session_id: str,
) -> tuple[list[str], int]:
    """Runs every operation; returns the failures and how many requests were sent."""
    failures: list[str] = []
    sent = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operation = result.ok()
        has_session = any(p.name == "session_id" for p in operation.path_parameters)
        # Random ids only reach "not found"; the caller's own session reaches the handlers.
        for path_parameters in ({}, {"session_id": session_id}) if has_session else ({},):

            @hypothesis_settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            @given(
                case=operation.as_strategy(
                    mode, headers=headers, path_parameters=path_parameters or None
                )
            )
            def run(case: Case[Any]) -> None:
                nonlocal sent
                response = send(case, headers)
                sent += 1
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                continue  # Nothing to make invalid: the operation takes no input here.
            except Exception as err:  # every operation gets its say, not just the first to fail
                failures.append(f"{operation.label} {path_parameters or ''}:\n{err}")
    return failures, sent


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("roles", [("worker",), ("worker", "supervisor")], ids=["worker", "both"])
async def test_every_answer_is_declared_and_no_request_causes_a_server_error(
    app_client: tuple[OpenApiSchema, httpx.AsyncClient],
    mode: GenerationMode,
    roles: tuple[str, ...],
) -> None:
    schema, client = app_client
    user = new_user("fuzz")
    sop = await publish_sop(client)
    session = await start_session(client, user, sop["id"])
    headers = {**bearer(user, *roles), "Accept": "application/json, application/problem+json"}
    send = _sender(client, asyncio.get_running_loop())

    failures, sent = await asyncio.to_thread(_fuzz, schema, send, mode, headers, session["id"])

    print(f"schemathesis {mode.value} as {'+'.join(roles)}: {sent} requests")
    assert sent > 0
    assert not failures, "\n\n".join(failures)

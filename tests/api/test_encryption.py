"""Encrypted payloads end to end on the real dev server: sessions span key rotation and
the day encryption was turned on; Temporal itself holds only ciphertext."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Replayer

from api.deps import Services
from engine.client import connect, data_converter, register_search_attributes
from engine.codec import ENCODING, KEY_ID_METADATA
from engine.register import ensure_namespace
from runtime.settings import Settings
from tests.helpers import assert_eventually, bearer, new_user
from tests.helpers.api import act, api_of_its_own, publish_sop, record, start_session
from worker import build_worker
from workflows.shared import SUMMARY_MEMO_KEY
from workflows.work_session import WorkSessionWorkflow

# Readable by design: search attributes (visibility indexes them) and the SDK's patch
# markers, which name only a code change.
NEVER_ENCRYPTED = {"search_attributes", "marker_recorded_event_attributes"}
KEY_A = f"a:{base64.b64encode(os.urandom(32)).decode()}"
KEY_B = f"b:{base64.b64encode(os.urandom(32)).decode()}"


@asynccontextmanager
async def deployment(settings: Settings, keys: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker as one release of the product runs them, with these keys."""
    settings = settings.model_copy(
        update={"payload_encryption_keys": SecretStr(keys) if keys else None}
    )
    async with api_of_its_own(settings) as (api, services):
        worker_client = await connect(settings)
        async with build_worker(worker_client, settings, services.audit_log):
            yield api


def payloads_of(event: Any) -> list[Payload]:
    """Every payload an event carries that a codec encodes (input, updates, results, memo)."""
    found: list[Payload] = []

    def walk(message: Any) -> None:
        for field, value in message.ListFields():
            if field.message_type is None or field.name in NEVER_ENCRYPTED:
                continue
            if hasattr(value, "ListFields"):
                items = [value]
            elif field.message_type.GetOptions().map_entry:
                items = list(value.values())
            else:
                items = list(value)
            for item in items:
                if isinstance(item, Payload):
                    found.append(item)
                elif hasattr(item, "ListFields"):
                    walk(item)

    walk(event)
    return found


async def key_ids_in_history(client: Client, session_id: str) -> list[str | None]:
    """The key id of each payload in the session's history, in order (None: plaintext)."""
    history = await client.get_workflow_handle(session_id).fetch_history()
    return [
        p.metadata[KEY_ID_METADATA].decode() if p.metadata.get("encoding") == ENCODING else None
        for event in history.events
        for p in payloads_of(event)
    ]


async def memo_key_id(client: Client, namespace: str, session_id: str) -> str | None:
    response = await client.workflow_service.list_workflow_executions(
        ListWorkflowExecutionsRequest(namespace=namespace, query=f"WorkflowId = '{session_id}'"),
        retry=True,
    )
    memo = response.executions[0].memo.fields[SUMMARY_MEMO_KEY]
    assert memo.metadata.get("encoding") == ENCODING, "the list memo is stored in plaintext"
    return memo.metadata[KEY_ID_METADATA].decode()


async def encrypted_namespace(client: Client) -> str:
    namespace = f"encrypted-{uuid.uuid4().hex[:8]}"
    await ensure_namespace(client, namespace, timedelta(days=1))

    async def searchable() -> None:
        try:
            await register_search_attributes(client, namespace)
        except RPCError as err:
            raise AssertionError(f"namespace {namespace} not ready: {err}") from err

    await assert_eventually(searchable)
    return namespace


async def test_sessions_span_encryption_turned_on_and_a_key_rotation(
    settings: Settings, temporal_client: Client, services: Services
) -> None:
    settings = settings.model_copy(
        update={
            # A namespace of its own: the other tests' APIs hold no keys for these sessions.
            "temporal_namespace": await encrypted_namespace(temporal_client),
            "temporal_task_queue": f"encrypted-{uuid.uuid4().hex[:8]}",
            # A release's first message to a session the previous release had cached waits
            # for that release's sticky queue to time out (3 s) first.
            "temporal_rpc_timeout_seconds": 20.0,
        }
    )
    # Temporal as it stores the sessions: no codec between it and the test.
    stored = Client(temporal_client.service_client, namespace=settings.temporal_namespace)
    user = new_user()
    note = f"meter M-{uuid.uuid4().hex[:6]}"

    async with deployment(settings, None) as api:
        sop = await publish_sop(api)
        before = (await start_session(api, user, sop["id"]))["id"]
    async with deployment(settings, KEY_A) as api:
        under_a = (await start_session(api, user, sop["id"]))["id"]
        assert (await record(api, user, under_a, "breaker-off", passed=True)).status_code == 201
        refused = await act(api, user, under_a, "resume")
        assert (refused.status_code, refused.json()["code"]) == (409, "invalid_transition")
        # Failure messages travel encrypted and come back readable.
        assert "in progress" in refused.json()["detail"]
    assert set(await key_ids_in_history(stored, before)) == {None}
    assert set(await key_ids_in_history(stored, under_a)) == {"a"}

    async with deployment(settings, f"{KEY_A},{KEY_B}") as api:
        for sid in (before, under_a):
            checked = await api.post(
                f"/api/v1/sessions/{sid}/checks",
                json={"check_id": "residual-v", "value": 2.5, "note": note},
                headers={**bearer(user), "Idempotency-Key": f"key-{sid}"},
            )
            assert checked.status_code == 201, checked.text
            assert checked.json()["safety_checks"][-1]["note"] == note
            assert (await act(api, user, sid, "pause", {"reason": note})).status_code == 200
            resumed = await act(api, user, sid, "resume")
            assert resumed.status_code == 200
            assert resumed.json()["status"] == "IN_PROGRESS"
            unknown = await record(api, user, sid, "no-such-check", passed=True)
            assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_check")

        async def listed_with_progress() -> None:
            response = await api.get("/api/v1/sessions", headers=bearer(user))
            items = {item["id"]: item for item in response.json()["items"]}
            assert items[before]["progress"]["checks_passed"] == 1
            assert items[under_a]["progress"]["checks_passed"] == 2
            assert items[under_a]["sop_title"] == sop["title"]
            assert await memo_key_id(stored, settings.temporal_namespace, under_a) == "b"

        await assert_eventually(listed_with_progress)

        async def audited() -> None:
            response = await api.get(f"/api/v1/sessions/{under_a}/audit", headers=bearer(user))
            types = [event["type"] for event in response.json()["items"]]
            assert types == [
                "session_started",
                "check_recorded",
                "check_recorded",
                "session_paused",
                "session_resumed",
            ]

        await assert_eventually(audited)

    async with api_of_its_own(settings) as (api, _):
        # An API configured without the keys the sessions use names the cause, never a 500.
        response = await api.get("/api/v1/sessions", headers=bearer(user))
        assert (response.status_code, response.json()["code"]) == (503, "encryption_key_missing")

    rotated = data_converter(
        settings.model_copy(update={"payload_encryption_keys": SecretStr(f"{KEY_A},{KEY_B}")})
    )
    replayer = Replayer(workflows=[WorkSessionWorkflow], data_converter=rotated)
    for sid, first in ((before, None), (under_a, "a")):
        ids = await key_ids_in_history(stored, sid)
        assert ids[0] == first, "the start input keeps the key it was written with"
        assert ids[-1] == "b", "new payloads are encrypted with the newest key"
        history = await stored.get_workflow_handle(sid).fetch_history()
        text = history.to_json()
        assert note not in text
        # The update id names the answer by a digest a reader of the history cannot recompute.
        answer = json.dumps(["residual-v", None, 2.5, note]).encode()
        assert f"check:{user}:key-{sid}:" in text
        for guess in (hashlib.sha256(answer), hmac.new(b"", answer, hashlib.sha256)):
            assert guess.hexdigest()[:32] not in text
        await replayer.replay_workflow(history)

"""Two ways to run the same session operations: REST through the facade, or the bare SDK."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Protocol

from temporalio.client import Client

from bench.http import HttpClient, Response
from devstack.answers import Answer
from engine.sessions import Deadline, send_command, session_handle
from engine.starting import start_session_workflow
from workflows.shared import (
    AbortRequest,
    Actor,
    CompleteRequest,
    PauseRequest,
    RecordCheckRequest,
    ResumeRequest,
    SessionCommand,
    SopSnapshot,
)

RPC_TIMEOUT = timedelta(seconds=30)
# The example SOP every bench session runs: 12 checks over 5 steps, 3 of them measurements.
BENCH_SOP_ID = "loto-press-7"


class Driver(Protocol):
    """The session operations one virtual worker sends."""

    async def start(self) -> str:
        """Starts a session of the bench SOP; returns its id."""
        ...

    async def check(self, session_id: str, answer: Answer) -> None:
        """Records one check answer."""
        ...

    async def pause(self, session_id: str) -> None:
        """Pauses a session."""
        ...

    async def resume(self, session_id: str) -> None:
        """Resumes a session."""
        ...

    async def abort(self, session_id: str) -> None:
        """Aborts a session."""
        ...

    async def complete(self, session_id: str) -> None:
        """Completes a session."""
        ...


class UnexpectedResponse(Exception):
    """The API answered with another status than the operation's success status."""


class RestDriver:
    """A virtual worker talking to the REST facade with its own bearer token."""

    def __init__(self, http: HttpClient, token: str, sop_id: str = BENCH_SOP_ID) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}"}
        self._sop_id = sop_id

    async def _post(self, path: str, body: object, expected: int, key: bool = False) -> Response:
        headers = self._headers
        if key:
            headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        response = await self._http.post(f"/api/v1/sessions{path}", json=body, headers=headers)
        if response.status_code != expected:
            raise UnexpectedResponse(f"POST {path}: {response.status_code} {response.text[:300]}")
        return response

    async def start(self) -> str:
        """Starts a session the way a client that may retry does: with an Idempotency-Key."""
        response = await self._post("", {"sop_id": self._sop_id}, 201, key=True)
        session_id: str = response.json()["id"]
        return session_id

    async def check(self, session_id: str, answer: Answer) -> None:
        """Records a check with an Idempotency-Key."""
        await self._post(f"/{session_id}/checks", answer.body(), 201, key=True)

    async def pause(self, session_id: str) -> None:
        """Pauses with a reason."""
        await self._post(f"/{session_id}/pause", {"reason": "bench break"}, 200)

    async def resume(self, session_id: str) -> None:
        """Resumes."""
        await self._post(f"/{session_id}/resume", None, 200)

    async def abort(self, session_id: str) -> None:
        """Aborts with a reason."""
        await self._post(f"/{session_id}/abort", {"reason": "bench abort"}, 200)

    async def complete(self, session_id: str) -> None:
        """Completes."""
        await self._post(f"/{session_id}/complete", None, 200)


class SdkDriver:
    """A virtual worker sending the facade's Temporal calls straight from the SDK."""

    def __init__(self, client: Client, task_queue: str, sop: SopSnapshot, user_id: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._sop = sop
        self._user_id = user_id
        self._actor = Actor(user_id=user_id, roles=["worker"])

    async def _send(self, session_id: str, command: SessionCommand) -> None:
        """Sends a command on the product's engine path, retries across continue-as-new included."""
        handle = session_handle(self._client, session_id)
        await send_command(handle, command, Deadline(RPC_TIMEOUT))

    async def start(self) -> str:
        """Starts the workflow with the facade's options, search attributes and memo."""
        session_id = str(uuid.uuid4())
        await start_session_workflow(
            self._client,
            session_id=session_id,
            worker_id=self._user_id,
            sop=self._sop,
            task_queue=self._task_queue,
            rpc_timeout=RPC_TIMEOUT,
        )
        return session_id

    async def check(self, session_id: str, answer: Answer) -> None:
        """Records a check with an idempotency key, as the facade sends one."""
        request = RecordCheckRequest(
            self._actor, answer.check_id, answer.passed, answer.value, None, uuid.uuid4().hex
        )
        await self._send(session_id, request)

    async def pause(self, session_id: str) -> None:
        """Pauses with a reason."""
        await self._send(session_id, PauseRequest(self._actor, "bench break"))

    async def resume(self, session_id: str) -> None:
        """Resumes."""
        await self._send(session_id, ResumeRequest(self._actor))

    async def abort(self, session_id: str) -> None:
        """Aborts with a reason."""
        await self._send(session_id, AbortRequest(self._actor, "bench abort"))

    async def complete(self, session_id: str) -> None:
        """Completes."""
        await self._send(session_id, CompleteRequest(self._actor))

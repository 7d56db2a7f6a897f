"""Limits every request is held to before any route reads it."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ProblemCode, problem_response
from api.routes.codec import CODEC_PATH

MAX_BODY_BYTES = 64 * 1024
# SOP definitions may be long (up to 100 steps of instructions), yet every session
# carries its SOP snapshot in Temporal payloads, which must stay under 2 MB.
MAX_SOP_BODY_BYTES = 1024 * 1024
SOP_PATH = "/api/v1/sops"
# The Web UI asks the codec to decode whole payloads, each up to Temporal's 2 MB, in base64.
MAX_CODEC_BODY_BYTES = 4 * 1024 * 1024


def _too_large_detail(max_bytes: int) -> str:
    return f"The request body may be at most {max_bytes} bytes long."


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodySizeLimit:
    """Refuses request bodies over the limit with a 413 problem, declared or streamed."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        sop_max_bytes: int = MAX_SOP_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.sop_max_bytes = sop_max_bytes

    def _limit(self, path: str) -> int:
        if path == SOP_PATH:
            return self.sop_max_bytes
        if path.startswith(f"{CODEC_PATH}/"):
            return MAX_CODEC_BODY_BYTES
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            response = problem_response(ProblemCode.PAYLOAD_TOO_LARGE, _too_large_detail(limit))
            await response(scope, receive, send)
            return

        received = 0

        async def limited_receive() -> Message:
            # A chunked body has no Content-Length: count what actually arrives.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises HTTPExceptions met while reading the body;
                    # the problem handler answers this one as `payload_too_large`.
                    raise HTTPException(413, _too_large_detail(limit))
            return message

        await self.app(scope, limited_receive, send)

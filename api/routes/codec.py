"""Temporal's remote codec protocol: the Web UI shows encrypted sessions to supervisors.

The Web UI (or `temporal --codec-endpoint`) posts `{"payloads": [...]}` in Temporal's
JSON form to `/codec/decode` or `/codec/encode` with an `X-Namespace` header. Mounted
only when payload encryption is configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from google.protobuf import json_format
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from api.callers import made_on_this_machine
from api.deps import ServicesDep, bearer_credentials, get_current_user
from api.errors import ProblemCode, ProblemError, problem_response, problems
from engine.codec import EncryptionCodec, UndecryptablePayload

CODEC_PATH = "/codec"

router = APIRouter(prefix=CODEC_PATH, tags=["codec"])


class CodecPayload(BaseModel):
    """One Temporal payload in its JSON form: metadata values and data in base64."""

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class CodecPayloads(BaseModel):
    """The body of a codec request and of its answer."""

    payloads: list[CodecPayload]


async def get_codec(services: ServicesDep) -> EncryptionCodec:
    """Gets the codec the API's own Temporal client encrypts with."""
    codec = services.client.data_converter.payload_codec
    if not isinstance(codec, EncryptionCodec):
        raise ProblemError(ProblemCode.NOT_FOUND, "Payload encryption is not configured.")
    return codec


async def authorize_codec_caller(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_credentials)],
    x_namespace: Annotated[str | None, Header()] = None,
) -> None:
    """Lets supervisors through, and under `make run` tokenless callers on this machine.

    The dev server's Web UI sends no token; where the public dev secret is in force,
    anyone on this machine can mint a supervisor token anyway.
    """
    settings = services.settings
    if credentials is None and settings.dev_secret_in_force():
        if not made_on_this_machine(request):
            raise ProblemError(
                ProblemCode.FORBIDDEN,
                "Without a token, the codec endpoints answer only requests made on this machine.",
            )
    else:
        user = await get_current_user(services, credentials)
        if not user.is_supervisor:
            raise ProblemError(
                ProblemCode.FORBIDDEN, "Reading session payloads needs the supervisor role."
            )
    if x_namespace is not None and x_namespace != settings.temporal_namespace:
        raise ProblemError(
            ProblemCode.FORBIDDEN,
            f"This codec server serves the namespace {settings.temporal_namespace!r} only.",
        )


CodecDep = Annotated[EncryptionCodec, Depends(get_codec)]
_RESPONSES = problems(403, 404, 413)


def _payloads(body: CodecPayloads) -> Payloads:
    try:
        return json_format.ParseDict(body.model_dump(), Payloads())
    except json_format.ParseError as err:
        raise ProblemError(
            ProblemCode.VALIDATION_ERROR, "Payload metadata and data must be base64."
        ) from err


def _answer(payloads: Payloads) -> JSONResponse:
    body = CodecPayloads(
        payloads=[
            CodecPayload.model_validate(json_format.MessageToDict(p)) for p in payloads.payloads
        ]
    )
    return JSONResponse(body.model_dump())


@router.post(
    "/decode",
    response_model=CodecPayloads,
    responses=_RESPONSES,
    dependencies=[Depends(authorize_codec_caller)],
)
async def decode_payloads(body: CodecPayloads, codec: CodecDep) -> JSONResponse:
    """Decrypts payloads for the Web UI; plaintext payloads come back unchanged."""
    try:
        decoded = await codec.decode(_payloads(body).payloads)
    except UndecryptablePayload as err:
        raise ProblemError(ProblemCode.UNDECRYPTABLE_PAYLOAD, str(err)) from err
    return _answer(Payloads(payloads=decoded))


@router.post(
    "/encode",
    response_model=CodecPayloads,
    responses=_RESPONSES,
    dependencies=[Depends(authorize_codec_caller)],
)
async def encode_payloads(body: CodecPayloads, codec: CodecDep) -> JSONResponse:
    """Encrypts payloads with the newest key, as the product's own clients do."""
    return _answer(Payloads(payloads=await codec.encode(_payloads(body).payloads)))


class CodecCORS:
    """CORS for the codec endpoints alone, for the Web UI's origins alone.

    The Web UI calls the codec from the browser, from its own origin: a JSON body and
    the X-Namespace header make every call preflighted. No other path answers CORS.
    """

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self._app = app
        self._cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["POST"],
            allow_headers=["authorization", "content-type", "x-namespace"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(f"{CODEC_PATH}/"):
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        preflight = (
            scope["method"] == "OPTIONS"
            and "origin" in headers
            and "access-control-request-method" in headers
        )
        if not preflight:
            await self._cors(scope, receive, send)
            return
        answer = self._cors.preflight_response(request_headers=headers)
        if answer.status_code != 200:
            # Starlette refuses in plain text; a refusal here is a problem like any other.
            reason = bytes(answer.body).decode()
            answer = problem_response(ProblemCode.FORBIDDEN, f"{reason}: not the Web UI's.")
        await answer(scope, receive, send)

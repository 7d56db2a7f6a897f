"""The dev sign-in: mounted only while the public dev secret is in force; loopback only."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.auth import mint_token
from api.callers import made_on_this_machine
from api.errors import ProblemCode, ProblemError, problems
from api.schemas import DevTokenIn, DevTokenOut
from runtime.settings import DEV_JWT_SECRET

router = APIRouter(prefix="/api/v1/dev", tags=["dev"])

DEV_TOKEN_TTL_SECONDS = 12 * 3600


def _refuse_remote_callers(request: Request) -> None:
    if not made_on_this_machine(request):
        raise ProblemError(
            ProblemCode.FORBIDDEN, "The dev sign-in answers only requests made on this machine."
        )


@router.post("/token", responses=problems(403, 413))
async def mint_dev_token(body: DevTokenIn, request: Request) -> DevTokenOut:
    """Mints a token for any user and role, for callers on this machine (embedded mode only)."""
    _refuse_remote_callers(request)
    token = mint_token(DEV_JWT_SECRET, body.sub, list(body.roles), body.name, DEV_TOKEN_TTL_SECONDS)
    return DevTokenOut(access_token=token, expires_in=DEV_TOKEN_TTL_SECONDS)

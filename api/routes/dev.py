"""The dev sign-in: mounted only while the public dev secret is in force; loopback only."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request

from api.auth import mint_token
from api.errors import ProblemCode, ProblemError, problems
from api.schemas import DevTokenIn, DevTokenOut
from runtime.settings import DEV_JWT_SECRET, is_loopback_host

router = APIRouter(prefix="/api/v1/dev", tags=["dev"])

DEV_TOKEN_TTL_SECONDS = 12 * 3600

_FORWARDED_FOR = re.compile(r"""for\s*=\s*"?\[?([^\]";,]*)""", re.IGNORECASE)
_PORT_SUFFIX = re.compile(r":\d+$")


def _forwarded_addresses(request: Request) -> list[str]:
    """Every address the proxy headers claim the request came from."""
    addresses: list[str] = []
    for value in request.headers.getlist("x-forwarded-for"):
        addresses += [part.strip() for part in value.split(",")]
    addresses += [value.strip() for value in request.headers.getlist("x-real-ip")]
    for value in request.headers.getlist("forwarded"):
        claimed = _FORWARDED_FOR.findall(value)
        # A Forwarded header that names no `for` hides where the request came from.
        addresses += [part.strip() for part in claimed] if claimed else [""]
    return [
        address if address.count(":") > 1 else _PORT_SUFFIX.sub("", address)
        for address in addresses
    ]


def _refuse_remote_callers(request: Request) -> None:
    peer = request.client.host if request.client else ""
    claimed = _forwarded_addresses(request)
    if not is_loopback_host(peer) or not all(is_loopback_host(a) for a in claimed):
        raise ProblemError(
            ProblemCode.FORBIDDEN, "The dev sign-in answers only requests made on this machine."
        )


@router.post("/token", responses=problems(403, 413))
async def mint_dev_token(body: DevTokenIn, request: Request) -> DevTokenOut:
    """Mints a token for any user and role, for callers on this machine (embedded mode only)."""
    _refuse_remote_callers(request)
    token = mint_token(DEV_JWT_SECRET, body.sub, list(body.roles), body.name, DEV_TOKEN_TTL_SECONDS)
    return DevTokenOut(access_token=token, expires_in=DEV_TOKEN_TTL_SECONDS)

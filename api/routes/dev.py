"""Development-only endpoints; the router is mounted only in the embedded stack."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import mint_token
from api.deps import ServicesDep
from api.errors import problems
from api.schemas import DevTokenIn, DevTokenOut

router = APIRouter(prefix="/api/v1/dev", tags=["dev"])

DEV_TOKEN_TTL_SECONDS = 12 * 3600


@router.post("/token", responses=problems(413))
async def mint_dev_token(body: DevTokenIn, services: ServicesDep) -> DevTokenOut:
    """Mints a token for any user and role (embedded mode only)."""
    secret = services.settings.jwt_secret()
    assert secret is not None, "embedded mode always has a secret"
    token = mint_token(secret, body.sub, list(body.roles), body.name, DEV_TOKEN_TTL_SECONDS)
    return DevTokenOut(access_token=token, expires_in=DEV_TOKEN_TTL_SECONDS)

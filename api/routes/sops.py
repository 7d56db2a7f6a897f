"""SOP catalog endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel

from api.deps import CurrentUser, ServicesDep, Supervisor
from api.errors import ProblemCode, ProblemError, problems
from store.sops import PublishedSop, SopDefinition, SopListItem

router = APIRouter(prefix="/api/v1/sops", tags=["sops"])


class SopPage(BaseModel):
    items: list[SopListItem]


@router.get("", responses=problems())
async def list_sops(_user: CurrentUser, services: ServicesDep) -> SopPage:
    """Lists the latest version of every SOP."""
    return SopPage(items=await services.catalog.list_latest())


@router.get("/{sop_id}", responses=problems(404))
async def get_sop(
    sop_id: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")],
    _user: CurrentUser,
    services: ServicesDep,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> PublishedSop:
    """Gets an SOP's full definition: the latest version, or the one asked for."""
    sop = await services.catalog.get(sop_id, version)
    if sop is None:
        raise ProblemError(ProblemCode.SOP_NOT_FOUND, f"SOP '{sop_id}' has no such version.")
    return sop


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(403, 413))
async def publish_sop(
    definition: SopDefinition, user: Supervisor, services: ServicesDep
) -> PublishedSop:
    """Publishes a new immutable version of an SOP."""
    return await services.catalog.publish(definition, user.id)

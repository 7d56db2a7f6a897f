"""SOP catalog endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.deps import CatalogDep, CurrentUser, Supervisor
from api.errors import ProblemCode, ProblemError, problems
from api.schemas import SopOut, SopPage, SopSummaryOut
from store.sops import SopDefinition

router = APIRouter(prefix="/api/v1/sops", tags=["sops"])


@router.get("", responses=problems())
async def list_sops(_user: CurrentUser, catalog: CatalogDep) -> SopPage:
    """Lists the latest version of every SOP."""
    items = await catalog.list_latest()
    return SopPage(items=[SopSummaryOut.model_validate(item) for item in items])


@router.get("/{sop_id}", responses=problems(404))
async def get_sop(
    sop_id: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")],
    _user: CurrentUser,
    catalog: CatalogDep,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> SopOut:
    """Gets an SOP's full definition: the latest version, or the one asked for."""
    sop = await catalog.get(sop_id, version)
    if sop is None:
        raise ProblemError(ProblemCode.SOP_NOT_FOUND, f"SOP '{sop_id}' has no such version.")
    return SopOut.model_validate(sop)


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(403, 413))
async def publish_sop(definition: SopDefinition, user: Supervisor, catalog: CatalogDep) -> SopOut:
    """Publishes a new immutable version of an SOP."""
    return SopOut.model_validate(await catalog.publish(definition, user.id))

"""Liveness and readiness probes, outside /api/v1."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.errors import ProblemCode, problem_response, problems
from api.schemas import Liveness, Readiness
from store.db import ping

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Liveness:
    """Says the process is up."""
    return Liveness(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: problems()[503]})
async def readyz(services: ServicesDep) -> Readiness | JSONResponse:
    """Says whether Temporal and the database both answer."""
    checks = {"temporal": services.gateway.ping(), "database": ping(services.engine)}
    results = await asyncio.gather(
        *(asyncio.wait_for(c, timeout=3) for c in checks.values()), return_exceptions=True
    )
    failing = [
        name for name, r in zip(checks, results, strict=True) if isinstance(r, BaseException)
    ]
    if failing:
        return problem_response(
            ProblemCode.NOT_READY, f"Not reachable: {', '.join(failing)}.", {"failing": failing}
        )
    return Readiness(status="ready")

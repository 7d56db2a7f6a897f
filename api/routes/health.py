"""Liveness and readiness probes, outside /api/v1."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DatabaseDep, GatewayDep
from api.errors import ProblemCode, problem_response, problems
from api.schemas import Liveness, Readiness
from store.db import ping

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz")
async def healthz() -> Liveness:
    """Says the process is up."""
    return Liveness(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: problems()[503]})
async def readyz(gateway: GatewayDep, database: DatabaseDep) -> Readiness | JSONResponse:
    """Says whether Temporal and the database both answer."""
    checks = {"temporal": gateway.ping(), "database": ping(database)}
    results = await asyncio.gather(
        *(asyncio.wait_for(c, timeout=3) for c in checks.values()), return_exceptions=True
    )
    failures = {
        name: result
        for name, result in zip(checks, results, strict=True)
        if isinstance(result, BaseException)
    }
    if failures:
        # The causes go to the log only: they may describe the deployment's credentials.
        log.warning("not ready: %s", "; ".join(f"{n}: {e!r}" for n, e in failures.items()))
        failing = list(failures)
        return problem_response(
            ProblemCode.NOT_READY, f"Not reachable: {', '.join(failing)}.", {"failing": failing}
        )
    return Readiness(status="ready")

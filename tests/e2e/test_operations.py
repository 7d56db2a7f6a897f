"""What an operator scrapes from a real API process."""

from __future__ import annotations

import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.auth import mint_token
from runtime.settings import DEV_JWT_SECRET
from tests.conftest import eventually

pytestmark = pytest.mark.slow


def paused_gauge(metrics: str) -> float:
    values = [
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "work_sessions" and sample.labels == {"status": "PAUSED"}
    ]
    assert values, "the gauge has not been set yet"
    return values[0]


async def test_the_api_process_keeps_the_session_gauges_current(stack_url: str) -> None:
    worker = f"gauge-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {mint_token(DEV_JWT_SECRET, worker, ['worker'])}"}
    async with httpx.AsyncClient(base_url=stack_url, headers=headers) as api:

        async def paused() -> float:
            response = await api.get("/metrics")
            assert response.status_code == 200
            return paused_gauge(response.text)

        before = await eventually(paused)
        started = await api.post("/api/v1/sessions", json={"sop_id": "forklift-preshift"})
        session_id = started.json()["id"]
        assert (await api.post(f"/api/v1/sessions/{session_id}/pause")).status_code == 200

        async def counted() -> None:
            assert await paused() == before + 1

        await eventually(counted)

"""`python -m engine.register`: the namespace and search attributes, idempotently."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from engine.register import prepare
from runtime.settings import Settings
from workflows import search_attributes as sa


async def test_prepare_creates_the_namespace_once_and_registers_the_attributes(
    temporal_client: Client,
) -> None:
    namespace = f"ops-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        temporal_address=temporal_client.service_client.config.target_host,
        temporal_namespace=namespace,
    )

    first = await prepare(settings, timedelta(days=3), timeout_seconds=30)
    again = await prepare(settings, timedelta(days=9), timeout_seconds=30)

    assert first.created and sorted(first.added) == sorted(key.name for key in sa.ALL)
    assert first.retention == timedelta(days=3)
    assert not again.created and again.added == []
    assert again.retention == timedelta(days=3), "an existing namespace keeps its retention"
    listed = await temporal_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace), retry=True
    )
    assert {key.name for key in sa.ALL} <= set(listed.custom_attributes)

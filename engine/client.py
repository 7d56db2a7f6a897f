"""One Temporal client per process, and the search attributes the project needs."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging

from pydantic import TypeAdapter
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import (
    PydanticJSONPlainPayloadConverter,
    pydantic_data_converter,
)
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.service import RPCError, RPCStatusCode

from engine.codec import EncryptionCodec, RefuseEncrypted
from runtime.settings import Settings
from runtime.tracing import Tracing
from workflows import search_attributes as sa

log = logging.getLogger(__name__)

# The SDK builds a new payload converter for every workflow instance, so the pydantic
# converter's own cache compiled the adapters again per session: milliseconds of CPU
# per start or replay and ~140 KiB kept per cached session. One cache per process:
_type_adapters = functools.lru_cache(maxsize=1024)(TypeAdapter)


class _SharedAdaptersJSONConverter(PydanticJSONPlainPayloadConverter):
    """The pydantic JSON converter, with TypeAdapters from the process-wide cache."""

    def __init__(self) -> None:
        super().__init__()
        self._type_adapter = _type_adapters


class PayloadConverter(CompositePayloadConverter):
    """`PydanticPayloadConverter` with process-wide TypeAdapters; the same payloads."""

    def __init__(self) -> None:
        super().__init__(
            *(
                _SharedAdaptersJSONConverter() if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


# The project's payloads, unencrypted: what the stored histories were written with.
DATA_CONVERTER: DataConverter = dataclasses.replace(
    pydantic_data_converter, payload_converter_class=PayloadConverter
)
# Where no key is configured, an encrypted payload is refused with its cause.
_PLAINTEXT_CONVERTER = dataclasses.replace(DATA_CONVERTER, payload_codec=RefuseEncrypted())


def data_converter(settings: Settings) -> DataConverter:
    """The converter of every client `connect` makes: the API's and the worker's.

    With encryption keys configured, payloads are encrypted, and so are failure
    messages and stack traces (which would otherwise stay readable in history).
    """
    keys = settings.encryption_keys()
    if not keys:
        return _PLAINTEXT_CONVERTER
    return dataclasses.replace(
        DATA_CONVERTER,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def _interceptors(tracing: Tracing | None) -> list[Interceptor]:
    if tracing is None:
        return []
    from engine.tracing import SessionTracingInterceptor

    # On the client, so that the worker built on it traces workflows and activities too.
    return [SessionTracingInterceptor(tracing.provider.get_tracer(__name__))]


async def connect(
    settings: Settings, *, lazy: bool = False, tracing: Tracing | None = None
) -> Client:
    """Connects to the configured Temporal frontend with the project's data converter."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        interceptors=_interceptors(tracing),
        lazy=lazy,
    )


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Registers the session search attributes; returns the names it added (idempotent)."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type)
        for key in sa.ALL
        if key.name not in existing.custom_attributes
    }
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    except RPCError as err:
        # Another process registering at the same moment is success too.
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    return sorted(missing)


async def connect_when_ready(
    settings: Settings, timeout_seconds: float = 60.0, tracing: Tracing | None = None
) -> Client:
    """Connects, retrying while the Temporal server is still starting."""
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while True:
        try:
            return await connect(settings, tracing=tracing)
        except RuntimeError as err:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.info("waiting for Temporal at %s: %s", settings.temporal_address, err)
            await asyncio.sleep(0.5)

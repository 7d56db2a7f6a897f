"""One Temporal client per process, and the search attributes the project needs."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
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
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.service import RPCError, RPCStatusCode

from engine.codec import ENCODING, EncryptionCodec, no_key_configured
from runtime.settings import Settings, temporal_profile
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


class _StillEncrypted(EncodingPayloadConverter):
    """Reached only by a payload no codec decrypted: this process holds no key."""

    @property
    def encoding(self) -> str:
        return ENCODING.decode()

    def to_payload(self, value: Any) -> Payload | None:
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        raise no_key_configured(payload)


class PayloadConverter(CompositePayloadConverter):
    """`PydanticPayloadConverter` with process-wide TypeAdapters; the same payloads.

    An encrypted payload that reaches it (no key configured here) is refused by name,
    not as an unknown encoding; a plaintext deployment pays nothing for that.
    """

    def __init__(self) -> None:
        super().__init__(
            *(
                _SharedAdaptersJSONConverter() if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            ),
            _StillEncrypted(),
        )


# The project's payloads, unencrypted: what the stored histories were written with.
DATA_CONVERTER: DataConverter = dataclasses.replace(
    pydantic_data_converter, payload_converter_class=PayloadConverter
)


class NotConnected(Exception):
    """Temporal has not been reached yet by a client that connects lazily."""


class Connection:
    """A lazily connected client that tells "Temporal never reached" from any other fault.

    While its first connection fails, the SDK's lazy client raises a bare
    `RuntimeError` from every call. Until it has connected once, `reach` makes
    that connection on its own (a health check), so only a failure of exactly
    that becomes `NotConnected`; afterwards calls go straight through and the
    SDK's own errors (`RPCError`) speak for an engine gone away.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._reached = False

    async def reach(self, timeout: timedelta) -> Client:
        """The client, once it has reached Temporal; raises `NotConnected` before that."""
        if not self._reached:
            try:
                await self._client.service_client.check_health(timeout=timeout)
            except RuntimeError as err:
                raise NotConnected(str(err)) from err
            except RPCError:
                # Any answer, even a refusal of the health service (as a hosted
                # frontend may give), means the connection was made.
                pass
            self._reached = True
        return self._client


# How long a dev server takes to answer after its start, at most, on a busy machine.
_SERVER_START_SECONDS = 3.0
# tcld spells the types Keyword, Text, Int, KeywordList.
_TCLD_TYPES = {key.name: key.indexed_value_type.name.title().replace("_", "") for key in sa.ALL}
# What the operator service answers a client without operator rights (Temporal Cloud
# answers a namespace's API key so).
_NO_OPERATOR_RIGHTS = (
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.UNIMPLEMENTED,
)


class ConnectionRefused(RuntimeError):
    """Temporal did not accept a connection in time: unreachable, or refused it."""


class SearchAttributesMissing(RuntimeError):
    """The namespace lacks session search attributes and this client may not add them."""

    def __init__(self, namespace: str, missing: list[str], refusal: str) -> None:
        flags = " ".join(f"--search-attribute {name}={_TCLD_TYPES[name]}" for name in missing)
        super().__init__(
            f"The namespace {namespace} lacks the search attributes {', '.join(missing)}, and "
            f"Temporal refused to add them ({refusal}). On Temporal Cloud add them with "
            f"`tcld namespace search-attributes add --namespace {namespace} {flags}`; on a "
            "self-hosted server run `python -m engine.register` with operator rights."
        )
        self.missing = missing


def data_converter(settings: Settings) -> DataConverter:
    """The converter of every client `connect` makes: the API's and the worker's.

    With encryption keys configured, payloads are encrypted, and so are failure
    messages and stack traces (which would otherwise stay readable in history).
    """
    keys = settings.encryption_keys()
    if not keys:
        return DATA_CONVERTER
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
    """Connects to the configured Temporal frontend with the project's data converter.

    Address and namespace come from the settings (which fall back on the SDK's profile);
    TLS, client certificate, API key and gRPC headers from the SDK's own configuration
    (`temporalio.envconfig`: TEMPORAL_* variables and TOML profiles).
    """
    profile = temporal_profile()
    try:
        config = profile.to_client_connect_config()
    except OSError as err:
        raise ValueError(f"A TLS file of the Temporal connection cannot be read: {err}") from err
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=config.get("api_key"),
        tls=config.get("tls"),
        rpc_metadata=config.get("rpc_metadata", {}),
        data_converter=data_converter(settings),
        interceptors=_interceptors(tracing),
        lazy=lazy,
    )


async def missing_search_attributes(client: Client) -> list[str]:
    """The session search attributes the client's namespace lacks.

    Asks visibility, which any client of the namespace may read, not the operator service,
    which a Temporal Cloud API key may not call: a query naming an unknown attribute is
    refused as an invalid argument.
    """

    async def lacks(name: str) -> bool:
        try:
            await client.count_workflows(
                f'WorkflowId = "search-attribute-probe" AND {name} IS NULL'
            )
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT:
                return True
            raise
        return False

    names = [key.name for key in sa.ALL]
    found = await asyncio.gather(*(lacks(name) for name in names))
    return [name for name, missing in zip(names, found, strict=True) if missing]


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Makes sure the session search attributes exist; returns the names it added.

    Calls the operator service only when some are missing; where that is refused,
    raises SearchAttributesMissing, which says how to add them.
    """
    missing = await missing_search_attributes(client)
    if not missing:
        return []
    try:
        return await register_search_attributes(client, namespace)
    except RPCError as err:
        if err.status not in _NO_OPERATOR_RIGHTS:
            raise
        raise SearchAttributesMissing(namespace, missing, err.message) from err


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Registers the session search attributes; returns the names it added (idempotent)."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace), retry=True
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
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing),
            retry=True,
        )
    except RPCError as err:
        # Another process registering at the same moment is success too.
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    return sorted(missing)


async def connect_when_ready(
    settings: Settings, timeout_seconds: float = 60.0, tracing: Tracing | None = None
) -> Client:
    """Connects, retrying while the Temporal server is starting, unreachable or refusing.

    Every failed attempt is logged with the address and Temporal's answer (a warning once
    a server would have started), so that a missing client certificate or a wrong API key
    shows at once; raises ConnectionRefused after `timeout_seconds`.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    delay = 0.5
    while True:
        try:
            return await connect(settings, tracing=tracing)
        except RuntimeError as err:
            waited = loop.time() - started
            if waited > timeout_seconds:
                raise ConnectionRefused(
                    f"Temporal at {settings.temporal_address} (namespace "
                    f"{settings.temporal_namespace}) did not accept a connection within "
                    f"{timeout_seconds:g} s; its last answer: {err}"
                ) from err
            log.log(
                logging.INFO if waited < _SERVER_START_SECONDS else logging.WARNING,
                "cannot connect to Temporal at %s: %s",
                settings.temporal_address,
                err,
            )
            await asyncio.sleep(delay)
            delay = min(2 * delay, 5.0)

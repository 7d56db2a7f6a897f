"""The identity provider's discovery document (OpenID Connect Discovery 1.0), read once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from api.errors import ProblemCode, ProblemError

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class ProviderMetadata:
    """What the API and the web page need from the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None


def _unavailable(detail: str) -> ProblemError:
    return ProblemError(ProblemCode.IDENTITY_PROVIDER_UNAVAILABLE, detail)


class ProviderDiscovery:
    """Fetches the discovery document of `issuer` on first use and keeps it once it is valid."""

    def __init__(self, issuer: str, timeout_seconds: float = 5.0) -> None:
        self._issuer = issuer
        self._url = issuer.rstrip("/") + DISCOVERY_PATH
        self._timeout = timeout_seconds
        self._metadata: ProviderMetadata | None = None
        self._lock = asyncio.Lock()

    async def metadata(self) -> ProviderMetadata:
        """The provider's endpoints, or a 503 problem while the provider cannot be read."""
        if self._metadata is not None:
            return self._metadata
        async with self._lock:
            if self._metadata is None:
                self._metadata = await self._fetch()
        return self._metadata

    async def _fetch(self) -> ProviderMetadata:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.get(self._url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as err:
            log.warning("identity provider discovery failed", extra={"url": self._url})
            detail = "The identity provider's discovery document cannot be read."
            raise _unavailable(detail) from err
        if not isinstance(document, dict):
            raise _unavailable("The identity provider's discovery document is not an object.")
        # OpenID Connect Discovery 1.0 section 4.3: a document naming another issuer is not ours.
        if document.get("issuer") != self._issuer:
            log.error(
                "identity provider names another issuer",
                extra={"configured": self._issuer, "discovered": document.get("issuer")},
            )
            raise _unavailable("The identity provider's discovery document names another issuer.")
        endpoints = {
            name: document.get(name)
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        }
        if not all(isinstance(url, str) and url for url in endpoints.values()):
            raise _unavailable("The identity provider's discovery document lacks an endpoint.")
        end_session = document.get("end_session_endpoint")
        return ProviderMetadata(
            issuer=self._issuer,
            authorization_endpoint=str(endpoints["authorization_endpoint"]),
            token_endpoint=str(endpoints["token_endpoint"]),
            jwks_uri=str(endpoints["jwks_uri"]),
            end_session_endpoint=end_session if isinstance(end_session, str) else None,
        )

"""The identity provider found through AUTH_ISSUER's discovery document, and where roles sit."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from api.auth import TokenVerifier
from api.errors import ProblemError
from api.main import create_app
from api.oidc import ProviderDiscovery
from devstack.processes import free_port
from runtime.settings import Settings
from tests.helpers.api import api_of_its_own


@dataclass(frozen=True)
class Provider:
    issuer: str
    folder: Path
    private_key: Any

    def publish(self, **overrides: Any) -> None:
        """Serves a discovery document, with `overrides` in place of the right values."""
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/keys.json",
            "end_session_endpoint": f"{self.issuer}/logout",
            **overrides,
        }
        (self.folder / ".well-known" / "openid-configuration").write_text(json.dumps(document))

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        defaults = {"iss": self.issuer, "aud": "work-sessions", "sub": "olive", "iat": now}
        payload = {**defaults, "exp": now + 300, **claims}
        return jwt.encode(payload, self.private_key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    """Discovery document and JWKS served over HTTP, as an identity provider serves them."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    (tmp_path / "keys.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}))
    (tmp_path / ".well-known").mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    served = Provider(f"http://127.0.0.1:{server.server_address[1]}", tmp_path, private_key)
    served.publish()
    yield served
    server.shutdown()


def provider_settings(issuer: str, **overrides: Any) -> Settings:
    return Settings(auth_issuer=issuer, auth_audience="work-sessions", **overrides)


def verifier(settings: Settings) -> TokenVerifier:
    assert settings.auth_issuer is not None
    return TokenVerifier(settings, ProviderDiscovery(settings.auth_issuer))


@asynccontextmanager
async def api_for(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/a.db"})
    async with api_of_its_own(settings) as (client, _):
        yield client


async def test_tokens_verify_with_the_keys_named_by_the_issuers_discovery_document(
    provider: Provider,
) -> None:
    user = await verifier(provider_settings(provider.issuer)).verify(
        provider.token(roles=["worker"], name="Olive")
    )

    assert (user.id, user.roles, user.name) == ("olive", frozenset({"worker"}), "Olive")


async def test_roles_are_read_from_the_configured_claim_path(provider: Provider) -> None:
    settings = provider_settings(provider.issuer, auth_roles_claim="realm_access.roles")
    keycloak_style = provider.token(
        roles=["worker"], realm_access={"roles": ["supervisor", "offline_access"]}
    )

    user = await verifier(settings).verify(keycloak_style)

    assert user.roles == frozenset({"supervisor"})


async def test_a_roles_claim_path_that_holds_no_list_of_strings_is_refused(
    provider: Provider,
) -> None:
    settings = provider_settings(provider.issuer, auth_roles_claim="realm_access.roles")

    with pytest.raises(ProblemError) as refused:
        await verifier(settings).verify(provider.token(realm_access={"roles": "supervisor"}))

    assert refused.value.status == 401


async def test_a_discovery_document_naming_another_issuer_is_not_trusted(
    provider: Provider,
) -> None:
    provider.publish(issuer="https://idp.example")

    with pytest.raises(ProblemError) as refused:
        await verifier(provider_settings(provider.issuer)).verify(provider.token())

    assert refused.value.status == 503
    assert refused.value.code == "identity_provider_unavailable"


async def test_the_config_tells_the_page_how_to_sign_in_with_the_provider(
    provider: Provider, tmp_path: Path
) -> None:
    settings = provider_settings(
        provider.issuer, auth_oidc_client_id="web", auth_roles_claim="realm_access.roles"
    )
    async with api_for(settings, tmp_path) as api:
        response = await api.get("/api/v1/config")

    assert response.status_code == 200
    config = response.json()
    assert config["dev_sign_in"] is False
    assert config["oidc"] == {
        "issuer": provider.issuer,
        "client_id": "web",
        "authorization_endpoint": f"{provider.issuer}/authorize",
        "token_endpoint": f"{provider.issuer}/token",
        "end_session_endpoint": f"{provider.issuer}/logout",
        "scope": "openid profile",
        "roles_claim": "realm_access.roles",
    }


async def test_the_config_is_a_503_problem_while_the_provider_cannot_be_reached(
    tmp_path: Path,
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    settings = provider_settings(unreachable, auth_oidc_client_id="web")
    async with api_for(settings, tmp_path) as api:
        response = await api.get("/api/v1/config")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "identity_provider_unavailable"


async def test_without_an_issuer_the_page_offers_the_dev_sign_in_only(tmp_path: Path) -> None:
    async with api_for(Settings(embedded=True), tmp_path) as api:
        config = (await api.get("/api/v1/config")).json()

    assert (config["dev_sign_in"], config["oidc"]) == (True, None)


def test_the_config_operation_is_documented_with_its_schema() -> None:
    operation = create_app(Settings()).openapi()["paths"]["/api/v1/config"]["get"]

    assert operation["operationId"] == "get_config"
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/PublicConfig"}
    assert "503" in operation["responses"]


def test_a_client_id_without_an_issuer_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="AUTH_OIDC_CLIENT_ID needs AUTH_ISSUER"):
        Settings(auth_oidc_client_id="web")

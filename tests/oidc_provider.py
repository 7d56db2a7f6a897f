"""An OpenID provider for tests: `oidc-provider-mock` with JWT access tokens a browser may fetch.

The package issues opaque access tokens, signs with a key that has no `kid`, sends no CORS
headers and wants a client secret at its token endpoint. Keycloak, Entra ID and Authentik
issue JWT access tokens (RFC 9068) signed with the keys of their JWKS, let a registered web
origin call the token endpoint and serve public clients (PKCE, no secret); this module
configures the provider to do the same. The tests check the page's PKCE parameters
themselves: this provider does not verify them.

Run as `python -m tests.oidc_provider --port N --audience A [--user-claims JSON ...]`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from datetime import timedelta
from typing import Any

import flask
import oidc_provider_mock
import oidc_provider_mock._app as provider_app
import uvicorn
from authlib import jose
from oidc_provider_mock._app import AuthorizationCodeGrant, RefreshTokenGrant
from oidc_provider_mock._storage import Storage, User, storage

PUBLIC_CLIENT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]


class KeyIdStorage(Storage):  # type: ignore[misc]
    """The provider's storage, its signing key named by its thumbprint as JWKS clients need."""

    jwk: Any

    def __init__(self) -> None:
        super().__init__()
        private = self.jwk.as_dict(is_private=True)
        self.jwk = jose.RSAKey.import_key({**private, "kid": self.jwk.thumbprint()})


def jwt_access_token_generator(audience: str, lifetime_seconds: int) -> Any:
    """An authlib access-token generator: a JWT carrying the user's claims for `audience`."""

    def generate(client: Any, grant_type: str, user: User, scope: str) -> str:
        now = int(time.time())
        claims = {
            **user.claims,
            "iss": flask.request.host_url.rstrip("/"),
            "sub": user.sub,
            # A user may stand for tokens minted for another API.
            "aud": user.claims.get("aud", audience),
            "azp": client.get_client_id(),
            "scope": scope,
            "iat": now,
            "exp": now + lifetime_seconds,
            "jti": secrets.token_urlsafe(16),
        }
        key = storage.jwk
        header = {"alg": "RS256", "typ": "at+jwt", "kid": key.as_dict()["kid"]}
        token: bytes = jose.jwt.encode(header, claims, key)
        return token.decode()

    return generate


def create_provider(
    audience: str, lifetime_seconds: int, users: list[dict[str, Any]]
) -> flask.Flask:
    """The provider's Flask app, with predefined users that sign in with one click."""
    provider_app.Storage = KeyIdStorage
    AuthorizationCodeGrant.TOKEN_ENDPOINT_AUTH_METHODS = PUBLIC_CLIENT_AUTH_METHODS
    RefreshTokenGrant.TOKEN_ENDPOINT_AUTH_METHODS = PUBLIC_CLIENT_AUTH_METHODS
    # Named for the package's module, so Flask finds the package's page templates.
    app = flask.Flask(provider_app.__name__)
    app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = jwt_access_token_generator(
        audience, lifetime_seconds
    )
    oidc_provider_mock.init_app(
        app,
        access_token_max_age=timedelta(seconds=lifetime_seconds),
        user_claims=[
            User(sub=u["sub"], claims={k: v for k, v in u.items() if k != "sub"}) for u in users
        ],
    )
    app.secret_key = secrets.token_bytes(16)

    @app.after_request
    def allow_web_origins(response: flask.Response) -> flask.Response:
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("--token-lifetime", type=int, default=300)
    parser.add_argument("--user-claims", action="append", default=[], type=json.loads)
    args = parser.parse_args()
    # The tests run the provider on plain http on loopback.
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    app = create_provider(args.audience, args.token_lifetime, args.user_claims)
    uvicorn.run(app, interface="wsgi", host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

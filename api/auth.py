"""Bearer-token identity (DESIGN section 4): HS256 with a shared secret, or RS256 via JWKS.

The JWKS comes from `AUTH_JWKS_URL`, or else from the discovery document of `AUTH_ISSUER`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

from api.errors import ProblemCode, ProblemError
from api.oidc import ProviderDiscovery
from runtime.settings import Settings
from workflows.shared import Actor

# Subjects end up inside visibility queries: only characters that need no escaping.
SUBJECT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:|+-]{0,127}$")
KNOWN_ROLES = frozenset({"worker", "supervisor"})


@dataclass(frozen=True)
class User:
    """The authenticated caller."""

    id: str
    roles: frozenset[str]
    name: str | None = None

    @property
    def is_worker(self) -> bool:
        return "worker" in self.roles

    @property
    def is_supervisor(self) -> bool:
        return "supervisor" in self.roles

    def as_actor(self) -> Actor:
        """The caller as the workflow sees it."""
        return Actor(user_id=self.id, roles=sorted(self.roles))


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(ProblemCode.UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


# Verified tokens remembered per API process until they expire.
VERIFIED_TOKENS_KEPT = 4096


class TokenVerifier:
    """Verifies bearer tokens with the configured secret or identity provider."""

    def __init__(self, settings: Settings, discovery: ProviderDiscovery | None = None) -> None:
        self._secret = settings.jwt_secret()
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._roles_claim = settings.auth_roles_claim
        self._discovery = discovery
        self._max_lifetime_seconds = settings.auth_max_token_lifetime_seconds
        self._jwks = jwt.PyJWKClient(settings.auth_jwks_url) if settings.auth_jwks_url else None
        # A client sends the same token with every request: its signature is checked once.
        self._verified: OrderedDict[str, tuple[User, float]] = OrderedDict()

    @property
    def _accepts_provider_tokens(self) -> bool:
        return self._jwks is not None or self._discovery is not None

    async def _provider_keys(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            assert self._discovery is not None
            metadata = await self._discovery.metadata()
            self._jwks = jwt.PyJWKClient(metadata.jwks_uri)
        return self._jwks

    async def verify(self, token: str) -> User:
        """Returns the user a token names, or raises a 401 problem."""
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            self._verified.move_to_end(token)
            return known[0]
        user, expires_at = await self._verify(token)
        self._verified[token] = (user, expires_at)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return user

    async def _verify(self, token: str) -> tuple[User, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise _unauthorized("The bearer token is malformed.") from err
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._secret:
            key = self._secret
        elif algorithm == "RS256" and self._accepts_provider_tokens:
            jwks = await self._provider_keys()
            try:
                # PyJWKClient fetches over blocking HTTP; keep it off the event loop.
                signing_key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token)
            except jwt.PyJWTError as err:
                raise _unauthorized("The token's signing key is unknown.") from err
            key = signing_key.key
        else:
            raise _unauthorized(f"Tokens signed with {algorithm!r} are not accepted.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["sub", "exp"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError as err:
            raise _unauthorized("The bearer token has expired.") from err
        except jwt.PyJWTError as err:
            raise _unauthorized(f"The bearer token is invalid: {err}.") from err
        self._refuse_long_lived(claims)
        # Tokens this project mints carry `roles`; a provider's sit where AUTH_ROLES_CLAIM says.
        roles_claim = self._roles_claim if algorithm == "RS256" else "roles"
        return _user_from_claims(claims, roles_claim), float(claims["exp"])

    def _refuse_long_lived(self, claims: dict[str, Any]) -> None:
        """Refuses a token meant to live longer than allowed, so a leaked one expires soon."""
        expires_at, issued_at = claims["exp"], claims.get("iat", time.time())
        # PyJWT also takes numeric strings such as "1e12" for these claims.
        if not all(_is_number(t) for t in (expires_at, issued_at)):
            raise _unauthorized("The token's `exp` and `iat` must be JSON numbers.")
        if expires_at - issued_at > self._max_lifetime_seconds:
            raise _unauthorized(
                f"The bearer token lives longer than {self._max_lifetime_seconds} seconds."
            )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def claim_at(claims: dict[str, Any], dotted_path: str) -> Any:
    """The value at a dotted path such as `realm_access.roles`, or None where it is absent."""
    value: Any = claims
    for name in dotted_path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def _user_from_claims(claims: dict[str, Any], roles_claim: str) -> User:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not SUBJECT_PATTERN.fullmatch(subject):
        raise _unauthorized("The token's subject is missing or has unsupported characters.")
    roles = claim_at(claims, roles_claim)
    if roles is None:
        roles = []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise _unauthorized(f"The token's {roles_claim} claim must be a list of strings.")
    name = claims.get("name")
    return User(
        id=subject,
        roles=frozenset(r for r in roles if r in KNOWN_ROLES),
        name=name if isinstance(name, str) else None,
    )


def mint_token(
    secret: str, sub: str, roles: list[str], name: str | None = None, ttl_seconds: int = 43200
) -> str:
    """Mints an HS256 token for development and tests."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "roles": roles, "iat": now, "exp": now + ttl_seconds}
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")

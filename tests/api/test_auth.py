"""Bearer tokens (DESIGN section 4): what is refused, and with which answer."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from api.auth import TokenVerifier
from api.errors import ProblemError
from api.main import create_app
from runtime.settings import Settings
from tests.api.helpers import start_session
from tests.conftest import TEST_SECRET, bearer, new_user


def token(claims: dict[str, Any], secret: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def valid_claims(**overrides: Any) -> dict[str, Any]:
    return {"sub": "alice", "roles": ["worker"], "exp": int(time.time()) + 600, **overrides}


def unsigned(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key=None, algorithm="none")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer not-a-jwt",
        "Basic YWxpY2U6c2VjcmV0",
        f"Bearer {unsigned(valid_claims())}",
        f"Bearer {token(valid_claims(exp=int(time.time()) - 5))}",
        f"Bearer {token(valid_claims(), secret='another-secret-0123456789abcdef-long')}",
        f"Bearer {token({'roles': ['worker'], 'exp': int(time.time()) + 600})}",
        f"Bearer {token(valid_claims(sub='alice OR 1=1'))}",
        "Bearer " + token(valid_claims(sub="x' OR WorkerId != '")),
        f"Bearer {token(valid_claims(roles='worker'))}",
        f"Bearer {token({'sub': 'alice', 'roles': ['worker']})}",
    ],
    ids=[
        "missing",
        "empty-bearer",
        "malformed",
        "basic-scheme",
        "alg-none",
        "expired",
        "bad-signature",
        "no-subject",
        "subject-with-spaces",
        "subject-with-quote",
        "roles-not-a-list",
        "no-expiry",
    ],
)
async def test_bad_tokens_get_401_problem(
    api: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = await api.get("/api/v1/sessions", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_only_workers_start_sessions(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/sessions", json={"sop_id": "loto-press-7"}, headers=bearer("sam", "supervisor")
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


async def test_only_supervisors_publish_sops(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/sops",
        json={"id": "x", "title": "X", "steps": []},
        headers=bearer("alice", "worker"),
    )
    assert response.status_code == 403


async def test_the_dev_token_endpoint_does_not_exist_outside_embedded_mode() -> None:
    app = create_app(Settings(embedded=False, auth_jwt_secret=TEST_SECRET))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.post("/api/v1/dev/token", json={"sub": "x", "roles": ["worker"]})
    assert response.status_code in (404, 405)
    assert "/api/v1/dev/token" not in app.openapi()["paths"]


@pytest.fixture(scope="module")
def identity_provider(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, Settings]]:
    """An RSA key and its JWKS document, served over HTTP as an identity provider would."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    folder = tmp_path_factory.mktemp("idp")
    (folder / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = Settings(
        auth_jwks_url=f"http://127.0.0.1:{server.server_address[1]}/jwks.json",
        auth_issuer="https://idp.example",
        auth_audience="work-sessions",
    )
    yield private_key, settings
    server.shutdown()


def provider_token(private_key: Any, **overrides: Any) -> str:
    claims = {**valid_claims(iss="https://idp.example", aud="work-sessions"), **overrides}
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": "k1"})


async def test_rs256_tokens_from_the_identity_provider_are_accepted(
    identity_provider: tuple[Any, Settings],
) -> None:
    private_key, settings = identity_provider

    user = await TokenVerifier(settings).verify(
        provider_token(private_key, roles=["worker", "supervisor"], name="Ada")
    )

    assert user.id == "alice"
    assert user.roles == frozenset({"worker", "supervisor"})
    assert user.name == "Ada"


@pytest.mark.parametrize(
    "overrides",
    [{"iss": "https://evil.example"}, {"aud": "another-app"}, {"exp": int(time.time()) - 1}],
    ids=["wrong-issuer", "wrong-audience", "expired"],
)
async def test_rs256_tokens_with_wrong_issuer_audience_or_expiry_are_refused(
    identity_provider: tuple[Any, Settings], overrides: dict[str, Any]
) -> None:
    private_key, settings = identity_provider

    with pytest.raises(ProblemError) as refused:
        await TokenVerifier(settings).verify(provider_token(private_key, **overrides))

    assert refused.value.status == 401


async def test_hs256_tokens_are_refused_when_only_a_provider_is_configured(
    identity_provider: tuple[Any, Settings],
) -> None:
    _key, settings = identity_provider

    with pytest.raises(ProblemError) as refused:
        await TokenVerifier(settings).verify(token(valid_claims()))

    assert refused.value.status == 401


ROLELESS_CLAIMS = [
    {"sub": "rolf", "exp": int(time.time()) + 3600},
    valid_claims(sub="rolf", roles=[]),
    valid_claims(sub="rolf", roles=["SUPERVISOR", "admin"]),
]


@pytest.mark.parametrize("claims", ROLELESS_CLAIMS, ids=["no-roles", "empty", "unknown-roles"])
async def test_a_token_with_no_known_role_is_forbidden_everywhere(
    api: httpx.AsyncClient, claims: dict[str, Any]
) -> None:
    owner = new_user()
    session = await start_session(api, owner, "loto-press-7")
    headers = {"Authorization": f"Bearer {token({**claims, 'sub': owner})}"}
    sid = session["id"]
    requests = [
        ("GET", "/api/v1/sessions", None),
        ("GET", "/api/v1/sops", None),
        ("GET", "/api/v1/audit", None),
        ("GET", f"/api/v1/sessions/{sid}", None),
        ("GET", f"/api/v1/sessions/{sid}/audit", None),
        ("POST", "/api/v1/sessions", {"sop_id": "loto-press-7"}),
        ("POST", f"/api/v1/sessions/{sid}/pause", {}),
        ("POST", f"/api/v1/sessions/{sid}/resume", None),
        ("POST", f"/api/v1/sessions/{sid}/abort", {}),
        ("POST", f"/api/v1/sessions/{sid}/complete", None),
        ("POST", f"/api/v1/sessions/{sid}/checks", {"check_id": "affected-notified"}),
    ]

    for method, path, body in requests:
        response = await api.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["code"] == "forbidden"
    unchanged = await api.get(f"/api/v1/sessions/{sid}", headers=bearer(owner))
    assert unchanged.json()["status"] == "IN_PROGRESS"
    assert unchanged.json()["safety_checks"] == []


async def test_acting_as_the_owner_needs_the_worker_role(api: httpx.AsyncClient) -> None:
    owner = new_user()
    session = await start_session(api, owner, "loto-press-7")
    sid = session["id"]
    as_supervisor_only = bearer(owner, "supervisor")

    for action in ("pause", "abort", "complete"):
        response = await api.post(
            f"/api/v1/sessions/{sid}/{action}", json={}, headers=as_supervisor_only
        )
        assert response.status_code == 403, (action, response.text)
    read = await api.get(f"/api/v1/sessions/{sid}", headers=as_supervisor_only)
    assert read.status_code == 200
    assert read.json()["status"] == "IN_PROGRESS"


@pytest.mark.parametrize(
    "claims",
    [
        valid_claims(iat=int(time.time()), exp=int(time.time()) + 86400 + 60),
        valid_claims(iat=int(time.time()) - 86400, exp=int(time.time()) + 60),
        {"sub": "alice", "roles": ["worker"], "exp": int(time.time()) + 10 * 365 * 86400},
        valid_claims(exp=str(int(time.time()) + 600)),
        valid_claims(iat=True),
    ],
    ids=[
        "issued-for-a-day-and-a-minute",
        "issued-yesterday",
        "no-iat-ten-years",
        "exp-as-text",
        "iat-as-bool",
    ],
)
async def test_tokens_living_longer_than_the_maximum_are_refused(
    api: httpx.AsyncClient, claims: dict[str, Any]
) -> None:
    response = await api.get(
        "/api/v1/sessions", headers={"Authorization": f"Bearer {token(claims)}"}
    )

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_a_token_living_exactly_the_maximum_is_accepted(api: httpx.AsyncClient) -> None:
    now = int(time.time())
    claims = valid_claims(iat=now, exp=now + 86400)

    response = await api.get(
        "/api/v1/sessions", headers={"Authorization": f"Bearer {token(claims)}"}
    )

    assert response.status_code == 200, response.text


async def test_the_maximum_token_lifetime_is_configurable() -> None:
    settings = Settings(auth_jwt_secret=TEST_SECRET, auth_max_token_lifetime_seconds=600)
    now = int(time.time())

    accepted = await TokenVerifier(settings).verify(token(valid_claims(iat=now, exp=now + 600)))
    with pytest.raises(ProblemError) as refused:
        await TokenVerifier(settings).verify(token(valid_claims(iat=now, exp=now + 601)))

    assert accepted.id == "alice"
    assert refused.value.status == 401

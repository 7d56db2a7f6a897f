"""Bad input gets a clear 4xx problem with a `code`, never a 500, and changes nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.limits import MAX_BODY_BYTES
from tests.helpers import assert_eventually, bearer, new_user, sop_definition
from tests.helpers.api import publish_sop, start_session

SUPERVISOR = ("sup-bad-input", "supervisor")
TRAVERSAL = "..%2F..%2F..%2Fetc%2Fpasswd"
UNICODE_ID = "s\u00e9ance-\u2603"
LONG_ID = "a" * 500
TOO_BIG = "x" * (MAX_BODY_BYTES + 1)
STATUSES = ("IN_PROGRESS", "PAUSED", "COMPLETED", "ABORTED")


def assert_problem(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """Asserts a 4xx problem+json with a machine-readable code; returns its body."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body["code"], str) and body["code"], body
    assert body["status"] == response.status_code, body
    return body


def unchanging(view: dict[str, Any]) -> dict[str, Any]:
    """A session without the durations, which grow with the clock."""
    return {k: v for k, v in view.items() if k not in ("active_seconds", "paused_seconds")}


class Owner:
    """A worker with one session in progress, who sends the bad requests."""

    def __init__(self, api: httpx.AsyncClient, user: str, session: dict[str, Any]) -> None:
        self.api = api
        self.user = user
        self.session_id: str = session["id"]
        self.headers = bearer(user)

    async def view(self) -> dict[str, Any]:
        response = await self.api.get(f"/api/v1/sessions/{self.session_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return unchanging(response.json())

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        path = path.format(sid=self.session_id)
        return await self.api.request(method, path, headers=headers, **kwargs)


@pytest.fixture
async def owner(api: httpx.AsyncClient) -> AsyncIterator[Owner]:
    sop = await publish_sop(api)
    user = new_user()
    owner = Owner(api, user, await start_session(api, user, sop["id"]))
    before = await owner.view()
    yield owner
    assert await owner.view() == before, "a refused request changed the session"


def raw_json(text: str) -> dict[str, Any]:
    return {"content": text.encode(), "headers": {"Content-Type": "application/json"}}


CHECKS = "/api/v1/sessions/{sid}/checks"


@pytest.mark.parametrize(
    ("method", "path", "request_kwargs", "status", "code"),
    [
        # Size limits.
        ("POST", CHECKS, {"json": {"check_id": "breaker-off", "passed": True, "note": TOO_BIG}},
         413, "payload_too_large"),
        ("POST", "/api/v1/sessions/{sid}/pause", {"json": {"reason": TOO_BIG}},
         413, "payload_too_large"),
        ("POST", CHECKS, {"json": {"check_id": "breaker-off", "passed": True, "note": "n" * 2001}},
         422, "validation_error"),
        ("POST", "/api/v1/sessions/{sid}/pause", {"json": {"reason": "r" * 501}},
         422, "validation_error"),
        ("POST", "/api/v1/sessions/{sid}/abort", {"json": {"reason": "r" * 501}},
         422, "validation_error"),
        # Non-finite and absurd numbers (Python's JSON parser accepts NaN and Infinity).
        ("POST", CHECKS, raw_json('{"check_id": "residual-v", "value": NaN}'),
         422, "invalid_check_answer"),
        ("POST", CHECKS, raw_json('{"check_id": "residual-v", "value": Infinity}'),
         422, "invalid_check_answer"),
        ("POST", CHECKS, raw_json('{"check_id": "residual-v", "value": -Infinity}'),
         422, "invalid_check_answer"),
        ("POST", CHECKS, raw_json('{"check_id": "residual-v", "value": 1e400}'),
         422, "invalid_check_answer"),
        ("POST", CHECKS, raw_json('{"check_id": "residual-v", "value": 1e13}'),
         422, "invalid_check_answer"),
        ("POST", CHECKS, raw_json('{"check_id": "residual-v", "value": ' + "9" * 5000 + "}"),
         400, "bad_request"),
        ("POST", CHECKS, raw_json('{"check_id": "breaker-off", "passed": NaN}'),
         422, "invalid_check_answer"),
        # Malformed bodies.
        ("POST", CHECKS, raw_json('{"check_id": "breaker-off", "passed": tru'),
         422, "validation_error"),
        ("POST", CHECKS, raw_json("[" * 20_000 + "]" * 20_000), 400, "bad_request"),
        ("POST", CHECKS, {"content": b"\xff\xfe\x00",
                          "headers": {"Content-Type": "application/json"}}, 400, "bad_request"),
        ("POST", CHECKS, {"json": ["breaker-off"]}, 422, "validation_error"),
        ("POST", CHECKS, {"json": {"check_id": "breaker-off", "passed": True, "by": "x"}},
         422, "validation_error"),
        ("POST", CHECKS, {"json": {"check_id": "breaker-off", "passed": "yes"}},
         422, "invalid_check_answer"),
        # Ids of odd shape in bodies and paths.
        ("POST", CHECKS, {"json": {"check_id": "../../etc/passwd", "passed": True}},
         422, "validation_error"),
        ("POST", CHECKS, {"json": {"check_id": UNICODE_ID, "passed": True}},
         422, "validation_error"),
        ("POST", CHECKS, {"json": {"check_id": LONG_ID, "passed": True}},
         422, "validation_error"),
        ("POST", CHECKS, {"json": {"check_id": "", "passed": True}}, 422, "validation_error"),
        ("POST", f"/api/v1/sessions/{TRAVERSAL}/checks",
         {"json": {"check_id": "breaker-off", "passed": True}}, 404, "not_found"),
        ("POST", f"/api/v1/sessions/{UNICODE_ID}/checks",
         {"json": {"check_id": "breaker-off", "passed": True}}, 422, "validation_error"),
        ("POST", f"/api/v1/sessions/{LONG_ID}/pause", {}, 422, "validation_error"),
        ("POST", "/api/v1/sessions/%00/abort", {}, 422, "validation_error"),
        ("GET", f"/api/v1/sessions/{TRAVERSAL}", {}, 404, "not_found"),
        ("GET", f"/api/v1/sessions/{UNICODE_ID}", {}, 422, "validation_error"),
        ("GET", f"/api/v1/sessions/{LONG_ID}/audit", {}, 422, "validation_error"),
        ("GET", "/api/v1/sessions/no-such-session-0000", {}, 404, "session_not_found"),
        ("GET", f"/api/v1/sops/{UNICODE_ID}", {}, 422, "validation_error"),
        # Idempotency keys.
        ("POST", CHECKS, {"json": {"check_id": "breaker-off", "passed": True},
                          "headers": {"Idempotency-Key": "k" * 129}}, 422, "validation_error"),
        ("POST", CHECKS, {"json": {"check_id": "breaker-off", "passed": True},
                          "headers": {"Idempotency-Key": "two words"}}, 422, "validation_error"),
        ("POST", CHECKS, {"json": {"check_id": "breaker-off", "passed": True},
                          "headers": {"Idempotency-Key": b"\xff\xfe"}}, 422, "validation_error"),
    ],
)  # fmt: skip
async def test_bad_request_to_a_session_is_refused_and_changes_nothing(
    owner: Owner,
    method: str,
    path: str,
    request_kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = await owner.send(method, path, **request_kwargs)

    assert assert_problem(response, status)["code"] == code


async def test_streamed_body_over_the_limit_is_refused(owner: Owner) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"check_id": "breaker-off", "passed": true, "note": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    response = await owner.send(
        "POST", CHECKS, content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert assert_problem(response, 413)["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 0}, "validation_error"),
        ({"limit": 201}, "validation_error"),
        ({"limit": -1}, "validation_error"),
        ({"limit": "ten"}, "validation_error"),
        ({"limit": "1e3"}, "validation_error"),
        ({"status": "DONE"}, "validation_error"),
        ({"status": "in_progress"}, "validation_error"),
        ({"status": ["PAUSED", "DELETED"]}, "validation_error"),
        ({"page_token": "!!!"}, "validation_error"),
        ({"page_token": "AAAA"}, "validation_error"),
        ({"page_token": base64.urlsafe_b64encode(b"\x00garbage\xff" * 8).decode()},
         "validation_error"),
        ({"page_token": base64.urlsafe_b64encode(b'{"RunID": "x"}').decode()},
         "validation_error"),
        ({"page_token": "A" * 4097}, "validation_error"),
        ({"worker_id": "x' OR WorkerId != 'x"}, "validation_error"),
        ({"worker_id": UNICODE_ID}, "validation_error"),
    ],
)  # fmt: skip
async def test_bad_list_parameters_are_refused(
    api: httpx.AsyncClient, params: dict[str, Any], code: str
) -> None:
    response = await api.get("/api/v1/sessions", params=params, headers=bearer(*SUPERVISOR))

    assert assert_problem(response, 422)["code"] == code


async def test_a_page_token_only_continues_the_list_it_came_from(
    api: httpx.AsyncClient,
) -> None:
    sop = await publish_sop(api)
    worker = new_user()
    started = {(await start_session(api, worker, sop["id"]))["id"] for _ in range(3)}

    async def all_visible() -> None:
        response = await api.get("/api/v1/sessions", headers=bearer(worker))
        assert {item["id"] for item in response.json()["items"]} == started

    await assert_eventually(all_visible)

    async def first_page() -> dict[str, Any]:
        response = await api.get("/api/v1/sessions", params={"limit": 2}, headers=bearer(worker))
        page: dict[str, Any] = response.json()
        assert len(page["items"]) == 2 and page["next_page_token"], page
        return page

    page = await assert_eventually(first_page)
    rest = await api.get(
        "/api/v1/sessions",
        params={"limit": 2, "page_token": page["next_page_token"]},
        headers=bearer(worker),
    )
    assert rest.status_code == 200, rest.text
    seen = {item["id"] for item in page["items"] + rest.json()["items"]}
    assert seen == started

    other_list = await api.get(
        "/api/v1/sessions",
        params={"limit": 2, "status": "ABORTED", "page_token": page["next_page_token"]},
        headers=bearer(worker),
    )
    assert assert_problem(other_list, 422)["code"] == "validation_error"


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"json": {"sop_id": "../../etc/passwd"}}, 422),
        ({"json": {"sop_id": UNICODE_ID}}, 422),
        ({"json": {"sop_id": LONG_ID}}, 422),
        ({"json": {"sop_id": "loto-press-7", "sop_version": 0}}, 422),
        ({"json": {"sop_id": "loto-press-7", "sop_version": 10**7}}, 422),
        (raw_json('{"sop_id": "loto-press-7", "sop_version": NaN}'), 422),
        (raw_json('{"sop_id": "loto-press-7", "sop_version": Infinity}'), 422),
        ({"json": {"sop_id": "loto-press-7", "worker_id": "someone-else"}}, 422),
        ({"json": {"sop_id": "loto-press-7"}, "headers": {"Idempotency-Key": "k" * 129}}, 422),
        ({"json": {"sop_id": "loto-press-7"}, "headers": {"Idempotency-Key": ""}}, 422),
        ({"json": {"sop_id": "loto-press-7", "pad": TOO_BIG}}, 413),
        ({"json": {"sop_id": "no-such-sop"}}, 404),
        ({"json": {"sop_id": "loto-press-7", "sop_version": 999}}, 404),
    ],
)  # fmt: skip
async def test_bad_start_is_refused_and_starts_nothing(
    api: httpx.AsyncClient, request_kwargs: dict[str, Any], status: int
) -> None:
    worker = new_user()
    headers = {**bearer(worker), **request_kwargs.pop("headers", {})}

    refused = await api.post("/api/v1/sessions", headers=headers, **request_kwargs)

    assert_problem(refused, status)
    # Visibility is eventual: a good start made after the bad one must be the only session.
    good = await start_session(api, worker, "loto-press-7")

    async def only_the_good_one() -> None:
        listed = await api.get(
            "/api/v1/sessions", params={"status": list(STATUSES)}, headers=bearer(worker)
        )
        assert [item["id"] for item in listed.json()["items"]] == [good["id"]]

    await assert_eventually(only_the_good_one)


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda sop: sop["steps"][0]["checks"][1].update(max=float("nan")), 422),
        (lambda sop: sop["steps"][0]["checks"][1].update(min=float("-inf")), 422),
        (lambda sop: sop.update(id="../../etc/passwd"), 422),
        (lambda sop: sop.update(id=UNICODE_ID), 422),
        (lambda sop: sop.update(title="t" * 201), 422),
        (lambda sop: sop["steps"][1]["checks"].append(sop["steps"][0]["checks"][0]), 422),
        (lambda sop: sop.update(description="d" * 2_000_000), 413),
    ],
)
async def test_bad_sop_is_refused_and_publishes_nothing(
    api: httpx.AsyncClient, mutate: Any, status: int
) -> None:
    definition = sop_definition()
    mutate(definition)
    headers = {**bearer(*SUPERVISOR), "Content-Type": "application/json"}
    # json.dumps writes NaN and Infinity literals, as a careless client would.
    refused = await api.post("/api/v1/sops", content=json.dumps(definition), headers=headers)

    assert_problem(refused, status)
    assert (await api.get(f"/api/v1/sops/{definition['id']}", headers=headers)).status_code in (
        404,
        422,
    )


async def test_a_long_sop_within_its_own_limit_is_published(api: httpx.AsyncClient) -> None:
    definition = sop_definition()
    definition["steps"] = [
        {
            "id": f"step-{i}",
            "title": f"Step {i}",
            "instructions": "Read carefully. " * 250,
            "checks": [{"id": f"check-{i}", "prompt": "Done", "kind": "confirm"}],
        }
        for i in range(30)
    ]

    published = await api.post("/api/v1/sops", json=definition, headers=bearer(*SUPERVISOR))

    assert len(published.request.content) > MAX_BODY_BYTES
    assert published.status_code == 201, published.text


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"limit": 0},
        {"format": "xml"},
        {"session_id": UNICODE_ID},
        {"worker_id": "x' OR 1=1"},
        {"since": "0001-01-01T00:00:00+14:00"},
        {"until": "9999-12-31T23:59:59-14:00"},
        {"since": "0001-01-01T00:00:00+14:00", "until": "9999-12-31T23:59:59-14:00"},
        {"until": "10000-01-01T00:00:00Z"},
    ],
)
async def test_bad_audit_search_is_refused(api: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await api.get("/api/v1/audit", params=params, headers=bearer(*SUPERVISOR))

    assert assert_problem(response, 422)["code"] == "validation_error"


@pytest.mark.parametrize(
    "params",
    [
        {"until": "974"},
        {"since": "1764057600"},
        {"since": "1.0481025474605908e-181"},
        {"until": ".5"},
        {"since": "2026-11-25T08:00:00"},
        {"since": "yesterday"},
        {"since": "2026-11-26T00:00:00Z", "until": "2026-11-25T00:00:00Z"},
    ],
    ids=[
        "number-until",
        "number-since",
        "exponent-since",
        "fraction-until",
        "no-time-zone",
        "words",
        "since-after-until",
    ],
)
async def test_audit_time_filters_must_be_zoned_iso_8601_in_order(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await api.get("/api/v1/audit", params=params, headers=bearer("sup", "supervisor"))

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    "answer",
    [
        {"check_id": "residual-v", "value": True},
        {"check_id": "residual-v", "value": "0.4"},
        {"check_id": "residual-v", "value": None},
        {"check_id": "residual-v", "value": [0.4]},
        {"check_id": "residual-v", "value": {"volts": 0.4}},
        {"check_id": "breaker-off", "passed": "true"},
        {"check_id": "breaker-off", "passed": 1},
        {"check_id": "breaker-off", "passed": 0},
        {"check_id": "breaker-off", "passed": None},
    ],
    ids=["value-true", "value-text", "value-null", "value-list", "value-object",
         "passed-text", "passed-one", "passed-zero", "passed-null"],
)  # fmt: skip
async def test_answers_of_the_wrong_json_type_are_refused(
    owner: Owner, answer: dict[str, Any]
) -> None:
    response = await owner.send("POST", CHECKS, json=answer)

    assert assert_problem(response, 422)["code"] == "invalid_check_answer"


REFUSED_CHARACTERS = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\ud800", "\udfff"]


def with_character(character: str) -> str:
    return f"before{character}after"


@pytest.mark.parametrize("character", REFUSED_CHARACTERS)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHECKS, lambda text: {"check_id": "breaker-off", "passed": True, "note": text}),
        ("/api/v1/sessions/{sid}/pause", lambda text: {"reason": text}),
        ("/api/v1/sessions/{sid}/abort", lambda text: {"reason": text}),
    ],
    ids=["note", "pause-reason", "abort-reason"],
)
async def test_control_characters_in_session_texts_are_refused(
    owner: Owner, path: str, body: Any, character: str
) -> None:
    # json.dumps escapes every one of them, so they reach the API as JSON escapes.
    response = await owner.send(
        "POST",
        path,
        content=json.dumps(body(with_character(character))),
        headers={"Content-Type": "application/json"},
    )

    assert assert_problem(response, 422)["code"] == "validation_error"


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\ud83d"])
@pytest.mark.parametrize(
    "mutate",
    [
        lambda sop, text: sop.update(title=text),
        lambda sop, text: sop.update(description=text),
        lambda sop, text: sop["steps"][0].update(title=text),
        lambda sop, text: sop["steps"][0].update(instructions=text),
        lambda sop, text: sop["steps"][0]["checks"][0].update(prompt=text),
        lambda sop, text: sop["steps"][0]["checks"][1].update(unit=text),
    ],
    ids=["title", "description", "step-title", "instructions", "prompt", "unit"],
)
async def test_control_characters_in_sop_texts_are_refused(
    api: httpx.AsyncClient, mutate: Any, character: str
) -> None:
    definition = sop_definition()
    mutate(definition, with_character(character))
    headers = {**bearer(*SUPERVISOR), "Content-Type": "application/json"}

    refused = await api.post("/api/v1/sops", content=json.dumps(definition), headers=headers)

    assert assert_problem(refused, 422)["code"] == "validation_error"
    assert (await api.get(f"/api/v1/sops/{definition['id']}", headers=headers)).status_code == 404


@pytest.mark.parametrize(
    "mutate",
    [
        lambda sop: sop["steps"][0]["checks"][0].update(required="false"),
        lambda sop: sop["steps"][0]["checks"][0].update(required=0),
        lambda sop: sop["steps"][0]["checks"][1].update(min=False),
        lambda sop: sop["steps"][0]["checks"][1].update(max="5"),
    ],
    ids=["required-text", "required-zero", "min-false", "max-text"],
)
async def test_sop_fields_of_the_wrong_json_type_are_refused(
    api: httpx.AsyncClient, mutate: Any
) -> None:
    definition = sop_definition()
    mutate(definition)
    headers = bearer(*SUPERVISOR)

    refused = await api.post("/api/v1/sops", json=definition, headers=headers)

    assert assert_problem(refused, 422)["code"] == "validation_error"
    assert (await api.get(f"/api/v1/sops/{definition['id']}", headers=headers)).status_code == 404


@pytest.mark.parametrize("version", [True, "1", 1.0])
async def test_an_sop_version_must_be_a_json_integer(
    api: httpx.AsyncClient, version: object
) -> None:
    response = await api.post(
        "/api/v1/sessions",
        json={"sop_id": "loto-press-7", "sop_version": version},
        headers=bearer(new_user()),
    )

    assert assert_problem(response, 422)["code"] == "validation_error"


async def test_tabs_and_line_breaks_in_notes_are_kept(api: httpx.AsyncClient) -> None:
    worker = new_user()
    session = await start_session(api, worker, "loto-press-7")
    note = "line one\r\nline two\n\tindented"

    response = await api.post(
        f"/api/v1/sessions/{session['id']}/checks",
        json={"check_id": "affected-notified", "passed": True, "note": note},
        headers=bearer(worker),
    )

    assert response.status_code == 201, response.text
    assert response.json()["safety_checks"][-1]["note"] == note

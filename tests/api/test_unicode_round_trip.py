"""Every text the API accepts comes back unchanged, through Temporal into PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from itertools import cycle, islice
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import make_url
from temporalio.client import Client

from api.auth import mint_token
from api.deps import Services
from api.main import create_app
from runtime.settings import Settings
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from store.migrate import migrate
from tests.helpers import TEST_SECRET, assert_eventually, new_user
from tests.helpers.postgres import reachable_postgres, run_sync
from worker import build_worker
from workflows.domain import MAX_NOTE_LENGTH, MAX_REASON_LENGTH

EDGE_CASES = [
    "😀",  # U+1F600: four bytes in UTF-8, a surrogate pair in UTF-16
    "👩‍👩‍👧‍👦",  # emoji joined by ZERO WIDTH JOINERs
    "🧑🏽‍🔧",  # skin tone modifier inside a ZWJ sequence
    "🇩🇪",  # regional indicator pair
    "🏳️‍🌈",  # variation selector and ZWJ
    "e\u0301",  # combining acute accent
    "Z\u0334\u0321\u0349a\u0336l\u0335",  # stacked combining marks
    "\u202eoverride\u202c",  # RTL override and pop
    "\u200f\u05e9\u05dc\u05d5\u05dd\u200e",  # RTL and LTR marks around Hebrew
    "\u0645\u0631\u062d\u0628\u0627",  # Arabic
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",  # mathematical alphanumerics, plane 1
    "\U00020000\U0002a6d6",  # CJK extension B, plane 2
    "\U000e0041",  # tag character, plane 14
    "\U0010fffd",  # last plane
    "\ufeff\u00a0\u2028\u2029\ufffd\uffff",  # BOM, no-break space, separators, specials
    "\x7f\u0085\u009f",  # DEL and C1 controls
    "tab\tline\nreturn\r",
    "'\"\\%_;--",  # quoting and LIKE characters
]
EDGE_TEXT = "".join(EDGE_CASES)


def longest(length: int) -> str:
    """Exactly `length` code points of edge cases, framed so no stripping applies."""
    return "[" + "".join(islice(cycle(EDGE_TEXT), length - 2)) + "]"


def unicode_sop() -> dict[str, Any]:
    return {
        "id": f"unicode-{uuid.uuid4().hex[:8]}",
        "title": longest(200),
        "description": longest(5000),
        "steps": [
            {
                "id": "measure",
                "title": longest(200),
                "instructions": longest(5000),
                "checks": [
                    {"id": "confirm", "prompt": longest(500), "kind": "confirm"},
                    {
                        "id": "gauge",
                        "prompt": EDGE_TEXT[:500],
                        "kind": "measurement",
                        "unit": longest(32),
                        "min": -1e12,
                        "max": 1e12,
                    },
                ],
            }
        ],
    }


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    server = reachable_postgres()
    url = server.create_database()
    run_sync(partial(migrate, url))
    yield url
    server.drop_all()


@pytest.fixture(scope="module")
async def postgres_api(
    postgres_url: str, settings: Settings, temporal_client: Client, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    postgres_settings = settings.model_copy(
        update={
            "database_url": postgres_url,
            "temporal_task_queue": f"unicode-{uuid.uuid4().hex[:8]}",
        }
    )
    services = await Services.create(postgres_settings)
    engine = create_engine(postgres_url)
    audit_log = AuditLog(create_transaction_factory(engine))
    async with build_worker(temporal_client, postgres_settings, audit_log):
        transport = httpx.ASGITransport(app=create_app(postgres_settings, services))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    await engine.dispose()
    await services.close()


async def audit_rows(postgres_url: str, session_id: str) -> list[tuple[str, dict[str, Any]]]:
    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT type, data FROM audit_events WHERE session_id = $1 ORDER BY seq", session_id
        )
    finally:
        await connection.close()
    return [(row["type"], json.loads(row["data"])) for row in rows]


async def test_edge_case_texts_reach_the_postgresql_audit_trail_unchanged(
    postgres_api: httpx.AsyncClient, postgres_url: str
) -> None:
    supervisor = {"Authorization": f"Bearer {mint_token(TEST_SECRET, 'sup-uni', ['supervisor'])}"}
    worker_token = mint_token(TEST_SECRET, new_user(), ["worker"], name=EDGE_TEXT[:100])
    worker = {"Authorization": f"Bearer {worker_token}"}
    definition = unicode_sop()
    note, pause_reason, abort_reason = (
        longest(MAX_NOTE_LENGTH),
        longest(MAX_REASON_LENGTH),
        EDGE_TEXT[:MAX_REASON_LENGTH],
    )

    published = await postgres_api.post("/api/v1/sops", json=definition, headers=supervisor)
    assert published.status_code == 201, published.text
    started = await postgres_api.post(
        "/api/v1/sessions", json={"sop_id": definition["id"]}, headers=worker
    )
    assert started.status_code == 201, started.text
    sid = started.json()["id"]
    for path, body in [
        ("checks", {"check_id": "confirm", "passed": True, "note": note}),
        ("checks", {"check_id": "gauge", "value": -1e12, "note": EDGE_TEXT}),
        ("pause", {"reason": pause_reason}),
        ("resume", None),
        ("abort", {"reason": abort_reason}),
    ]:
        response = await postgres_api.post(
            f"/api/v1/sessions/{sid}/{path}", json=body, headers=worker
        )
        assert response.status_code in (200, 201), response.text

    async def all_landed() -> list[tuple[str, dict[str, Any]]]:
        rows = await audit_rows(postgres_url, sid)
        assert len(rows) == 6
        return rows

    rows = await assert_eventually(all_landed)
    assert [kind for kind, _data in rows] == [
        "session_started",
        "check_recorded",
        "check_recorded",
        "session_paused",
        "session_resumed",
        "session_aborted",
    ]
    assert rows[0][1]["sop_title"] == definition["title"]
    assert rows[1][1]["note"] == note
    assert rows[2][1]["note"] == EDGE_TEXT
    assert rows[2][1]["value"] == -1e12
    assert rows[3][1]["reason"] == pause_reason
    assert rows[5][1]["reason"] == abort_reason
    served = await postgres_api.get(f"/api/v1/sessions/{sid}/audit", headers=supervisor)
    assert [item["data"] for item in served.json()["items"]] == [data for _kind, data in rows]
    read_back = await postgres_api.get(f"/api/v1/sops/{definition['id']}", headers=supervisor)
    assert texts_of(read_back.json()) == texts_of(definition)


def texts_of(sop: dict[str, Any]) -> list[str]:
    step = sop["steps"][0]
    checks = step["checks"]
    return [sop["title"], sop["description"], step["title"], step["instructions"]] + [
        checks[0]["prompt"],
        checks[1]["prompt"],
        checks[1]["unit"],
    ]

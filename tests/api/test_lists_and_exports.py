"""What a supervisor's desk reads: filtered lists, the words for codes, the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.audit_csv import neutralise
from tests.helpers import assert_eventually, bearer, new_user
from tests.helpers.api import act, publish_sop, record, start_session

SUPERVISOR = bearer("desk-sup", "supervisor")


@pytest.fixture
async def sop(api: httpx.AsyncClient) -> dict[str, Any]:
    return await publish_sop(api)


async def listed(api: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await api.get("/api/v1/sessions", params=params, headers=SUPERVISOR)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_vocabulary_names_every_status_kind_and_event_in_words(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/api/v1/vocabulary")

    assert response.status_code == 200
    body = response.json()
    assert body["statuses"] == [
        {"value": "IN_PROGRESS", "label": "In progress", "active": True},
        {"value": "PAUSED", "label": "Paused", "active": True},
        {"value": "COMPLETED", "label": "Completed", "active": False},
        {"value": "ABORTED", "label": "Aborted", "active": False},
    ]
    assert {t["value"]: t["label"] for t in body["check_kinds"]} == {
        "confirm": "Confirmation",
        "measurement": "Measurement",
    }
    assert {t["value"] for t in body["audit_event_types"]} >= {"check_recorded", "session_paused"}
    operation = (await api.get("/openapi.json")).json()["paths"]["/api/v1/vocabulary"]["get"]
    assert operation["operationId"] == "get_vocabulary"
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Vocabulary"}


async def test_supervisor_lists_sessions_of_one_sop_holding_failed_checks(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    other_sop = await publish_sop(api)
    worker = new_user()
    failing = await start_session(api, worker, sop["id"])
    passing = await start_session(api, worker, sop["id"])
    elsewhere = await start_session(api, worker, other_sop["id"])
    assert (await record(api, worker, failing["id"], "residual-v", value=12)).status_code == 201
    assert (await record(api, worker, passing["id"], "residual-v", value=1)).status_code == 201
    assert (await record(api, worker, elsewhere["id"], "residual-v", value=12)).status_code == 201

    async def filtered() -> None:
        assert await listed(api, sop_id=sop["id"], has_failed_checks="true") == [failing["id"]]
        assert await listed(api, sop_id=sop["id"], has_failed_checks="false") == [passing["id"]]
        assert set(await listed(api, worker_id=worker, has_failed_checks="true")) == {
            failing["id"],
            elsewhere["id"],
        }

    await assert_eventually(filtered)


async def test_start_time_range_keeps_sessions_started_inside_it(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker = new_user()
    session = await start_session(api, worker, sop["id"])
    started = datetime.fromisoformat(session["started_at"])
    before = (started - timedelta(hours=1)).isoformat()
    after = (started + timedelta(hours=1)).isoformat()

    async def in_range() -> None:
        around = {"started_since": before, "started_until": after}
        assert await listed(api, worker_id=worker, **around) == [session["id"]]

    await assert_eventually(in_range)
    assert await listed(api, worker_id=worker, started_since=after) == []
    assert await listed(api, worker_id=worker, started_until=before) == []


@pytest.mark.parametrize(
    "params",
    [
        {"started_since": "1733130000"},
        {"started_since": "2026-12-02T10:00:00"},
        {"started_since": "2026-12-02T10:00:00Z", "started_until": "2026-12-01T10:00:00Z"},
        {"has_failed_checks": "maybe"},
        {"sop_id": "Not An Id!"},
    ],
)
async def test_bad_list_filters_are_refused_with_a_problem(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await api.get("/api/v1/sessions", params=params, headers=SUPERVISOR)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_audit_csv_is_flat_in_utc_and_cannot_run_formulas(
    api: httpx.AsyncClient, sop: dict[str, Any]
) -> None:
    worker = new_user()
    sid = (await start_session(api, worker, sop["id"]))["id"]
    measured = await record(api, worker, sid, "residual-v", value=0.05, note="=HYPERLINK(1)")
    assert measured.status_code == 201
    assert (await act(api, worker, sid, "pause", {"reason": "@SUM(A1)"})).status_code == 200
    assert (await act(api, worker, sid, "abort", {"reason": "-1+2"})).status_code == 200

    async def exported() -> list[dict[str, str]]:
        response = await api.get(
            "/api/v1/audit", params={"session_id": sid, "format": "csv"}, headers=SUPERVISOR
        )
        assert response.status_code == 200
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert len(rows) == 4
        return rows

    started, check, paused, aborted = await assert_eventually(exported)
    assert list(started) == [
        "session_id",
        "seq",
        "type",
        "at",
        "actor",
        "worker_id",
        "sop_id",
        "sop_version",
        "step_id",
        "check_id",
        "prompt",
        "value",
        "unit",
        "min",
        "max",
        "passed",
        "note",
        "reason",
    ]
    assert all(row["at"].endswith("Z") for row in (started, check, paused, aborted))
    assert {k: check[k] for k in ("step_id", "check_id", "prompt", "value", "unit")} == {
        "step_id": "isolate",
        "check_id": "residual-v",
        "prompt": "Residual voltage",
        "value": "0.05",
        "unit": "V",
    }
    assert (check["min"], check["max"], check["passed"]) == ("0", "5", "true")
    assert check["note"] == "'=HYPERLINK(1)"
    assert paused["reason"] == "'@SUM(A1)"
    assert aborted["reason"] == "'-1+2"
    assert datetime.fromisoformat(check["at"]).tzinfo == UTC


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@A1", "\tx", "\rx"])
def test_every_formula_start_is_neutralised(text: str) -> None:
    assert neutralise(text) == f"'{text}"
    assert neutralise(f"ok {text}") == f"ok {text}"

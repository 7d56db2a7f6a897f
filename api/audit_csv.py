"""The audit trail as a flat CSV a spreadsheet opens cleanly and cannot be tricked by."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from api.schemas import AuditEventOut
from store.audit import AuditLog
from store.sops import CheckDefinitionModel, SopCatalog
from workflows.shared import AuditEventType

COLUMNS = (
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
)

# OWASP CSV injection: a spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Prefixes a quote to text a spreadsheet would otherwise read as a formula."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def utc_timestamp(at: datetime) -> str:
    """One format for every time in the file: UTC, milliseconds, `Z`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _text(value: Any) -> str:
    return "" if value is None else neutralise(str(value))


def _passed(value: Any) -> str:
    return "" if value is None else ("true" if value else "false")


async def _sop_versions(events: Sequence[AuditEventOut], audit_log: AuditLog) -> dict[str, int]:
    """Maps each session to its SOP version, read from its start event."""
    versions = {
        e.session_id: int(e.data["sop_version"])
        for e in events
        if e.type is AuditEventType.SESSION_STARTED and "sop_version" in e.data
    }
    for session_id in {e.session_id for e in events} - versions.keys():
        trail = await audit_log.for_session(session_id)
        if trail and trail[0].type is AuditEventType.SESSION_STARTED:
            versions[session_id] = int(trail[0].data["sop_version"])
    return versions


async def _check_definitions(
    events: Sequence[AuditEventOut], versions: dict[str, int], catalog: SopCatalog
) -> dict[tuple[str, int], dict[str, CheckDefinitionModel]]:
    definitions: dict[tuple[str, int], dict[str, CheckDefinitionModel]] = {}
    for key in {(e.sop_id, versions[e.session_id]) for e in events if e.session_id in versions}:
        sop = await catalog.get(*key)
        definitions[key] = (
            {} if sop is None else {c.id: c for step in sop.steps for c in step.checks}
        )
    return definitions


async def audit_csv(
    events: Sequence[AuditEventOut], audit_log: AuditLog, catalog: SopCatalog
) -> str:
    """Writes events, oldest first, one flat row each, checks beside their definitions."""
    versions = await _sop_versions(events, audit_log)
    definitions = await _check_definitions(events, versions, catalog)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for event in events:
        version = versions.get(event.session_id)
        checks = definitions.get((event.sop_id, version), {}) if version else {}
        data = event.data
        check = checks.get(data.get("check_id", "")) if "check_id" in data else None
        writer.writerow(
            [
                _text(event.session_id),
                event.seq,
                event.type.value,
                utc_timestamp(event.at),
                _text(event.actor),
                _text(event.worker_id),
                _text(event.sop_id),
                "" if version is None else version,
                _text(data.get("step_id")),
                _text(data.get("check_id")),
                _text(check.prompt if check else None),
                _number(data.get("value")),
                _text(check.unit if check else None),
                _number(check.min if check else None),
                _number(check.max if check else None),
                _passed(data.get("passed")),
                _text(data.get("note")),
                _text(data.get("reason")),
            ]
        )
    return buffer.getvalue()

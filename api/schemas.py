"""The HTTP contract (DESIGN section 5), kept apart from workflow payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError

from runtime.text import PlainText
from workflows.domain import MAX_NOTE_LENGTH, MAX_REASON_LENGTH, durations
from workflows.shared import (
    AuditEventType,
    CheckKind,
    SessionStatus,
    SessionSummary,
    SessionView,
)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
SessionId = Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]
SOP_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
SopId = Annotated[str, Field(pattern=SOP_ID_PATTERN, max_length=64)]
Reason = Annotated[PlainText, Field(max_length=MAX_REASON_LENGTH)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _iso_8601_only(value: object) -> object:
    # Pydantic would read a number in any spelling (`-1`, `.5`, `1e-9`) as a Unix
    # timestamp; the contract says date-time.
    if isinstance(value, str) and _is_number(value):
        raise ValueError("expected an ISO 8601 date-time with a time zone")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as err:
        # Year 1 at +14:00 is a moment before the first representable UTC instant.
        raise ValueError("is outside the representable range of dates") from err


IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_8601_only), AfterValidator(_in_utc)]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartSessionIn(RequestBody):
    sop_id: SopId
    sop_version: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None


class PauseIn(RequestBody):
    reason: Reason | None = None


class AbortIn(RequestBody):
    reason: Reason | None = None


class RecordCheckIn(RequestBody):
    check_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", max_length=64)]
    passed: StrictBool | None = None
    value: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-1e12, le=1e12)] | None = (
        None
    )
    note: Annotated[PlainText, Field(max_length=MAX_NOTE_LENGTH)] | None = None

    @field_validator("passed", "value", mode="wrap")
    @classmethod
    def _answer_of_the_right_type(
        cls, answer: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> object:
        try:
            return handler(answer)
        except ValidationError as err:
            expected = (
                "a JSON boolean"
                if info.field_name == "passed"
                else "a finite JSON number from -1e12 to 1e12"
            )
            # The error type becomes the problem code (see api/errors.py).
            raise PydanticCustomError(
                "invalid_check_answer", f"`{info.field_name}` must be {expected}"
            ) from err


class ResponseModel(BaseModel):
    """A response read field by field from an object of its shape: a dataclass, a store model."""

    model_config = ConfigDict(from_attributes=True)


class ProgressOut(ResponseModel):
    checks_passed: int
    checks_required: int
    checks_total: int
    checks_failed: int = Field(
        description="Checks, optional ones included, whose latest record failed."
    )


class SafetyCheckOut(ResponseModel):
    seq: int
    check_id: str
    step_id: str
    passed: bool
    value: float | None
    note: str | None
    recorded_at: datetime
    recorded_by: str


class HistoryEntryOut(ResponseModel):
    status: SessionStatus
    at: datetime
    by: str
    reason: str | None


class WorkSessionSummaryOut(ResponseModel):
    id: str
    worker_id: str
    sop_id: str
    sop_version: int
    sop_title: str
    status: SessionStatus
    started_at: datetime
    updated_at: datetime
    paused_at: datetime | None
    pause_reason: str | None
    ended_at: datetime | None
    abort_reason: str | None
    active_seconds: float
    paused_seconds: float
    progress: ProgressOut
    worker_name: str | None
    current_step_id: str | None

    @classmethod
    def of(cls, summary: SessionSummary, now: datetime) -> Self:
        """Converts a workflow summary, with durations computed as of `now`."""
        return cls.model_validate(_with_durations(summary, now))


def _with_durations(summary: SessionSummary, now: datetime) -> dict[str, Any]:
    active, paused = durations(summary, now)
    return {**vars(summary), "active_seconds": active, "paused_seconds": paused}


class WorkSessionOut(WorkSessionSummaryOut):
    safety_checks: list[SafetyCheckOut]
    history: list[HistoryEntryOut]

    @classmethod
    def of_view(cls, view: SessionView, now: datetime) -> WorkSessionOut:
        """Converts the whole workflow view, with durations computed as of `now`."""
        return cls.model_validate(
            {
                **_with_durations(view.summary, now),
                "safety_checks": view.safety_checks,
                "history": view.history,
            }
        )


class SessionPage(BaseModel):
    items: list[WorkSessionSummaryOut]
    next_page_token: str | None


class AuditEventOut(ResponseModel):
    session_id: str
    seq: int
    type: AuditEventType
    actor: str
    at: datetime
    worker_id: str
    sop_id: str
    data: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEventOut]


class SopCheckOut(ResponseModel):
    id: str
    prompt: str
    kind: CheckKind
    required: bool
    unit: str | None
    min: float | None
    max: float | None


class SopStepOut(ResponseModel):
    id: str
    title: str
    instructions: str
    checks: list[SopCheckOut]


class SopOut(ResponseModel):
    """One published version of an SOP: its definition and who published it when."""

    id: str
    version: int
    title: str
    description: str
    steps: list[SopStepOut]
    published_at: datetime
    published_by: str


class SopSummaryOut(ResponseModel):
    id: str
    version: int
    title: str
    step_count: int
    check_count: int


class SopPage(BaseModel):
    items: list[SopSummaryOut]


class DevTokenIn(RequestBody):
    sub: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:|+-]{0,127}$")]
    roles: Annotated[list[Literal["worker", "supervisor"]], Field(min_length=1, max_length=2)]
    name: Annotated[PlainText, Field(max_length=100)] | None = None


class DevTokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class OidcSignIn(BaseModel):
    """How the web page signs in: authorization code flow with PKCE (S256), a public client."""

    issuer: str
    client_id: str
    authorization_endpoint: str
    token_endpoint: str
    end_session_endpoint: str | None
    scope: str
    roles_claim: str = Field(description="Dotted path of the roles list in access tokens.")


class PublicConfig(BaseModel):
    embedded: bool
    dev_sign_in: bool = Field(description="Whether `POST /api/v1/dev/token` mints tokens here.")
    oidc: OidcSignIn | None = Field(description="OpenID Connect sign-in, when configured.")
    temporal_ui_url: str
    temporal_namespace: str


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]

"""The SOP definition (DESIGN section 5) and the versioned SOP catalog."""

import asyncio
import logging
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from runtime.text import refuse_control_characters
from store.db import serialize_on
from store.models import SopVersionRow
from workflows.shared import CheckKind, SopSnapshot

MAX_STEPS = 100
MAX_CHECKS = 500
PUBLISH_ATTEMPTS = 5

_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def _validate_identifier(value: str) -> str:
    if not _ID_PATTERN.fullmatch(value):
        raise ValueError(
            "must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or a digit"
        )
    return value


Identifier = Annotated[str, AfterValidator(_validate_identifier)]
# The character check goes last: constraints placed after a validator see unstripped text.
_PlainText = AfterValidator(refuse_control_characters)
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _PlainText
]
Prompt = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), _PlainText
]
Unit = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32), _PlainText
]
LongText = Annotated[str, StringConstraints(max_length=5000), _PlainText]
# Strict: a limit is a JSON number, never a boolean or a numeric string.
Limit = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class CheckDefinitionModel(BaseModel):
    """A safety check: a confirmation, or a measurement with limits and a unit."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    prompt: Prompt
    kind: CheckKind
    required: StrictBool = True
    unit: Unit | None = None
    min: Limit | None = None
    max: Limit | None = None

    @model_validator(mode="after")
    def _check_kind_fields(self) -> Self:
        if self.kind is CheckKind.CONFIRM:
            if self.unit is not None or self.min is not None or self.max is not None:
                raise ValueError(f"confirm check {self.id!r} must not have unit, min or max")
            return self
        if self.unit is None:
            raise ValueError(f"measurement check {self.id!r} needs a unit")
        if self.min is None and self.max is None:
            raise ValueError(f"measurement check {self.id!r} needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(
                f"measurement check {self.id!r} has min {self.min} greater than max {self.max}"
            )
        return self


class StepDefinitionModel(BaseModel):
    """A step of an SOP with its instructions and at least one check."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    title: Title
    instructions: LongText = ""
    checks: list[CheckDefinitionModel] = Field(min_length=1, max_length=MAX_CHECKS)


class SopDefinition(BaseModel):
    """A whole SOP as published: the body of POST /sops."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    title: Title
    description: LongText = ""
    steps: list[StepDefinitionModel] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _check_unique_ids(self) -> Self:
        step_ids: set[str] = set()
        check_ids: set[str] = set()
        for step in self.steps:
            if step.id in step_ids:
                raise ValueError(f"step id {step.id!r} is used more than once")
            step_ids.add(step.id)
            for check in step.checks:
                if check.id in check_ids:
                    raise ValueError(f"check id {check.id!r} is used more than once")
                check_ids.add(check.id)
        if len(check_ids) > MAX_CHECKS:
            raise ValueError(
                f"an SOP has at most {MAX_CHECKS} checks, this one has {len(check_ids)}"
            )
        return self


class PublishedSop(SopDefinition):
    """A published, immutable version of an SOP."""

    version: int
    published_at: datetime
    published_by: str

    def to_snapshot(self) -> SopSnapshot:
        """Converts to the snapshot a work session starts with."""
        return snapshot_of(self, self.version)


# Field names and types match one to one, so pydantic converts without a hand-written copy.
_SNAPSHOT = TypeAdapter(SopSnapshot)


def snapshot_of(definition: SopDefinition, version: int) -> SopSnapshot:
    """The snapshot a work session keeps of version `version` of an SOP."""
    return _SNAPSHOT.validate_python({**definition.model_dump(), "version": version})


class SopListItem(BaseModel):
    """The latest version of an SOP as the catalog lists it."""

    id: str
    version: int
    title: str
    step_count: int
    check_count: int


def _published(
    definition: dict[str, Any], version: int, published_at: datetime, published_by: str
) -> PublishedSop:
    return PublishedSop.model_validate(
        {
            **definition,
            "version": version,
            "published_at": published_at,
            "published_by": published_by,
        }
    )


# How long this process takes an SOP's latest version for the latest without asking.
LATEST_SOP_FRESH_SECONDS = 5.0
# Past this age a start still gets the version it has, and the database is asked again
# beside it: under a steady stream of starts none of them waits for that read.
LATEST_SOP_REFRESH_SECONDS = LATEST_SOP_FRESH_SECONDS / 2

log = logging.getLogger(__name__)


class SopCatalog:
    """The versioned SOP catalog: published versions are only ever added."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        # A published version never changes, so it is read from the database once.
        self._versions: dict[tuple[str, int], PublishedSop] = {}
        # Which version is the latest, as last read, and when that read began.
        self._latest: dict[str, tuple[int, float]] = {}
        self._refreshing: dict[str, asyncio.Task[PublishedSop | None]] = {}
        # Publishes through this process per SOP: a read begun before one is not the latest.
        self._publishes: dict[str, int] = {}

    async def list_latest(self) -> list[SopListItem]:
        """Lists the latest version of every SOP, ordered by title."""
        latest = (
            select(SopVersionRow.sop_id, func.max(SopVersionRow.version).label("version"))
            .group_by(SopVersionRow.sop_id)
            .subquery()
        )
        query = (
            select(SopVersionRow)
            .join(
                latest,
                (SopVersionRow.sop_id == latest.c.sop_id)
                & (SopVersionRow.version == latest.c.version),
            )
            .order_by(SopVersionRow.title, SopVersionRow.sop_id)
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        items = []
        for row in rows:
            steps = row.definition["steps"]
            items.append(
                SopListItem(
                    id=row.sop_id,
                    version=row.version,
                    title=row.title,
                    step_count=len(steps),
                    check_count=sum(len(step["checks"]) for step in steps),
                )
            )
        return items

    async def get(self, sop_id: str, version: int | None = None) -> PublishedSop | None:
        """Gets one version of an SOP, the latest when version is None.

        A version published through another process becomes the latest here
        within LATEST_SOP_FRESH_SECONDS; one published through this one at once.
        """
        latest = self._latest.get(sop_id) if version is None else None
        if latest is not None:
            known, read_at = latest
            age = time.monotonic() - read_at
            if age < LATEST_SOP_FRESH_SECONDS:
                version = known
                if age >= LATEST_SOP_REFRESH_SECONDS:
                    self._refresh_beside(sop_id)
        if version is not None and (sop_id, version) in self._versions:
            return self._versions[(sop_id, version)]
        return await self._read_and_keep(sop_id, version, self._as_of_now(sop_id))

    def _as_of_now(self, sop_id: str) -> tuple[float, int]:
        """When a read begins, and how many publishes through this process it follows."""
        return time.monotonic(), self._publishes.get(sop_id, 0)

    async def _read_and_keep(
        self, sop_id: str, version: int | None, as_of: tuple[float, int]
    ) -> PublishedSop | None:
        """Reads a version and keeps it; the latest as read unless a publish here came since."""
        began, publishes = as_of
        found = await self._read(sop_id, version)
        if found is not None:
            self._versions.setdefault((sop_id, found.version), found)
            if version is None and publishes == self._publishes.get(sop_id, 0):
                self._latest[sop_id] = (found.version, began)
        return found

    def _refresh_beside(self, sop_id: str) -> None:
        """Reads the SOP's latest version in a task of its own, unless one already does."""
        if sop_id in self._refreshing:
            return
        task = asyncio.create_task(self._read_and_keep(sop_id, None, self._as_of_now(sop_id)))
        self._refreshing[sop_id] = task
        task.add_done_callback(lambda done: self._refreshed(sop_id, done))

    async def close(self) -> None:
        """Stops the reads begun beside starts, before the engine they use is disposed of."""
        refreshing = list(self._refreshing.values())
        for task in refreshing:
            task.cancel()
        await asyncio.gather(*refreshing, return_exceptions=True)

    def _refreshed(self, sop_id: str, task: asyncio.Task[PublishedSop | None]) -> None:
        del self._refreshing[sop_id]
        if not task.cancelled() and task.exception() is not None:
            # The next start past the freshness bound reads (and reports) it itself.
            log.warning("could not refresh SOP %s: %s", sop_id, task.exception())

    async def _read(self, sop_id: str, version: int | None) -> PublishedSop | None:
        query = select(SopVersionRow).where(SopVersionRow.sop_id == sop_id)
        if version is None:
            query = query.order_by(SopVersionRow.version.desc()).limit(1)
        else:
            query = query.where(SopVersionRow.version == version)
        async with self._sessions() as session:
            row = (await session.scalars(query)).first()
        if row is None:
            return None
        return _published(row.definition, row.version, row.published_at, row.published_by)

    async def publish(self, definition: SopDefinition, published_by: str) -> PublishedSop:
        """Publishes a definition as the SOP's next version (1 for a new SOP)."""
        self._publishes[definition.id] = self._publishes.get(definition.id, 0) + 1
        self._latest.pop(definition.id, None)
        for _ in range(PUBLISH_ATTEMPTS - 1):
            try:
                return await self._insert(definition, published_by, first_only=False)
            except IntegrityError:
                # A concurrent first publish took version 1: count again.
                continue
        return await self._insert(definition, published_by, first_only=False)

    async def publish_if_new(
        self, definition: SopDefinition, published_by: str
    ) -> PublishedSop | None:
        """Publishes a definition as version 1, or returns None when the SOP already exists."""
        try:
            return await self._insert(definition, published_by, first_only=True)
        except IntegrityError:
            return None

    async def _insert(
        self, definition: SopDefinition, published_by: str, *, first_only: bool
    ) -> PublishedSop:
        # One statement reads the latest version and inserts the next, so SQLite takes
        # its write lock before the read: no other write can land between the two.
        # PostgreSQL reads at each statement's start: publishes of one SOP take turns.
        next_version = (
            select(func.coalesce(func.max(SopVersionRow.version), 0) + 1)
            .where(SopVersionRow.sop_id == definition.id)
            .scalar_subquery()
        )
        stored_definition = definition.model_dump(mode="json")
        published_at = datetime.now(UTC)
        statement = (
            insert(SopVersionRow)
            .values(
                sop_id=definition.id,
                version=1 if first_only else next_version,
                title=definition.title,
                description=definition.description,
                definition=stored_definition,
                published_at=published_at,
                published_by=published_by,
            )
            .returning(SopVersionRow.version)
        )
        async with self._sessions() as session:
            await serialize_on(session, f"sop:{definition.id}")
            version = (await session.execute(statement)).scalar_one()
            await session.commit()
        return _published(stored_definition, version, published_at, published_by)

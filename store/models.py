"""Declarative table models of the SOP catalog and the audit trail."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID_LENGTH = 255

JsonDocument = JSON().with_variant(JSONB(), "postgresql")
# SQLite autoincrements only a column declared exactly INTEGER PRIMARY KEY.
AutoIncrementId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC that always comes back timezone-aware in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Rejects naive datetimes and converts aware ones to UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} has no timezone")
        value = value.astimezone(UTC)
        # SQLite has no timezone type: it stores the UTC wall clock.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Marks stored values as UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with constraint names that migrations can refer to."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class SopVersionRow(Base):
    """One published, immutable version of an SOP."""

    __tablename__ = "sop_versions"

    sop_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_by: Mapped[str] = mapped_column(String(ID_LENGTH))


class AuditEventRow(Base):
    """One audit event of one session; (session_id, seq) makes appends idempotent."""

    __tablename__ = "audit_events"
    # The unique constraint's index also serves lookups by (session_id, seq).
    __table_args__ = (
        UniqueConstraint("session_id", "seq"),
        Index(None, "worker_id", "at"),
        Index(None, "at"),
    )

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(ID_LENGTH))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    worker_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    sop_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    recorded_at: Mapped[datetime] = mapped_column(
        UtcDateTime, server_default=text("CURRENT_TIMESTAMP")
    )


class AuditDeadLetterRow(Base):
    """An audit event the database refused for good, kept as ASCII-escaped JSON for repair."""

    __tablename__ = "audit_dead_letters"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    seq: Mapped[int] = mapped_column(Integer)
    event_json: Mapped[str] = mapped_column(Text)
    refusal: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(
        UtcDateTime, server_default=text("CURRENT_TIMESTAMP")
    )


class SessionStartKeyRow(Base):
    """The session the first `POST /sessions` with an Idempotency-Key named, for its repeats."""

    __tablename__ = "session_start_keys"

    # SHA-256 of caller and key: neither is stored, and the key's length does not matter.
    key_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_digest: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime, server_default=text("CURRENT_TIMESTAMP")
    )

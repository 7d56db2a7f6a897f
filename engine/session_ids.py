"""Session ids a supervisor reads at a glance in the Temporal Web UI's workflow list."""

from __future__ import annotations

import base64
import re
import secrets
import unicodedata
from datetime import UTC, datetime

WORKER_PART_LENGTH = 24
SOP_PART_LENGTH = 32
UNIQUE_PART_BYTES = 5  # 40 bits: 8 base32 characters
_NOT_ID_SAFE = re.compile(r"[^a-z0-9]+")


def _slug(text: str, length: int, fallback: str) -> str:
    """Lower-case letters and digits, runs of anything else as one '-', cut to `length`."""
    # Accented letters keep their base letter: "Müller" reads "muller", not "m-ller".
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NOT_ID_SAFE.sub("-", ascii_text.lower()).strip("-")[:length].rstrip("-")
    return slug or fallback


def unique_part() -> str:
    """Eight random characters (a-z, 2-7)."""
    return base64.b32encode(secrets.token_bytes(UNIQUE_PART_BYTES)).decode().lower()


def readable_session_id(worker_id: str, sop_id: str, started_at: datetime) -> str:
    """`<worker>.<sop>.<yyyymmdd-hhmm UTC>.<unique>`: URL-safe, at most 80 characters.

    Only the unique part makes the id unique; the rest is there to be read.
    """
    return ".".join(
        (
            _slug(worker_id, WORKER_PART_LENGTH, "worker"),
            _slug(sop_id, SOP_PART_LENGTH, "sop"),
            started_at.astimezone(UTC).strftime("%Y%m%d-%H%M"),
            unique_part(),
        )
    )

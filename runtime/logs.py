"""Structured logging: one JSON object per line, never a token or a secret."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else was passed with `extra=`.
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# Fields of the request (or task) being handled, e.g. request_id and session_id. A
# dict, mutated in place, so fields bound deep inside a request reach its access log.
_context: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)

# A JWT (header.payload.signature) that slipped into a message or an exception.
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]*")


def start_log_context(**fields: Any) -> Token[dict[str, Any] | None]:
    """Starts a fresh set of context fields, e.g. for one request; reset it with the token."""
    return _context.set(dict(fields))


def reset_log_context(token: Token[dict[str, Any] | None]) -> None:
    """Restores the context fields from before `start_log_context`."""
    _context.reset(token)


def bind_log_context(**fields: Any) -> None:
    """Adds fields to every record logged from now on in the current context."""
    current = _context.get()
    if current is None:
        _context.set(dict(fields))
    else:
        current.update(fields)


def _redacted(line: str) -> str:
    return _JWT.sub("[redacted-token]", line)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with the context and its `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **(_context.get() or {}),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _redacted(json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    """Formats a record as a line for people: the message, then the context as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The context goes on the message's line, before any traceback.
        line = super().formatMessage(record)
        context = " ".join(f"{key}={value}" for key, value in (_context.get() or {}).items())
        return f"{line} {context}" if context else line

    def format(self, record: logging.LogRecord) -> str:
        return _redacted(super().format(record))


def configure_logging(log_format: str) -> None:
    """Sends INFO and above to stderr, as JSON lines or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)

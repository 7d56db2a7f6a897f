"""Temporal's list page tokens, handed to callers sealed to the caller and the list."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from api.errors import ProblemCode, ProblemError


class PageTokens:
    """Temporal's page tokens, sealed with an HMAC over the caller and the list query.

    Temporal answers a garbled page token with UNKNOWN after ~10 s of retries, not
    INVALID_ARGUMENT: a token that is forged, altered, or taken to another caller or
    another list is refused here, before any call to Temporal.
    """

    _MAC_BYTES = 16

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, caller_id: str, query: str, token: bytes) -> bytes:
        # The caller id and the query hold no NUL (both are validated), so the fields cannot blur.
        message = f"{caller_id}\0{query}\0".encode() + token
        return hmac.new(self._key, message, hashlib.sha256).digest()[: self._MAC_BYTES]

    def seal(self, caller_id: str, query: str, token: bytes) -> str | None:
        """The token to hand the caller for the next page, or None on the last page."""
        if not token:
            return None
        return base64.urlsafe_b64encode(self._mac(caller_id, query, token) + token).decode()

    def open(self, caller_id: str, query: str, sealed: str | None) -> bytes:
        """Temporal's token inside a sealed one, or a 422 problem if it was not sealed for this."""
        if not sealed:
            return b""
        invalid = ProblemError(
            ProblemCode.VALIDATION_ERROR, "The page token is not valid for this list."
        )
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
        except (binascii.Error, ValueError) as err:
            raise invalid from err
        mac, token = raw[: self._MAC_BYTES], raw[self._MAC_BYTES :]
        if not token or not hmac.compare_digest(mac, self._mac(caller_id, query, token)):
            raise invalid
        return token

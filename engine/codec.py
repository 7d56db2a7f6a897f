"""Payload encryption: AES-256-GCM with rotating keys, as a Temporal payload codec.

Every payload the API and the worker hand to Temporal (workflow input, update
arguments and results, query results, the list memo, failures' messages, the
Web UI summary) is encrypted with the newest key and names that key in its
metadata; any configured key decrypts. A payload without the encryption marker
passes through unchanged, so histories and sessions from before encryption was
turned on keep working.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from runtime.settings import EncryptionKey

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12


class UndecryptablePayload(ValueError):
    """A payload marked as encrypted that no configured key opens."""


def _is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


def no_key_configured(payload: Payload) -> UndecryptablePayload:
    """The error for an encrypted payload met where no key is configured at all."""
    key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
    return UndecryptablePayload(
        f"A payload is encrypted with key {key_id!r}, and no payload encryption key is "
        "configured: set PAYLOAD_ENCRYPTION_KEYS as on the rest of the deployment."
    )


class EncryptionCodec(PayloadCodec):
    """Encrypts with the newest key, decrypts with any; leaves plaintext payloads alone."""

    def __init__(self, keys: Sequence[EncryptionKey]) -> None:
        if not keys:
            raise ValueError("an encryption codec needs at least one key")
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keys}
        self._newest_id = keys[-1].key_id
        self._newest = self._ciphers[self._newest_id]

    @property
    def newest_key_id(self) -> str:
        """The id of the key new payloads are encrypted with."""
        return self._newest_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypts each whole payload (data and metadata) under the newest key."""
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypts the encrypted payloads; passes the others through."""
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """The payload, encrypted under the newest key."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._newest.encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self._newest_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """The plaintext payload inside an encrypted one; any other payload as it is."""
        if not _is_encrypted(payload):
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UndecryptablePayload(
                f"A payload is encrypted with key {key_id!r}, which is not configured: "
                "keep every key that encrypted a live session in PAYLOAD_ENCRYPTION_KEYS."
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, None))
        except InvalidTag:
            raise UndecryptablePayload(
                f"A payload encrypted with key {key_id!r} does not decrypt: it was altered, "
                f"or the key configured as {key_id!r} is not the one that encrypted it."
            ) from None

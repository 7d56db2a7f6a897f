"""Configuration from environment variables (DESIGN section 3)."""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.envconfig import ClientConfigProfile

# Public: it is in the source. It signs nothing once an operator configures real sign-in.
DEV_JWT_SECRET = "dev-secret-change-me-0123456789abcdef"
# Public too: signs list page tokens on the embedded stack only.
DEV_PAGE_TOKEN_SECRET = "dev-page-tokens-change-me-0123456789"


def is_loopback_host(host: str) -> bool:
    """Tells whether a listen address or peer address stays on this machine."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def temporal_profile() -> ClientConfigProfile:
    """The Temporal SDK's connection profile: a TOML profile with TEMPORAL_* variables over it.

    An empty variable counts as unset, as for every other setting (the SDK alone would
    turn an empty TEMPORAL_TLS or TEMPORAL_API_KEY into TLS).
    """
    env = {name: value for name, value in os.environ.items() if value}
    config_file = env.get("TEMPORAL_CONFIG_FILE")
    # The SDK would quietly fall back to no profile at all, i.e. to localhost.
    if config_file and not Path(config_file).is_file():
        raise ValueError(f"TEMPORAL_CONFIG_FILE={config_file}: no such file.")
    try:
        return ClientConfigProfile.load(override_env_vars=env)
    except (OSError, RuntimeError) as err:  # the SDK's ConfigError is a RuntimeError
        raise ValueError(f"The Temporal connection settings cannot be read: {err}") from err


# AES-256-GCM: a key is exactly 32 bytes.
ENCRYPTION_KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_KEY_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(frozen=True, repr=False)
class EncryptionKey:
    """A payload encryption key and the id every payload it encrypts names it by."""

    key_id: str
    secret: bytes

    def __repr__(self) -> str:
        return f"EncryptionKey({self.key_id!r})"


def parse_encryption_keys(text: str, source: str) -> list[EncryptionKey]:
    """Reads `id:base64key` entries, separated by commas, spaces or lines; `#` starts a comment.

    The last entry is the newest key: it encrypts, and every entry decrypts.
    """
    without_comments = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    entries = [entry for entry in _KEY_SEPARATORS.split(without_comments) if entry]
    if not entries:
        raise ValueError(f"{source} holds no key: write `id:base64key`, e.g. `k1:<44 characters>`.")
    keys: list[EncryptionKey] = []
    for number, entry in enumerate(entries, start=1):
        key_id, colon, encoded = entry.partition(":")
        if not colon or not _KEY_ID.match(key_id):
            raise ValueError(
                f"Entry {number} of {source} is not `id:base64key` with an id of 1-64 letters, "
                "digits, '.', '_' or '-'."
            )
        # Standard base64 (`openssl rand -base64 32`) or its URL-safe alphabet.
        url_safe = "-" in encoded or "_" in encoded
        try:
            secret = base64.b64decode(encoded, altchars=b"-_" if url_safe else None, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"Key {key_id!r} in {source} is not valid base64.") from None
        if len(secret) != ENCRYPTION_KEY_BYTES:
            raise ValueError(
                f"Key {key_id!r} in {source} is {len(secret)} bytes long; AES-256-GCM needs "
                f"exactly {ENCRYPTION_KEY_BYTES} (make one with `openssl rand -base64 32`)."
            )
        if any(known.key_id == key_id for known in keys):
            raise ValueError(f"Key id {key_id!r} appears twice in {source}.")
        keys.append(EncryptionKey(key_id, secret))
    return keys


def origin_of(url: str) -> str:
    """The browser origin (scheme://host[:port]) of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Settings(BaseSettings):
    """Every setting of the API and the worker, read from the environment."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", env_ignore_empty=True)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "work-sessions"
    database_url: str = "sqlite+aiosqlite:///.data/app.db"

    auth_jwt_secret: str | None = None
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_oidc_client_id: str | None = None
    auth_oidc_scopes: str = "openid profile"
    auth_roles_claim: str = Field(
        default="roles",
        description="Dotted path of the roles list in identity provider tokens.",
        pattern=r"^[^.\s]+(\.[^.\s]+)*$",
    )
    auth_max_token_lifetime_seconds: int = Field(default=86400, ge=60)
    page_token_secret: str | None = Field(default=None, min_length=32)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_ui_url: str = "http://localhost:8233"
    embedded: bool = Field(
        default=False,
        description="True only under `make run`: enables the dev sign-in endpoint.",
    )
    temporal_rpc_timeout_seconds: float = 10.0
    worker_metrics_port: int | None = None
    # Loopback unless the operator opens it (a container whose metrics are scraped).
    worker_metrics_host: str = "127.0.0.1"
    # ~150 KiB of resident memory each (docs/performance.md, Worker memory): a bound on
    # the worker's memory, however many sessions sit paused.
    # An evicted session replays on its next message (+15 ms, +0.4 s at 1,000 events).
    worker_max_cached_workflows: int = 200
    # How often each worker looks for sessions whose workflow Temporal's tools closed,
    # to record their ending in the audit trail (docs/record-integrity.md).
    reconcile_interval_seconds: float = Field(default=5.0, gt=0)
    log_format: Literal["json", "text"] = "json"
    # Each replica asks visibility for two counts per interval.
    session_gauge_interval_seconds: float = 30.0
    payload_encryption_keys: SecretStr | None = Field(
        default=None,
        description="`id:base64key` entries, comma-separated; the last one encrypts.",
    )
    payload_encryption_keys_file: Path | None = Field(
        default=None, description="A file of `id:base64key` entries, one a line; the last encrypts."
    )
    codec_allowed_origins: str | None = Field(
        default=None,
        description="Comma-separated browser origins allowed to call the codec endpoints; "
        "default: the origin of TEMPORAL_UI_URL.",
    )

    @model_validator(mode="after")
    def _temporal_target_from_the_sdk_profile(self) -> "Settings":
        """Where TEMPORAL_ADDRESS or TEMPORAL_NAMESPACE is unset, a TOML profile may name it."""
        unset = {"temporal_address", "temporal_namespace"} - self.model_fields_set
        if unset:
            profile = temporal_profile()
            if "temporal_address" in unset and profile.address:
                self.temporal_address = profile.address
            if "temporal_namespace" in unset and profile.namespace:
                self.temporal_namespace = profile.namespace
        return self

    @model_validator(mode="after")
    def _oidc_sign_in_has_an_issuer(self) -> "Settings":
        if self.auth_oidc_client_id and not self.auth_issuer:
            raise ValueError("AUTH_OIDC_CLIENT_ID needs AUTH_ISSUER: the provider to sign in at.")
        return self

    @model_validator(mode="after")
    def _encryption_keys_are_usable(self) -> "Settings":
        if self.payload_encryption_keys and self.payload_encryption_keys_file:
            raise ValueError(
                "Set PAYLOAD_ENCRYPTION_KEYS or PAYLOAD_ENCRYPTION_KEYS_FILE, not both."
            )
        self.encryption_keys()
        return self

    def encryption_keys(self) -> list[EncryptionKey]:
        """The payload encryption keys, oldest first (the last encrypts); none: no encryption."""
        if self.payload_encryption_keys is not None:
            text = self.payload_encryption_keys.get_secret_value()
            return parse_encryption_keys(text, "PAYLOAD_ENCRYPTION_KEYS")
        if self.payload_encryption_keys_file is not None:
            source = f"PAYLOAD_ENCRYPTION_KEYS_FILE ({self.payload_encryption_keys_file})"
            try:
                text = self.payload_encryption_keys_file.read_text()
            except OSError as err:
                raise ValueError(f"{source} cannot be read: {err.strerror}.") from None
            return parse_encryption_keys(text, source)
        return []

    def codec_origins(self) -> list[str]:
        """The browser origins (the Temporal Web UI's) the codec endpoints answer."""
        if self.codec_allowed_origins:
            return [
                o.strip().rstrip("/") for o in self.codec_allowed_origins.split(",") if o.strip()
            ]
        ui = origin_of(self.temporal_ui_url)
        host = urlsplit(self.temporal_ui_url).hostname or ""
        if host in ("localhost", "127.0.0.1"):
            # The same loopback UI is reached under either name.
            twin = "127.0.0.1" if host == "localhost" else "localhost"
            return [ui, ui.replace(f"//{host}", f"//{twin}", 1)]
        return [ui]

    def dev_secret_in_force(self) -> bool:
        """True only in the embedded stack with neither an operator secret nor an identity provider.

        Setting AUTH_JWT_SECRET to the public dev secret configures no secret at all.
        """
        operator_secret = self.auth_jwt_secret not in (None, DEV_JWT_SECRET)
        identity_provider = self.auth_jwks_url is not None or self.auth_issuer is not None
        return self.embedded and not operator_secret and not identity_provider

    def jwt_secret(self) -> str | None:
        """The HS256 secret in force: the operator's, or the public dev secret while in force."""
        if self.dev_secret_in_force():
            return DEV_JWT_SECRET
        return self.auth_jwt_secret if self.auth_jwt_secret != DEV_JWT_SECRET else None

    def page_token_key(self) -> bytes:
        """The HMAC key of list page tokens; every replica with the same settings agrees on it.

        PAGE_TOKEN_SECRET, else one derived from the operator's AUTH_JWT_SECRET, else the
        embedded default; with only an identity provider and no PAGE_TOKEN_SECRET, a key of
        this process alone (a page token then works only on the replica that issued it).
        """
        if self.page_token_secret:
            return self.page_token_secret.encode()
        shared_secret = self.jwt_secret()
        if shared_secret is not None and not self.dev_secret_in_force():
            # Domain-separated, so a page token's MAC never doubles as anything a JWT needs.
            return hmac.new(shared_secret.encode(), b"page tokens", hashlib.sha256).digest()
        if self.embedded:
            return DEV_PAGE_TOKEN_SECRET.encode()
        return secrets.token_bytes(32)

    def exposure_refusal(self) -> str | None:
        """Why these settings must not serve at all, or None when they are safe to serve."""
        if self.dev_secret_in_force() and not is_loopback_host(self.api_host):
            return (
                f"Refusing to listen on API_HOST={self.api_host}: the public dev secret is in "
                "force, so anyone on the network could sign in as anyone. Set AUTH_JWT_SECRET "
                "or AUTH_JWKS_URL/AUTH_ISSUER/AUTH_AUDIENCE first, or leave API_HOST at 127.0.0.1."
            )
        return None


def read_settings() -> Settings:
    """Reads the settings from the environment; one that cannot be used stops the process.

    An operator then reads one line naming the setting and why, not a traceback.
    """
    try:
        return Settings()
    except ValidationError as err:
        reasons = []
        for error in err.errors():
            reason = error["msg"].removeprefix("Value error, ")
            field = ".".join(str(part) for part in error["loc"]).upper()
            reasons.append(f"{field}: {reason}" if field else reason)
        raise SystemExit("Settings refused: " + "; ".join(reasons)) from None


@lru_cache
def get_settings() -> Settings:
    """Gets the process settings, read once from the environment."""
    return read_settings()

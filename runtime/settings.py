"""Configuration from environment variables (DESIGN section 3)."""

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-secret-change-me-0123456789abcdef"


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

    api_port: int = 8000
    temporal_ui_url: str = "http://localhost:8233"
    embedded: bool = Field(
        default=False,
        description="True only under `make run`: enables the dev sign-in endpoint.",
    )
    temporal_rpc_timeout_seconds: float = 10.0
    worker_metrics_port: int | None = None
    # ~125 KiB each: a bound on the worker's memory, however many sessions sit paused.
    # An evicted session replays on its next message (+15 ms, +0.4 s at 1,000 events).
    worker_max_cached_workflows: int = 200
    log_format: Literal["json", "text"] = "json"

    def jwt_secret(self) -> str | None:
        """The HS256 secret in force: the configured one, or the dev secret when embedded."""
        if self.auth_jwt_secret:
            return self.auth_jwt_secret
        return DEV_JWT_SECRET if self.embedded else None


@lru_cache
def get_settings() -> Settings:
    """Gets the process settings, read once from the environment."""
    return Settings()

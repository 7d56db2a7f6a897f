"""One Temporal dev server, one database and one worker for the whole test session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.deps import Services
from api.main import create_app
from engine.client import register_search_attributes
from runtime.settings import Settings
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from store.migrate import migrate
from store.seed import seed_examples
from store.sops import SopCatalog
from tests.helpers import TEST_SECRET, start_dev_server
from worker import serving


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
        reconcile_interval_seconds=0.5,
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
    async with serving(temporal_client, settings, AuditLog(create_transaction_factory(engine))):
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

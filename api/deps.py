"""Named dependencies the routes take: each the one service it needs, the current user, roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.auth import TokenVerifier, User
from api.errors import ProblemCode, ProblemError
from api.gateway import SessionGateway
from api.oidc import ProviderDiscovery
from engine.client import connect
from runtime.logs import bind_log_context
from runtime.settings import Settings
from runtime.tracing import Tracing
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from store.sops import SopCatalog
from store.start_keys import SessionStartKeys


@dataclass
class Services:
    """The process-wide objects the API needs, created once at start-up."""

    settings: Settings
    client: Client
    gateway: SessionGateway
    catalog: SopCatalog
    audit_log: AuditLog
    start_keys: SessionStartKeys
    verifier: TokenVerifier
    engine: AsyncEngine
    discovery: ProviderDiscovery | None

    @classmethod
    async def create(cls, settings: Settings, tracing: Tracing | None = None) -> Services:
        """Connects lazily to Temporal, so the API starts (and says not ready) without it."""
        client = await connect(settings, lazy=True, tracing=tracing)
        engine = create_engine(settings.database_url)
        sessions = create_transaction_factory(engine)
        discovery = ProviderDiscovery(settings.auth_issuer) if settings.auth_issuer else None
        audit_log = AuditLog(sessions)
        return cls(
            settings=settings,
            client=client,
            gateway=SessionGateway(
                client,
                settings,
                audit_log,
                tracing.provider.get_tracer(__name__) if tracing is not None else None,
            ),
            catalog=SopCatalog(sessions),
            audit_log=audit_log,
            start_keys=SessionStartKeys(sessions),
            verifier=TokenVerifier(settings, discovery),
            engine=engine,
            discovery=discovery,
        )

    async def close(self) -> None:
        """Finishes the audit writes under way, then releases database connections."""
        await self.gateway.finish_audit_writes()
        await self.catalog.close()
        await self.engine.dispose()


async def get_services(request: Request) -> Services:
    """Gets the services created at start-up (async: FastAPI runs sync ones in a thread)."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings_in_force(services: ServicesDep) -> Settings:
    """Gets the settings the app was built with."""
    return services.settings


async def get_gateway(services: ServicesDep) -> SessionGateway:
    """Gets the gateway to the session workflows."""
    return services.gateway


async def get_catalog(services: ServicesDep) -> SopCatalog:
    """Gets the SOP catalog."""
    return services.catalog


async def get_audit_log(services: ServicesDep) -> AuditLog:
    """Gets the audit log."""
    return services.audit_log


async def get_start_keys(services: ServicesDep) -> SessionStartKeys:
    """Gets the record of which session each start's Idempotency-Key named."""
    return services.start_keys


async def get_database(services: ServicesDep) -> AsyncEngine:
    """Gets the app database's engine."""
    return services.engine


SettingsDep = Annotated[Settings, Depends(get_settings_in_force)]
GatewayDep = Annotated[SessionGateway, Depends(get_gateway)]
CatalogDep = Annotated[SopCatalog, Depends(get_catalog)]
AuditLogDep = Annotated[AuditLog, Depends(get_audit_log)]
StartKeysDep = Annotated[SessionStartKeys, Depends(get_start_keys)]
DatabaseDep = Annotated[AsyncEngine, Depends(get_database)]

bearer_credentials = HTTPBearer(auto_error=False, description="JWT with `sub` and `roles` claims")


async def get_current_user(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_credentials)],
) -> User:
    """Authenticates the caller from the bearer token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ProblemError(
            ProblemCode.UNAUTHORIZED,
            "Send `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = await services.verifier.verify(credentials.credentials)
    bind_log_context(sub=user.id)
    if not user.roles:
        raise ProblemError(
            ProblemCode.FORBIDDEN, "The token carries neither the worker nor the supervisor role."
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_supervisor(user: CurrentUser) -> User:
    """Lets only supervisors through."""
    if not user.is_supervisor:
        raise ProblemError(ProblemCode.FORBIDDEN, "This needs the supervisor role.")
    return user


Supervisor = Annotated[User, Depends(get_supervisor)]


async def get_worker(user: CurrentUser) -> User:
    """Lets only workers through: starting and changing a session are a worker's acts."""
    if not user.is_worker:
        raise ProblemError(ProblemCode.FORBIDDEN, "This needs the worker role.")
    return user


Worker = Annotated[User, Depends(get_worker)]

"""The FastAPI application: lifespan, routers, problem handlers, the web page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from api.deps import Services, ServicesDep
from api.errors import install_error_handlers, install_problem_schema, problems
from api.limits import BodySizeLimit
from api.metrics import keep_session_gauges_fresh
from api.middleware import install_observability, request_telemetry
from api.oidc import ProviderDiscovery
from api.routes import audit, codec, dev, health, sessions, sops, vocabulary
from api.schemas import OidcSignIn, PublicConfig
from runtime.logs import configure_logging
from runtime.settings import Settings, get_settings
from runtime.tracing import Tracing, tracing_from_environment

STATIC_DIR = Path(__file__).parent / "static"


async def _oidc_sign_in(
    settings: Settings, discovery: ProviderDiscovery | None
) -> OidcSignIn | None:
    if discovery is None or settings.auth_oidc_client_id is None:
        return None
    provider = await discovery.metadata()
    return OidcSignIn(
        issuer=provider.issuer,
        client_id=settings.auth_oidc_client_id,
        authorization_endpoint=provider.authorization_endpoint,
        token_endpoint=provider.token_endpoint,
        end_session_endpoint=provider.end_session_endpoint,
        scope=settings.auth_oidc_scopes,
        roles_claim=settings.auth_roles_claim,
    )


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """Builds the app; tests pass ready-made services, production creates them at start-up.

    Tracing, unless given, is what the `OTEL_*` variables ask for: by default none.
    """
    settings = settings or get_settings()
    tracing = tracing or tracing_from_environment("work-sessions-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        configure_logging(settings.log_format)
        created = await Services.create(settings, tracing)
        app.state.services = created
        gauges = asyncio.create_task(
            keep_session_gauges_fresh(
                created.client,
                interval=timedelta(seconds=settings.session_gauge_interval_seconds),
                rpc_timeout=timedelta(seconds=settings.temporal_rpc_timeout_seconds),
            )
        )
        try:
            yield
        finally:
            gauges.cancel()
            await created.close()

    # Swagger UI and ReDoc from the installed package: the docs work without internet.
    app = FastAPIOffline(
        title="Work sessions",
        version="1.0.0",
        description="Field workers execute SOPs step by step and record safety checks.",
        lifespan=lifespan,
        # Operation ids are the route functions' names: what a generated client calls.
        generate_unique_id_function=lambda route: route.name,
        telemetry=request_telemetry(tracing),
    )
    if services is not None:
        app.state.services = services
    app.add_middleware(BodySizeLimit)
    install_observability(app)
    install_error_handlers(app)
    install_problem_schema(app)
    app.include_router(health.router)
    app.include_router(sops.router)
    app.include_router(sessions.router)
    app.include_router(audit.router)
    app.include_router(vocabulary.router)
    if settings.dev_secret_in_force():
        app.include_router(dev.router)
    if settings.encryption_keys():
        app.include_router(codec.router)
        app.add_middleware(codec.CodecCORS, origins=settings.codec_origins())

    @app.get("/api/v1/config", tags=["config"], responses={503: problems()[503]})
    async def get_config(services: ServicesDep) -> PublicConfig:
        """Tells the web page how this deployment is set up and how to sign in."""
        return PublicConfig(
            embedded=settings.embedded,
            dev_sign_in=settings.dev_secret_in_force(),
            oidc=await _oidc_sign_in(settings, services.discovery),
            temporal_ui_url=settings.temporal_ui_url,
            temporal_namespace=settings.temporal_namespace,
        )

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        # For clients that ask here whatever the page's icon link says.
        return FileResponse(STATIC_DIR / "icon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    return app

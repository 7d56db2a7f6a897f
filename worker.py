"""The worker process: runs WorkSessionWorkflow and the audit activity.

settings → Temporal client → activity objects with their dependencies → Worker.run()
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.audit import AuditActivities
from engine.client import (
    ConnectionRefused,
    SearchAttributesMissing,
    connect_when_ready,
    ensure_search_attributes,
)
from runtime.logs import configure_logging
from runtime.settings import Settings, get_settings
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from workflows.work_session import WorkSessionWorkflow

log = logging.getLogger("worker")


def build_worker(client: Client, settings: Settings, audit_log: AuditLog) -> Worker:
    """Builds the worker for the session task queue."""
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[WorkSessionWorkflow],
        activities=[AuditActivities(audit_log).append_audit_events],
        max_cached_workflows=settings.worker_max_cached_workflows,
        # A crashed worker's sessions move to another worker after this, not the default 10 s.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
    )


async def main() -> None:
    """Runs the worker until SIGINT or SIGTERM, then shuts down gracefully."""
    settings = get_settings()
    configure_logging(settings.log_format)
    if settings.worker_metrics_port:
        Runtime.set_default(
            Runtime(
                telemetry=TelemetryConfig(
                    metrics=PrometheusConfig(
                        bind_address=f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"
                    )
                )
            )
        )
    try:
        client = await connect_when_ready(settings)
        await ensure_search_attributes(client, settings.temporal_namespace)
    except (ConnectionRefused, SearchAttributesMissing) as err:
        log.error("worker not started: %s", err)
        raise SystemExit(1) from None
    engine = create_engine(settings.database_url)
    worker = build_worker(client, settings, AuditLog(create_transaction_factory(engine)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        log.info("worker polling task queue %s", settings.temporal_task_queue)
        await stop.wait()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())

"""The worker process: runs WorkSessionWorkflow and the audit activity.

settings → Temporal client → activity objects with their dependencies → Worker.run()
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import NoReturn

import uvloop
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.audit import AUDIT_LAG_BUCKETS_SECONDS, LAG_METRIC, AuditActivities, AuditSink
from activities.cancellation import CancelRequests
from engine.client import (
    ConnectionRefused,
    SearchAttributesMissing,
    connect_when_ready,
    ensure_search_attributes,
)
from engine.reconcile import EndingsReconciler
from engine.workflow_code import LeanSandboxRunner, compile_workflow_modules_once
from runtime.logs import configure_logging
from runtime.settings import Settings, get_settings
from runtime.tracing import tracing_from_environment
from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from workflows.work_session import WorkSessionWorkflow

log = logging.getLogger("worker")


def build_worker(client: Client, settings: Settings, audit_log: AuditSink) -> Worker:
    """Builds the worker for the session task queue."""
    # Each cached session would otherwise hold its own copy of the workflow's code.
    compile_workflow_modules_once([WorkSessionWorkflow])
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[WorkSessionWorkflow],
        workflow_runner=LeanSandboxRunner.for_converter(client.data_converter),
        activities=[
            AuditActivities(audit_log).append_audit_events,
            CancelRequests(client).identify_cancel_request,
        ],
        max_cached_workflows=settings.worker_max_cached_workflows,
        # A crashed worker's sessions move to another worker after this, not the default 10 s.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
    )


@asynccontextmanager
async def serving(client: Client, settings: Settings, audit_log: AuditLog) -> AsyncIterator[None]:
    """Runs the worker and the reconciler of endings done in Temporal until the block ends."""
    reconciler = EndingsReconciler(
        client,
        settings.temporal_task_queue,
        audit_log,
        timedelta(seconds=settings.reconcile_interval_seconds),
    )
    stop = asyncio.Event()
    async with build_worker(client, settings, audit_log):
        sweeping = asyncio.create_task(reconciler.run(stop))
        try:
            yield
        finally:
            stop.set()
            await sweeping


def _refuse_to_start(reason: str) -> NoReturn:
    log.error("worker not started: %s", reason)
    logging.shutdown()
    # A process holding a Temporal client can abort while the interpreter finalizes
    # (temporalio/sdk-python#300): leave at once, with the exit code that says why.
    os._exit(1)


async def main() -> None:
    """Runs the worker until SIGINT or SIGTERM, then shuts down gracefully."""
    settings = get_settings()
    configure_logging(settings.log_format)
    if settings.worker_metrics_port:
        Runtime.set_default(
            Runtime(
                telemetry=TelemetryConfig(
                    metrics=PrometheusConfig(
                        bind_address=f"{settings.worker_metrics_host}:{settings.worker_metrics_port}",
                        # The SDK's default buckets (50, 100, 500, ...) suit milliseconds;
                        # the lag is in seconds and its bound is a few of them.
                        histogram_bucket_overrides={LAG_METRIC: AUDIT_LAG_BUCKETS_SECONDS},
                    )
                )
            )
        )
    try:
        client = await connect_when_ready(
            settings, tracing=tracing_from_environment("work-sessions-worker")
        )
        await ensure_search_attributes(client, settings.temporal_namespace)
    except (ConnectionRefused, SearchAttributesMissing) as err:
        _refuse_to_start(str(err))
    except RPCError as err:  # e.g. no such namespace, or no right to read it
        _refuse_to_start(
            f"Temporal at {settings.temporal_address} answered {err.status.name} for the "
            f"namespace {settings.temporal_namespace}: {err.message}"
        )
    engine = create_engine(settings.database_url)
    audit_log = AuditLog(create_transaction_factory(engine))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serving(client, settings, audit_log):
        log.info("worker polling task queue %s", settings.temporal_task_queue)
        await stop.wait()
    await engine.dispose()


if __name__ == "__main__":
    # libuv's loop: about a tenth less worker CPU per operation than asyncio's own
    # (docs/performance.md); the API runs on it too, through uvicorn.
    uvloop.run(main())

"""Workers of one workflow class on a task queue of their own, which no reconciler sweeps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.audit import AuditActivities, AuditSink
from activities.cancellation import CancelRequests


@asynccontextmanager
async def serving_alone(
    client: Client,
    workflow: type,
    audit_log: AuditSink,
    *,
    queue_prefix: str,
    identifies_cancel_requests: bool = False,
) -> AsyncIterator[str]:
    """Runs a worker of `workflow` writing to `audit_log`; yields its task queue."""
    task_queue = f"{queue_prefix}-{uuid.uuid4().hex[:8]}"
    activities: list[Callable[..., Any]] = [AuditActivities(audit_log).append_audit_events]
    if identifies_cancel_requests:
        activities.append(CancelRequests(client).identify_cancel_request)
    async with Worker(client, task_queue=task_queue, workflows=[workflow], activities=activities):
        yield task_queue

"""Command line: `python -m engine.register` prepares the Temporal namespace (idempotent).

Creates the configured namespace with a retention period unless it exists, then
registers the session search attributes on it unless visibility already knows them
(so it needs no operator rights where they exist, as on Temporal Cloud after `tcld`).
Run once per deployment, e.g. as the compose file's one-shot `temporal-register` job;
running it again changes nothing. The connection is the SDK's (TEMPORAL_* variables
or a TOML profile), like the API's and the worker's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from dataclasses import dataclass
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from engine.client import (
    ConnectionRefused,
    SearchAttributesMissing,
    connect_when_ready,
    ensure_search_attributes,
)
from runtime.logs import configure_logging
from runtime.settings import Settings, get_settings

log = logging.getLogger("engine.register")

DEFAULT_RETENTION_DAYS = 30


@dataclass(frozen=True)
class Prepared:
    """What `prepare` found and did."""

    created: bool
    added: list[str]
    retention: timedelta


async def ensure_namespace(client: Client, namespace: str, retention: timedelta) -> bool:
    """Creates the namespace with this retention unless it exists; True if it created it."""
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace), retry=True
        )
        return False
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    period = Duration()
    period.FromTimedelta(retention)
    try:
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=namespace, workflow_execution_retention_period=period
            ),
            retry=True,
        )
    except RPCError as conflict:
        # Another process registering at the same moment is success too.
        if conflict.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        return False
    return True


async def _retention(client: Client, namespace: str) -> timedelta:
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace), retry=True
    )
    return described.config.workflow_execution_retention_ttl.ToTimedelta()


async def prepare(
    settings: Settings, retention: timedelta, timeout_seconds: float = 120.0
) -> Prepared:
    """Waits for Temporal, ensures the namespace, registers the search attributes."""
    client = await connect_when_ready(settings, timeout_seconds)
    namespace = settings.temporal_namespace
    created = await ensure_namespace(client, namespace, retention)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    while True:
        try:
            added = await ensure_search_attributes(client, namespace)
            return Prepared(created, added, await _retention(client, namespace))
        except RPCError as err:
            # A namespace just created is unknown to the frontend until its cache refreshes.
            if err.status != RPCStatusCode.NOT_FOUND or loop.time() > deadline:
                raise
            log.info("namespace %s not visible yet: %s", namespace, err.message)
            await asyncio.sleep(1.0)


def main() -> None:
    """Parses the command line and prepares the namespace named by TEMPORAL_NAMESPACE."""
    parser = argparse.ArgumentParser(prog="python -m engine.register", description=__doc__)
    parser.add_argument(
        "--retention-days",
        type=int,
        default=DEFAULT_RETENTION_DAYS,
        help="retention of closed sessions' histories when the namespace is created "
        f"(default {DEFAULT_RETENTION_DAYS}); an existing namespace keeps its own",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the server (120)"
    )
    args = parser.parse_args()
    settings = get_settings()
    configure_logging(settings.log_format)

    try:
        done = asyncio.run(prepare(settings, timedelta(days=args.retention_days), args.timeout))
    except (ConnectionRefused, SearchAttributesMissing) as err:
        log.error("%s", err)
        logging.shutdown()
        os._exit(1)
    log.info(
        "namespace %s %s (retention %s days); search attributes added: %s",
        settings.temporal_namespace,
        "created" if done.created else "already there",
        done.retention.days,
        ", ".join(done.added) or "none",
    )
    logging.shutdown()
    # A short-lived process holding a Temporal client can abort while the interpreter
    # finalizes (temporalio/sdk-python#300), which would fail a compose one-shot job
    # that has done its work. Nothing is left to clean up, so leave at once.
    os._exit(0)


if __name__ == "__main__":
    main()

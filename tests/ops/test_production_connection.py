"""The production commands through a real TLS front: server TLS, mutual TLS, an API key, a profile.

Debian's nginx stands in front of the test session's dev server with a CA and certificates
made here. Each deployment runs the README's commands as processes of their own,
configured only by the Temporal SDK's variables (or a TOML profile), and is driven over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.api.workflowservice.v1 import CountWorkflowExecutionsRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from devstack.processes import ManagedProcess, free_port
from devstack.stack import api_process, wait_until
from engine.client import ensure_search_attributes, register_search_attributes
from engine.register import ensure_namespace
from engine.sessions import is_paused_by_operator
from tests.helpers import TEST_SECRET, assert_eventually, bearer
from tests.helpers.tls_front import NGINX, SERVER_NAME, TlsFront, start_front

pytestmark = pytest.mark.slow

API_KEY = "plant-api-key-" + uuid.uuid4().hex
SOP_ID = "loto-press-7"
# Generous: a Python process starts slowly on a busy machine.
PROCESS_START_SECONDS = 30.0
COMMAND_SECONDS = 90.0


@pytest.fixture(scope="module")
def front(temporal_client: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFront]:
    """nginx with its three doors in front of the session's dev server."""
    if not Path(NGINX).exists():
        reason = f"{NGINX} is missing: install it with `apt-get install nginx-light`"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("tls-front")
    running = start_front(folder, temporal_client.service_client.config.target_host, API_KEY)
    yield running
    running.stop()


# Namespaces by the test that uses them. `python -m engine.register` adds the search
# attributes to those of the tests that run it; an operator (as `tcld` on Temporal
# Cloud) to "cloud"; "bare" never gets them.
_NAMESPACE_USERS = ("tls", "mtls", "profile", "cloud", "bare", "retiring")


@pytest.fixture(scope="module")
async def namespaces(temporal_client: Client) -> dict[str, str]:
    """Namespaces made before the product connects, at once: the wait for the frontend to
    know a new namespace is paid once."""
    made = {user: f"{user}-{uuid.uuid4().hex[:8]}" for user in _NAMESPACE_USERS}
    for namespace in made.values():
        await ensure_namespace(temporal_client, namespace, timedelta(days=1))
    await asyncio.gather(*(wait_for_namespace(temporal_client, n) for n in made.values()))
    await register_search_attributes(temporal_client, made["cloud"])
    return made


# The SDK's connection variables; a product process sees only those a test gives it.
_CONNECTION_VARIABLES = [
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_SERVER_NAME",
    *(
        f"TEMPORAL_TLS_{part}_{form}"
        for part in ("SERVER_CA_CERT", "CLIENT_CERT", "CLIENT_KEY")
        for form in ("PATH", "DATA")
    ),
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The app database every deployment here shares, made by `python -m store migrate`."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('app-db')}/app.db"
    done = run_command({"DATABASE_URL": url}, "-m", "store", "migrate")
    assert done.returncode == 0, done.stdout + done.stderr
    return url


@dataclass(frozen=True)
class Site:
    """Where one deployment keeps its logs and profile, and the database it uses."""

    folder: Path
    database_url: str

    def env(self, connection: Mapping[str, str]) -> dict[str, str]:
        """The environment of every product process: its database, secret and queue, and
        how to reach Temporal, nothing else (an empty variable counts as unset)."""
        return {
            "DATABASE_URL": self.database_url,
            "AUTH_JWT_SECRET": TEST_SECRET,
            "TEMPORAL_TASK_QUEUE": f"prod-{self.folder.name}",
            "LOG_FORMAT": "text",
            # No profile from the machine's own ~/.config/temporalio either.
            "XDG_CONFIG_HOME": str(self.folder),
            **dict.fromkeys(_CONNECTION_VARIABLES, ""),
            **connection,
        }


@pytest.fixture
def site(tmp_path: Path, database: str) -> Site:
    return Site(tmp_path, database)


def run_command(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Runs one of the README's one-shot commands as its own process."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )


@dataclass
class Deployment:
    """A worker and an API, each a process of its own, and an HTTP client to the API."""

    worker: ManagedProcess
    api: ManagedProcess
    http: httpx.AsyncClient


@asynccontextmanager
async def deployed(
    site: Site, connection: Mapping[str, str], *, ready: bool = True
) -> AsyncIterator[Deployment]:
    """Starts `python worker.py` and `uvicorn --factory api.main:create_app`; stops both."""
    env = site.env(connection)
    worker = ManagedProcess(
        "worker", [sys.executable, "worker.py"], env, site.folder / "worker.log"
    ).start()
    port = free_port()
    api = api_process("api", env, "127.0.0.1", port, site.folder / "api.log").start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deployment = Deployment(worker, api, http)
            if ready:
                await _wait_until_serving(deployment)
            yield deployment
    finally:
        api.stop()
        worker.stop()


async def _wait_until_serving(deployment: Deployment) -> None:
    async def serving() -> bool:
        for process in (deployment.worker, deployment.api):
            assert process.running, f"{process.name} exited:\n{process.log_tail()}"
        try:
            ready = (await deployment.http.get("/readyz")).status_code == 200
        except httpx.HTTPError:
            return False
        return ready and "worker polling task queue" in deployment.worker.log_tail()

    await wait_until(serving, "the worker polls and the API is ready", timeout=60, interval=0.2)


async def registered(site: Site, connection: Mapping[str, str]) -> None:
    """`python -m engine.register`, as a deployment runs it (the database is migrated)."""
    env = site.env(connection)
    done = await asyncio.to_thread(run_command, env, "-m", "engine.register", "--timeout", "30")
    assert done.returncode == 0, done.stdout + done.stderr


async def registered_deployed_and_driven(site: Site, connection: Mapping[str, str]) -> Deployment:
    """Registers, deploys and drives a session as the README's production commands do;
    returns the deployment, stopped, its logs still there to read."""
    await registered(site, connection)
    async with deployed(site, connection) as deployment:
        await drive_a_session(deployment.http)
    return deployment


async def drive_a_session(http: httpx.AsyncClient) -> None:
    """Start, check, pause, resume, list and audit, as a worker and a supervisor would."""
    worker = f"tls-{uuid.uuid4().hex[:8]}"
    me = bearer(worker)
    started = await http.post("/api/v1/sessions", json={"sop_id": SOP_ID}, headers=me)
    assert started.status_code == 201, started.text
    session = f"/api/v1/sessions/{started.json()['id']}"
    checked = await http.post(
        f"{session}/checks", json={"check_id": "affected-notified", "passed": True}, headers=me
    )
    assert checked.status_code == 201, checked.text
    paused = await http.post(f"{session}/pause", json={"reason": "TLS break"}, headers=me)
    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED", paused.text
    resumed = await http.post(f"{session}/resume", headers=me)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "IN_PROGRESS"
    assert [c["check_id"] for c in resumed.json()["safety_checks"]] == ["affected-notified"]

    async def listed() -> None:
        listing = await http.get("/api/v1/sessions", headers=me)
        assert listing.status_code == 200, listing.text
        assert [(s["id"], s["status"]) for s in listing.json()["items"]] == [
            (started.json()["id"], "IN_PROGRESS")
        ]

    async def audited() -> None:
        audit = await http.get(f"{session}/audit", headers=bearer("sup", "supervisor"))
        assert audit.status_code == 200, audit.text
        assert [event["type"] for event in audit.json()["items"]] == [
            "session_started",
            "check_recorded",
            "session_paused",
            "session_resumed",
        ]

    await assert_eventually(listed)
    await assert_eventually(audited)


async def wait_for_namespace(admin: Client, namespace: str) -> None:
    """Waits until the frontend knows a namespace just created (its cache refreshes)."""

    async def visible() -> None:
        try:
            await admin.workflow_service.count_workflow_executions(
                CountWorkflowExecutionsRequest(namespace=namespace)
            )
        except RPCError as err:
            raise AssertionError(err) from err

    await assert_eventually(visible, timeout=30, interval=0.5)


async def test_server_tls_with_the_sdk_variables(
    front: TlsFront, namespaces: dict[str, str], site: Site
) -> None:
    connection = {
        "TEMPORAL_ADDRESS": front.address("tls"),
        "TEMPORAL_NAMESPACE": namespaces["tls"],
        "TEMPORAL_TLS": "true",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(front.certificates.ca),
    }
    await registered_deployed_and_driven(site, connection)


async def test_connections_retired_every_few_requests_fail_no_command(
    front: TlsFront, namespaces: dict[str, str], site: Site
) -> None:
    """A request that meets its connection's GOAWAY is sent again on a new connection."""
    connection = {
        "TEMPORAL_ADDRESS": front.address("retiring"),
        "TEMPORAL_NAMESPACE": namespaces["retiring"],
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(front.certificates.ca),
    }
    deployment = await registered_deployed_and_driven(site, connection)
    assert "temporal unavailable" not in deployment.api.log_tail(1000)
    assert "h2 protocol error" not in deployment.worker.log_tail(1000)


async def test_the_products_own_calls_ride_out_retired_connections(
    front: TlsFront, namespaces: dict[str, str]
) -> None:
    """Namespace, search attribute and execution calls, many at once on one connection."""
    namespace = namespaces["retiring"]
    client = await Client.connect(
        front.address("retiring"),
        namespace=namespace,
        tls=TLSConfig(server_root_ca_cert=front.certificates.ca.read_bytes()),
    )

    async def prepare_and_look() -> None:
        for _ in range(5):
            assert not await ensure_namespace(client, namespace, timedelta(days=1))
            await ensure_search_attributes(client, namespace)
            with pytest.raises(RPCError) as unknown:
                await is_paused_by_operator(client, "no-such-session", timedelta(seconds=10))
            assert unknown.value.status == RPCStatusCode.NOT_FOUND, unknown.value

    await asyncio.gather(*(prepare_and_look() for _ in range(8)))


async def test_mutual_tls_with_the_sdk_variables(
    front: TlsFront, namespaces: dict[str, str], site: Site
) -> None:
    connection = {
        # By IP address: the certificate is checked against the server name given instead.
        "TEMPORAL_ADDRESS": f"127.0.0.1:{front.ports['mtls']}",
        "TEMPORAL_NAMESPACE": namespaces["mtls"],
        "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(front.certificates.ca),
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(front.certificates.client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(front.certificates.client_key),
    }
    await registered_deployed_and_driven(site, connection)


async def test_an_api_key_where_the_operator_service_is_refused(
    front: TlsFront, namespaces: dict[str, str], site: Site
) -> None:
    connection = {
        "TEMPORAL_ADDRESS": front.address("api_key"),
        "TEMPORAL_NAMESPACE": namespaces["cloud"],
        "TEMPORAL_API_KEY": API_KEY,
        "TEMPORAL_TLS_SERVER_CA_CERT_DATA": front.certificates.ca.read_text(),
    }
    await registered_deployed_and_driven(site, connection)


async def test_a_toml_profile_alone(
    front: TlsFront, namespaces: dict[str, str], site: Site
) -> None:
    profile = site.folder / "temporal.toml"
    profile.write_text(
        f"""
[profile.default]
address = "localhost:1"

[profile.plant]
address = "{front.address("mtls")}"
namespace = "{namespaces["profile"]}"

[profile.plant.tls]
server_ca_cert_path = "{front.certificates.ca}"
client_cert_path = "{front.certificates.client_cert}"
client_key_path = "{front.certificates.client_key}"
"""
    )
    connection = {"TEMPORAL_CONFIG_FILE": str(profile), "TEMPORAL_PROFILE": "plant"}
    await registered_deployed_and_driven(site, connection)


@pytest.mark.parametrize(
    ("door", "credentials", "refusal"),
    [
        ("mtls", {}, "a client certificate signed by the plant CA is required"),
        ("api_key", {"TEMPORAL_API_KEY": "not-the-key"}, "a valid API key is required"),
    ],
    ids=["missing-client-certificate", "wrong-api-key"],
)
async def test_a_refused_connection_is_logged_and_the_api_is_not_ready(
    front: TlsFront, site: Site, door: str, credentials: dict[str, str], refusal: str
) -> None:
    connection = {
        "TEMPORAL_ADDRESS": front.address(door),
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(front.certificates.ca),
        **credentials,
    }
    async with deployed(site, connection, ready=False) as deployment:

        async def attempts_logged() -> list[str]:
            lines = deployment.worker.log_tail(200).splitlines()
            attempts = [line for line in lines if "cannot connect to Temporal" in line]
            assert attempts, "no connection attempt logged yet"
            return attempts

        # Its very first attempt is logged, naming the address and the refusal.
        first = (await assert_eventually(attempts_logged, PROCESS_START_SECONDS))[0]
        assert front.address(door) in first and refusal in first, first

        async def not_ready() -> bool:
            try:
                response = await deployment.http.get("/readyz")
            except httpx.HTTPError:
                return False
            assert response.status_code in (200, 503)
            return response.status_code == 503

        await wait_until(not_ready, "the API answers /readyz", timeout=30, interval=0.2)
        body = (await deployment.http.get("/readyz")).json()
        assert body["failing"] == ["temporal"]
        assert API_KEY not in str(body) and "not-the-key" not in str(body)
        start = await deployment.http.post(
            "/api/v1/sessions", json={"sop_id": SOP_ID}, headers=bearer("refused")
        )
        assert start.status_code == 503, start.text


async def test_missing_search_attributes_stop_a_worker_that_may_not_add_them(
    front: TlsFront, namespaces: dict[str, str], site: Site
) -> None:
    namespace = namespaces["bare"]
    connection = {
        "TEMPORAL_ADDRESS": front.address("api_key"),
        "TEMPORAL_NAMESPACE": namespace,
        "TEMPORAL_API_KEY": API_KEY,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(front.certificates.ca),
    }
    tcld = (
        f"tcld namespace search-attributes add --namespace {namespace} "
        "--search-attribute WorkerId=Keyword --search-attribute SessionStatus=Keyword "
        "--search-attribute SopId=Keyword --search-attribute SopTitle=Text "
        "--search-attribute FailedChecks=Int"
    )

    register = await asyncio.to_thread(run_command, site.env(connection), "-m", "engine.register")
    assert register.returncode == 1
    assert tcld in register.stderr

    log = await worker_that_stops(site, connection)
    assert tcld in log and "worker not started" in log


async def test_a_namespace_that_does_not_exist_stops_the_worker_naming_it(
    front: TlsFront, site: Site
) -> None:
    connection = {
        "TEMPORAL_ADDRESS": front.address("tls"),
        "TEMPORAL_NAMESPACE": "work-sessions-nowhere",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(front.certificates.ca),
    }
    log = await worker_that_stops(site, connection)
    assert "worker not started" in log
    assert "NOT_FOUND for the namespace work-sessions-nowhere" in log


async def worker_that_stops(site: Site, connection: Mapping[str, str]) -> str:
    """Runs `python worker.py`, expects it to stop with exit code 1; returns its log."""
    worker = ManagedProcess(
        "worker", [sys.executable, "worker.py"], site.env(connection), site.folder / "worker.log"
    ).start()
    try:
        assert worker.process is not None
        assert await asyncio.to_thread(worker.process.wait, 60) == 1, worker.log_tail()
    finally:
        worker.stop()
    return worker.log_tail()

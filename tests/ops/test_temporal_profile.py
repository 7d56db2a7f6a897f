"""Where the Temporal connection comes from, and what the API says when it cannot use it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from temporalio.client import Client

from api.deps import Services
from api.main import create_app
from devstack.processes import ROOT
from engine.client import connect
from runtime.settings import Settings

PROFILES = """
[profile.default]
address = "localhost:1"

[profile.plant]
address = "temporal.plant.test:7233"
namespace = "plant-sessions"
"""


@pytest.fixture
def profile_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "temporal.toml"
    path.write_text(PROFILES)
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(path))
    return path


def test_the_chosen_profile_names_the_address_and_namespace(
    profile_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().temporal_address == "localhost:1"
    monkeypatch.setenv("TEMPORAL_PROFILE", "plant")
    settings = Settings()
    assert (settings.temporal_address, settings.temporal_namespace) == (
        "temporal.plant.test:7233",
        "plant-sessions",
    )


def test_the_variables_win_over_the_profile(
    profile_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_PROFILE", "plant")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "10.1.2.3:7233")
    settings = Settings()
    assert (settings.temporal_address, settings.temporal_namespace) == (
        "10.1.2.3:7233",
        "plant-sessions",
    )
    assert Settings(temporal_namespace="other").temporal_namespace == "other"


def test_without_any_temporal_variable_the_embedded_defaults_hold(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in (
        "XDG_CONFIG_HOME",
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_CONFIG_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.temporal_address, settings.temporal_namespace) == (
        "localhost:7233",
        "default",
    )


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("TEMPORAL_CONFIG_FILE", "/etc/temporal/nowhere.toml", "/etc/temporal/nowhere.toml"),
        ("TEMPORAL_PROFILE", "staging", "staging"),
    ],
)
def test_a_profile_that_cannot_be_found_stops_the_start(
    profile_file: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=named):
        Settings()


async def test_empty_connection_variables_count_as_unset(
    temporal_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compose passes `${TEMPORAL_API_KEY:-}` through; the SDK alone would turn it into TLS.
    for name in ("TEMPORAL_TLS", "TEMPORAL_API_KEY", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"):
        monkeypatch.setenv(name, "")
    settings = Settings(temporal_address=temporal_client.service_client.config.target_host)
    client = await connect(settings)
    assert (await client.count_workflows()).count >= 0


async def test_an_unreadable_certificate_is_named_at_connect(
    temporal_client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "client.pem"
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(missing))
    settings = Settings(temporal_address=temporal_client.service_client.config.target_host)
    with pytest.raises(ValueError, match=str(missing)):
        await connect(settings)


async def test_the_api_is_not_ready_for_a_namespace_it_cannot_use(settings: Settings) -> None:
    elsewhere = settings.model_copy(update={"temporal_namespace": "work-sessions-nowhere"})
    services = await Services.create(elsewhere)
    transport = httpx.ASGITransport(app=create_app(elsewhere, services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            ready = await api.get("/readyz")
    finally:
        await services.close()
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["temporal"]


@pytest.mark.parametrize(
    "command",
    [
        ["worker.py"],
        ["-m", "engine.register"],
        ["-m", "store", "migrate"],
        ["-m", "uvicorn", "--factory", "api.main:create_app", "--port", "0"],
        ["embedded.py"],
    ],
    ids=["worker", "register", "migrate", "api", "make-run"],
)
def test_a_setting_that_cannot_be_used_stops_each_command_with_one_line_naming_it(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "nowhere.toml"
    environment = {
        **os.environ,
        "TEMPORAL_CONFIG_FILE": str(missing),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/app.db",
    }

    stopped = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert stopped.returncode != 0
    said = stopped.stderr.strip().splitlines()
    assert "Traceback" not in stopped.stderr, stopped.stderr
    assert said[-1] == f"Settings refused: TEMPORAL_CONFIG_FILE={missing}: no such file.", said

"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine here)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy import make_url

from devstack.stack import TEMPORAL_BIN
from runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()

APP_SERVICES = ("api", "worker", "migrate", "temporal-register")
ONE_SHOT_JOBS = ("temporal-schema", "temporal-register", "migrate")
SETTINGS_NAMES = {name.upper() for name in Settings.model_fields}
# DESIGN section 3: the names every deployment configures.
DESIGN_NAMES = {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_TASK_QUEUE",
    "DATABASE_URL",
    "AUTH_JWT_SECRET",
    "AUTH_JWKS_URL",
    "AUTH_ISSUER",
    "AUTH_AUDIENCE",
    "API_PORT",
}
# What an operator's .env holds in the test: the required values, nothing optional.
DOT_ENV = {
    "TEMPORAL_DB_PASSWORD": "temporal-db-pw",
    "APP_DB_PASSWORD": "app-db-pw",
    "AUTH_JWT_SECRET": "a-secret-of-at-least-thirty-two-bytes!!",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`, and `$$` for a literal `$`."""
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, kind, argument = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name} is required: {argument}")
        return argument if kind == "-" else ""

    parts = value.split("$$")
    return "$".join(_VARIABLE.sub(substitute, part) for part in parts)


def environment(service: str, env: Mapping[str, str] = DOT_ENV) -> dict[str, str | None]:
    """A service's container environment; None where compose passes the host's value through."""
    raw = SERVICES[service].get("environment") or {}
    assert isinstance(raw, dict), f"{service}: use the mapping form for environment"
    return {
        name: (env.get(name) if value is None else str(interpolate(value, env)))
        for name, value in raw.items()
    }


def image_tag(image: str) -> str:
    name, _, tag = image.rpartition(":")
    assert name, f"{image} has no tag"
    return tag


def test_compose_has_every_service_of_the_deployment() -> None:
    assert set(SERVICES) >= {
        "temporal-postgresql",
        "temporal-schema",
        "temporal",
        "temporal-register",
        "temporal-ui",
        "app-postgresql",
        "migrate",
        "api",
        "worker",
        "gateway",
    }


def test_every_image_is_pinned_by_version() -> None:
    for name, service in SERVICES.items():
        image = interpolate(service["image"], DOT_ENV)
        tag = image_tag(image)
        # A full release (PostgreSQL numbers theirs major.minor), never a moving tag.
        assert re.match(r"^\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$", tag), f"{name}: {image}"
    base = re.search(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert base is not None
    assert re.match(r"^\d+\.\d+\.\d+-", image_tag(base.group(1))), base.group(1)


def test_temporal_images_match_the_dev_server_the_tests_run() -> None:
    version = subprocess.run(
        [str(TEMPORAL_BIN), "--version"], capture_output=True, text=True, check=True
    ).stdout
    dev = re.search(r"Server (\d+\.\d+)\.\d+, UI (\d+\.\d+)\.\d+", version)
    assert dev is not None, version
    server, ui = dev.groups()
    for name in ("temporal", "temporal-schema", "temporal-cli"):
        assert image_tag(SERVICES[name]["image"]).startswith(f"{server}."), name
    assert image_tag(SERVICES["temporal-ui"]["image"]).startswith(f"{ui}.")


def test_app_services_are_configured_only_through_the_settings_names() -> None:
    for name in APP_SERVICES:
        unknown = set(environment(name)) - SETTINGS_NAMES
        assert not unknown, f"{name} sets {unknown}, which the settings class does not read"
        assert "EMBEDDED" not in environment(name), "the dev sign-in must stay off"
    assert set(environment("api")) >= DESIGN_NAMES
    assert set(environment("worker")) >= DESIGN_NAMES - {"API_PORT"} - {
        name for name in DESIGN_NAMES if name.startswith("AUTH_")
    }


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_environment_parses_into_settings(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SETTINGS_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment(service).items():
        if value is not None:
            monkeypatch.setenv(name, value)
    settings = Settings()

    assert not settings.embedded
    assert settings.log_format == "json"
    database = make_url(settings.database_url)
    assert database.drivername == "postgresql+asyncpg"
    assert database.host in SERVICES and database.port == 5432
    assert database.password == DOT_ENV["APP_DB_PASSWORD"]
    assert SERVICES[database.host]["image"].startswith("postgres:")
    host, _, port = settings.temporal_address.rpartition(":")
    assert SERVICES[host]["image"].startswith("temporalio/server:")
    assert port == "7233"
    if service == "api":
        assert settings.jwt_secret() == DOT_ENV["AUTH_JWT_SECRET"]
        assert settings.auth_issuer is None and settings.auth_audience is None


def test_ports_agree_with_the_settings() -> None:
    api = environment("api")
    assert [str(interpolate(p, DOT_ENV)) for p in SERVICES["api"]["expose"]] == [api["API_PORT"]]
    assert "$API_PORT" in " ".join(SERVICES["api"]["command"])
    assert "${API_PORT}" in " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert environment("gateway")["API_PORT"] == api["API_PORT"]
    template = (ROOT / "deploy/gateway/default.conf.template").read_text()
    assert "http://api:${API_PORT}" in template

    worker = environment("worker")
    assert SERVICES["worker"]["expose"] == [worker["WORKER_METRICS_PORT"]]
    assert "${WORKER_METRICS_PORT}/metrics" in " ".join(SERVICES["worker"]["healthcheck"]["test"])

    ui_url = urlsplit(api["TEMPORAL_UI_URL"] or "")
    ui_ports = [str(interpolate(p, DOT_ENV)) for p in SERVICES["temporal-ui"]["ports"]]
    assert ui_ports == [f"127.0.0.1:{ui_url.port}:8080"]
    assert environment("temporal-ui")["TEMPORAL_DEFAULT_NAMESPACE"] == api["TEMPORAL_NAMESPACE"]


def test_api_and_worker_scale_out() -> None:
    for name in ("api", "worker"):
        service = SERVICES[name]
        # A fixed container name or host port would make a second replica fail to start.
        assert "container_name" not in service and "ports" not in service, name
        assert "volumes" not in service, f"{name} must keep no state of its own"
    assert SERVICES["gateway"]["ports"] and "api" in SERVICES["gateway"]["depends_on"]


def test_long_running_services_have_health_checks() -> None:
    for name, service in SERVICES.items():
        if name in ONE_SHOT_JOBS or service.get("profiles"):
            continue
        assert "healthcheck" in service, name
        assert service["restart"] == "unless-stopped", name


def test_setup_jobs_finish_before_what_needs_them() -> None:
    def waits_for(service: str, job: str, condition: str) -> bool:
        return bool(SERVICES[service]["depends_on"][job]["condition"] == condition)

    done = "service_completed_successfully"
    assert waits_for("temporal", "temporal-schema", done)
    for app in ("api", "worker"):
        assert waits_for(app, "migrate", done) and waits_for(app, "temporal-register", done)
    assert waits_for("temporal-register", "temporal", "service_healthy")
    assert waits_for("migrate", "app-postgresql", "service_healthy")
    assert SERVICES["migrate"]["command"] == ["python", "-m", "store", "migrate"]
    assert SERVICES["temporal-register"]["command"][:3] == ["python", "-m", "engine.register"]
    for job in ONE_SHOT_JOBS:
        assert str(SERVICES[job]["restart"]).startswith("on-failure"), job


def test_databases_keep_their_data_in_volumes() -> None:
    for name in ("temporal-postgresql", "app-postgresql"):
        volume = SERVICES[name]["volumes"][0].split(":")[0]
        assert volume in COMPOSE["volumes"], name


def test_files_the_compose_file_and_dockerfile_use_exist() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"
    for source in re.findall(r"^COPY (\S+)", DOCKERFILE, re.MULTILINE):
        assert (ROOT / source).exists(), source
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    copied = set(re.findall(r"^COPY (\S+)", DOCKERFILE, re.MULTILINE))
    for pattern in packages["packages"]["find"]["include"]:
        assert pattern.rstrip("*") in copied, f"the image lacks the {pattern} package"
    assert "worker.py" in copied


def test_required_variables_are_in_the_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = (ROOT / "deploy/env.example").read_text()
    for name in required | {"AUTH_JWT_SECRET", "AUTH_JWKS_URL", "AUTH_ISSUER", "AUTH_AUDIENCE"}:
        assert re.search(rf"^#?{name}=", example, re.MULTILINE), name
    with pytest.raises(KeyError, match="APP_DB_PASSWORD"):
        environment("api", {})


def published(service: str, env: Mapping[str, str] = DOT_ENV) -> list[tuple[str, str]]:
    """(host address, host port) of each port a service publishes, as compose reads them."""
    bindings = []
    for port in SERVICES[service].get("ports", []):
        parts = str(interpolate(port, env)).split(":")
        # "port:container" publishes on every interface; "ip:port:container" on one.
        bindings.append((parts[0], parts[1]) if len(parts) == 3 else ("0.0.0.0", parts[0]))
    return bindings


def test_every_published_port_is_on_loopback_unless_the_operator_opens_it() -> None:
    for name in SERVICES:
        for address, _ in published(name):
            assert address == "127.0.0.1", f"{name} listens on {address} by default"

    opened = {**DOT_ENV, "TEMPORAL_UI_HOST_IP": "0.0.0.0", "API_HOST_IP": "0.0.0.0"}
    assert published("temporal-ui", opened) == [("0.0.0.0", "8080")]
    assert published("gateway", opened) == [("0.0.0.0", "8000")]
    assert published("temporal", opened) == [("127.0.0.1", "7233")]


# What the UI image's config template (temporalio/ui `server/config/docker.yaml`) reads
# for each action that changes a workflow; "true" switches the action off.
UI_WRITE_ACTIONS = {
    "TEMPORAL_DISABLE_WRITE_ACTIONS": "every write action, Request Cancellation included",
    "TEMPORAL_WORKFLOW_TERMINATE_DISABLED": "Terminate",
    "TEMPORAL_WORKFLOW_RESET_DISABLED": "Reset",
    "TEMPORAL_WORKFLOW_SIGNAL_DISABLED": "Send a Signal",
    "TEMPORAL_WORKFLOW_UPDATE_DISABLED": "Send an Update",
    "TEMPORAL_BATCH_ACTIONS_DISABLED": "batch cancel, terminate and reset",
    "TEMPORAL_START_WORKFLOW_DISABLED": "Start Workflow",
    "TEMPORAL_ACTIVITY_COMMANDS_DISABLED": "pause, reset and complete an activity",
}


def test_web_ui_write_actions_are_off_unless_the_operator_opts_in() -> None:
    ui = environment("temporal-ui")
    for name, action in UI_WRITE_ACTIONS.items():
        assert ui[name] == "true", f"{action} is on by default"

    cancellation_only = environment(
        "temporal-ui", {**DOT_ENV, "TEMPORAL_DISABLE_WRITE_ACTIONS": "false"}
    )
    assert cancellation_only["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "false"
    still_off = set(UI_WRITE_ACTIONS) - {"TEMPORAL_DISABLE_WRITE_ACTIONS"}
    assert {name: cancellation_only[name] for name in still_off} == dict.fromkeys(still_off, "true")


def test_web_ui_sign_in_goes_to_the_identity_provider_the_api_trusts() -> None:
    ui = environment("temporal-ui")
    assert ui["TEMPORAL_AUTH_ENABLED"] == "false"

    operator = {
        **DOT_ENV,
        "AUTH_ISSUER": "https://idp.plant.example/realms/plant",
        "TEMPORAL_AUTH_ENABLED": "true",
        "TEMPORAL_AUTH_CLIENT_ID": "temporal-ui",
        "TEMPORAL_AUTH_CLIENT_SECRET": "ui-client-secret",
        "TEMPORAL_UI_URL": "https://temporal.plant.example",
    }
    ui = environment("temporal-ui", operator)
    api = environment("api", operator)
    assert ui["TEMPORAL_AUTH_ENABLED"] == "true"
    assert ui["TEMPORAL_AUTH_PROVIDER_URL"] == api["AUTH_ISSUER"] == operator["AUTH_ISSUER"]
    assert ui["TEMPORAL_AUTH_CLIENT_ID"] == "temporal-ui"
    assert ui["TEMPORAL_AUTH_CLIENT_SECRET"] == "ui-client-secret"
    assert "openid" in (ui["TEMPORAL_AUTH_SCOPES"] or "").split(",")
    assert ui["TEMPORAL_AUTH_CALLBACK_URL"] == "https://temporal.plant.example/auth/sso/callback"
    assert ui["TEMPORAL_CORS_ORIGINS"] == api["TEMPORAL_UI_URL"] == operator["TEMPORAL_UI_URL"]


def test_the_env_example_names_every_web_ui_setting() -> None:
    example = (ROOT / "deploy/env.example").read_text()
    for name in (
        *UI_WRITE_ACTIONS,
        "TEMPORAL_UI_HOST_IP",
        "API_HOST_IP",
        "TEMPORAL_AUTH_ENABLED",
        "TEMPORAL_AUTH_CLIENT_ID",
        "TEMPORAL_AUTH_CLIENT_SECRET",
    ):
        assert re.search(rf"^#?{name}=", example, re.MULTILINE), name

"""Where the Web UI learns of the codec: `make run` passes the dev server the endpoint when
payloads are encrypted; compose leaves it to the operator's .env."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from pydantic import SecretStr

from devstack.stack import build_stack
from embedded import banner
from runtime.settings import Settings
from tests.ops.test_compose import DOT_ENV, environment

KEYS = SecretStr(f"k1:{base64.b64encode(os.urandom(32)).decode()}")


def dev_server_command(tmp_path: Path, *, web_ui: bool = True, **settings: object) -> list[str]:
    stack = build_stack(Settings.model_validate(settings), tmp_path, web_ui=web_ui)
    assert stack.server is not None
    return stack.server.command


def test_make_run_gives_the_web_ui_the_codec_only_when_payloads_are_encrypted(
    tmp_path: Path,
) -> None:
    encrypted = dev_server_command(
        tmp_path,
        payload_encryption_keys=KEYS,
        api_port=8123,
        temporal_ui_url="http://localhost:8233",
    )
    at = encrypted.index("--ui-codec-endpoint")
    assert encrypted[at + 1] == "http://localhost:8123/codec"
    assert "--ui-codec-endpoint" not in dev_server_command(tmp_path)
    headless = dev_server_command(tmp_path, web_ui=False, payload_encryption_keys=KEYS)
    assert "--ui-codec-endpoint" not in headless


def test_the_api_and_workers_get_the_keys_and_child_processes_inherit_them(
    tmp_path: Path,
) -> None:
    stack = build_stack(Settings(payload_encryption_keys=KEYS), tmp_path)
    for process in (*stack.workers, *stack.apis):
        assert process.env["PAYLOAD_ENCRYPTION_KEYS"] == KEYS.get_secret_value()
    with_keys = {**DOT_ENV, "PAYLOAD_ENCRYPTION_KEYS": KEYS.get_secret_value()}
    for service in ("api", "worker"):
        assert environment(service, with_keys)["PAYLOAD_ENCRYPTION_KEYS"] == KEYS.get_secret_value()
        assert "PAYLOAD_ENCRYPTION_KEYS" in environment(service)


def test_compose_ui_uses_the_codec_only_when_the_operator_names_it() -> None:
    assert environment("temporal-ui")["TEMPORAL_CODEC_ENDPOINT"] == ""
    named = {**DOT_ENV, "TEMPORAL_CODEC_ENDPOINT": "https://sessions.plant.example/codec"}
    ui = environment("temporal-ui", named)
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "https://sessions.plant.example/codec"
    assert ui["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "false"


def test_the_make_run_banner_names_the_key_in_use_and_the_codec() -> None:
    rotated = SecretStr(f"{KEYS.get_secret_value()},k2:{base64.b64encode(os.urandom(32)).decode()}")
    shown = banner(Settings(embedded=True, payload_encryption_keys=rotated, api_port=8123))
    assert "encrypted with key 'k2'" in shown
    assert "http://localhost:8123/codec" in shown
    assert "Payloads" not in banner(Settings(embedded=True))

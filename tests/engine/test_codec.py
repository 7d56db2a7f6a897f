"""Payload encryption keys and the codec, without a server."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from engine.client import DATA_CONVERTER, data_converter
from engine.codec import ENCODING, KEY_ID_METADATA, EncryptionCodec, UndecryptablePayload
from engine.history import failure_message
from runtime.settings import EncryptionKey, Settings, parse_encryption_keys
from tests.workflows.test_replay import HISTORIES
from workflows.shared import Actor, PauseRequest
from workflows.work_session import WorkSessionWorkflow


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def keys(text: str) -> list[EncryptionKey]:
    return parse_encryption_keys(text, "PAYLOAD_ENCRYPTION_KEYS")


PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"note": "breaker 7 locked"}')


def test_the_last_key_is_the_newest_and_every_form_of_list_parses() -> None:
    a, b = new_key(), new_key()
    for text in (f"a:{a},b:{b}", f" a:{a} , b:{b} ", f"# rotated 2026-12\na:{a}\nb:{b}  # new\n"):
        assert [k.key_id for k in keys(text)] == ["a", "b"]
    assert keys(f"a:{a}")[0].secret == base64.b64decode(a)
    url_safe = base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode()
    assert "-" in url_safe and "_" in url_safe
    assert keys(f"u:{url_safe}")[0].secret == b"\xfb\xff" * 16


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (f"k1:{base64.b64encode(os.urandom(16)).decode()}", "16 bytes long"),
        ("k1:not base64!", "not valid base64"),
        (f"{new_key()}", "not `id:base64key`"),
        (f"bad id:{new_key()}", "not `id:base64key`"),
        (f"k1:{new_key()},k1:{new_key()}", "appears twice"),
        (" # nothing\n", "holds no key"),
    ],
)
def test_a_wrong_key_list_is_refused_at_start_with_a_clear_reason(text: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Settings(payload_encryption_keys=SecretStr(text))


def test_keys_come_from_a_file_and_never_from_both_places(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"old:{new_key()}\nnew:{new_key()}\n")
    settings = Settings(payload_encryption_keys_file=key_file)
    assert [k.key_id for k in settings.encryption_keys()] == ["old", "new"]
    with pytest.raises(ValidationError, match="not both"):
        Settings(payload_encryption_keys_file=key_file, payload_encryption_keys=f"x:{new_key()}")
    with pytest.raises(ValidationError, match="cannot be read"):
        Settings(payload_encryption_keys_file=tmp_path / "missing")


def test_keys_never_show_in_the_settings_repr() -> None:
    secret = new_key()
    settings = Settings(payload_encryption_keys=SecretStr(f"k:{secret}"))
    assert secret not in repr(settings)
    assert secret not in repr(settings.encryption_keys())


async def test_encrypts_with_the_newest_key_and_decrypts_with_any() -> None:
    old_only = EncryptionCodec(keys(f"old:{(old := new_key())}"))
    rotated = EncryptionCodec(keys(f"old:{old},new:{new_key()}"))
    [under_old] = await old_only.encode([PLAIN])
    [under_new] = await rotated.encode([PLAIN])
    assert under_old.metadata[KEY_ID_METADATA] == b"old"
    assert under_new.metadata[KEY_ID_METADATA] == b"new"
    assert under_new.metadata["encoding"] == ENCODING
    assert b"breaker" not in under_new.SerializeToString()
    assert await rotated.decode([under_old, under_new]) == [PLAIN, PLAIN]


async def test_plaintext_payloads_pass_through_decoding() -> None:
    codec = EncryptionCodec(keys(f"k:{new_key()}"))
    assert await codec.decode([PLAIN]) == [PLAIN]


async def test_an_unknown_key_or_an_altered_payload_is_refused() -> None:
    [sealed] = await EncryptionCodec(keys(f"gone:{new_key()}")).encode([PLAIN])
    with pytest.raises(UndecryptablePayload, match="'gone', which is not configured"):
        await EncryptionCodec(keys(f"other:{new_key()}")).decode([sealed])
    same_id_other_key = EncryptionCodec(keys(f"gone:{new_key()}"))
    with pytest.raises(UndecryptablePayload, match="does not decrypt"):
        await same_id_other_key.decode([sealed])


async def test_the_converter_encrypts_only_when_keys_are_configured() -> None:
    converter = data_converter(Settings(payload_encryption_keys=SecretStr(f"k:{new_key()}")))
    request = PauseRequest(Actor(user_id="alice", roles=["worker"]), "lunch")
    [payload] = await converter.encode([request])
    assert payload.metadata["encoding"] == ENCODING
    assert b"lunch" not in payload.data
    assert await converter.decode([payload], [PauseRequest]) == [request]

    without_keys = data_converter(Settings())
    assert without_keys is DATA_CONVERTER
    with pytest.raises(UndecryptablePayload, match="no payload encryption key is configured"):
        await without_keys.decode([payload], [PauseRequest])


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_stored_plaintext_histories_replay_on_a_worker_that_encrypts(path: Path) -> None:
    converter = data_converter(Settings(payload_encryption_keys=SecretStr(f"k:{new_key()}")))
    replayer = Replayer(workflows=[WorkSessionWorkflow], data_converter=converter)
    await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))


async def test_a_failure_recorded_encrypted_reads_as_raised_and_without_the_key_as_recorded() -> (
    None
):
    converter = data_converter(Settings(payload_encryption_keys=SecretStr(f"k1:{new_key()}")))
    recorded = Failure()
    await converter.encode_failure(ApplicationError("session state unreadable"), recorded)
    assert recorded.message == "Encoded failure"

    assert await failure_message(converter, recorded) == "session state unreadable"
    another_key = data_converter(Settings(payload_encryption_keys=SecretStr(f"k2:{new_key()}")))
    assert await failure_message(another_key, recorded) == "Encoded failure"
    plain = Failure()
    await DATA_CONVERTER.encode_failure(ApplicationError("plain words"), plain)
    assert await failure_message(converter, plain) == "plain words"

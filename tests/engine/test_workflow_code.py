"""Workflow modules compiled once: every run shares the code, not the globals, and replays."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Self

import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.worker import Replayer

from engine.client import DATA_CONVERTER, data_converter
from engine.workflow_code import (
    CompiledOnceFinder,
    LeanSandboxRunner,
    compile_workflow_modules_once,
    compiled_snippet,
    ignores_serialization_context,
)
from runtime.settings import Settings
from tests.workflows.test_replay import HISTORIES, load
from workflows import work_session
from workflows.work_session import WorkSessionWorkflow


def _fresh_import(finder: CompiledOnceFinder) -> ModuleType:
    spec = finder.find_spec(work_session.__name__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_import_runs_the_same_code_with_globals_of_its_own() -> None:
    finder = CompiledOnceFinder()
    finder.register(work_session)
    first, second = _fresh_import(finder), _fresh_import(finder)
    assert first.WorkSessionWorkflow is not second.WorkSessionWorkflow
    assert first.UPDATE_OF is not second.UPDATE_OF
    assert first.WorkSessionWorkflow.run.__code__ is second.WorkSessionWorkflow.run.__code__


def test_other_modules_are_left_to_the_usual_finders() -> None:
    finder = CompiledOnceFinder()
    finder.register(work_session)
    assert finder.find_spec("workflows.domain") is None


class _ContextRecordingCodec(PayloadCodec, WithSerializationContext):
    """Leaves payloads as they are and records the context it was given for each."""

    def __init__(
        self, seen: list[SerializationContext | None], context: SerializationContext | None = None
    ) -> None:
        self.seen = seen
        self.context = context

    def with_context(self, context: SerializationContext) -> Self:
        return type(self)(self.seen, context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.seen.append(self.context)
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.seen.append(self.context)
        return list(payloads)


def test_the_products_converters_take_no_context_and_a_context_taking_codec_is_noticed() -> None:
    encrypting = data_converter(Settings(payload_encryption_keys=SecretStr("k1:" + "a" * 43 + "=")))
    assert ignores_serialization_context(DATA_CONVERTER)
    assert ignores_serialization_context(encrypting)
    recording = dataclasses.replace(DATA_CONVERTER, payload_codec=_ContextRecordingCodec([]))
    assert not ignores_serialization_context(recording)


def _replayer(converter: DataConverter) -> Replayer:
    compile_workflow_modules_once([WorkSessionWorkflow])
    return Replayer(
        workflows=[WorkSessionWorkflow],
        data_converter=converter,
        workflow_runner=LeanSandboxRunner.for_converter(converter),
    )


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_stored_histories_replay_as_the_worker_runs_them(path: Path) -> None:
    compiled_before = compiled_snippet.cache_info()
    await _replayer(DATA_CONVERTER).replay_workflow(load(path))
    compiled_after = compiled_snippet.cache_info()
    # Each activation ran a snippet compiled once per process.
    assert compiled_after.hits > compiled_before.hits
    assert compiled_after.currsize <= 8


async def test_a_codec_that_takes_a_context_still_gets_the_workflows() -> None:
    seen: list[SerializationContext | None] = []
    recording = dataclasses.replace(DATA_CONVERTER, payload_codec=_ContextRecordingCodec(seen))
    history = load(HISTORIES[-1])
    await _replayer(recording).replay_workflow(history)
    workflow_ids = {c.workflow_id for c in seen if isinstance(c, WorkflowSerializationContext)}
    assert workflow_ids == {history.workflow_id}
    # The audit batch's payloads went with the local activity's own context.
    assert any(isinstance(c, ActivitySerializationContext) and c.is_local for c in seen)

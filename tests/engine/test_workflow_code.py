"""Workflow modules compiled once: every run shares the code, not the globals, and replays."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from temporalio.worker import Replayer

from engine.client import DATA_CONVERTER
from engine.workflow_code import (
    CompiledOnceFinder,
    CompiledSnippetsSandboxRunner,
    compile_workflow_modules_once,
    compiled_snippet,
)
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


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_stored_histories_replay_as_the_worker_runs_them(path: Path) -> None:
    compile_workflow_modules_once([WorkSessionWorkflow])
    replayer = Replayer(
        workflows=[WorkSessionWorkflow],
        data_converter=DATA_CONVERTER,
        workflow_runner=CompiledSnippetsSandboxRunner(),
    )
    compiled_before = compiled_snippet.cache_info()
    await replayer.replay_workflow(load(path))
    compiled_after = compiled_snippet.cache_info()
    # Each activation and each payload's context ran a snippet compiled once per process.
    assert compiled_after.hits > compiled_before.hits
    assert compiled_after.currsize <= 8

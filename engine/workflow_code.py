"""Workflow modules compiled once per worker process, not once per cached run.

The SDK's sandbox imports a workflow's module afresh for every run it keeps in
its cache, so that each run has module globals of its own; the import reads the
compiled file again and makes a new set of code objects every time (about
37 KiB a run for `workflows.work_session`). Code objects are immutable, so
every run can execute the same ones: the finder installed here hands each
sandbox the code compiled the first time, and each run still executes the
module with globals of its own, under the sandbox's restrictions. It also means
that a worker runs the code it started with, even if the file changes under it.

The sandbox also runs a few fixed snippets of its own (activate the run, find
the serialization context of each payload it encodes or decodes) through
`exec` of a string, which compiles the snippet again on every call: about 40
compilations of 31 µs for every operation on a session, an eighth of the
worker's Python CPU under load. And to find that context it enters the sandbox
(swapping the interpreter's builtins and modules in and out) once per payload
list, although a converter whose components take no context encodes every
payload the same whatever it is: another tenth. `LeanSandboxRunner` compiles each
snippet once per process, skips the context lookups for such a converter, and
runs everything else as the SDK's sandbox does.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, SourceFileLoader
from importlib.util import spec_from_file_location
from types import CodeType, ModuleType
from typing import Any

from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    SerializationContext,
    WorkflowSerializationContext,
)
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# The sandbox's instance and the context types it passes are private to the SDK
# (pinned in pyproject.toml); the tests here fail if a new release changes them.
from temporalio.worker.workflow_sandbox._runner import _Instance as SandboxInstance


class _CompiledLoader(SourceFileLoader):
    """Loads a module from its source file, executing code compiled beforehand."""

    def __init__(self, fullname: str, path: str, code: CodeType) -> None:
        super().__init__(fullname, path)
        self._code = code

    def get_code(self, fullname: str) -> CodeType:
        return self._code


class CompiledOnceFinder(MetaPathFinder):
    """Finds the given modules, each with the code compiled when it was registered."""

    def __init__(self) -> None:
        self._modules: dict[str, tuple[str, CodeType]] = {}

    def register(self, module: ModuleType) -> None:
        """Keeps the module's compiled code for every later import of its name."""
        name = module.__name__
        if name in self._modules:
            return
        spec = module.__spec__
        if module.__file__ is None or spec is None or not isinstance(spec.loader, SourceFileLoader):
            raise ValueError(f"{name} was not loaded from a source file")
        code = spec.loader.get_code(name)
        if code is None:
            raise ValueError(f"{name} has no code to compile")
        self._modules[name] = (module.__file__, code)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        """A spec with the registered code, or None for any other module."""
        known = self._modules.get(fullname)
        if known is None:
            return None
        file, code = known
        return spec_from_file_location(fullname, file, loader=_CompiledLoader(fullname, file, code))


_FINDER = CompiledOnceFinder()


def compile_workflow_modules_once(workflow_classes: Sequence[type]) -> None:
    """Makes every sandboxed import of these classes' modules reuse one compiled code."""
    for workflow_class in workflow_classes:
        _FINDER.register(sys.modules[workflow_class.__module__])
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


@functools.cache
def compiled_snippet(source: str) -> CodeType:
    """The code of one of the sandbox's snippets, compiled on its first run."""
    # The SDK's `exec(source)` compiles under the file name "<string>": tracebacks stay the same.
    return compile(source, "<string>", "exec")


_SAMPLE_CONTEXTS: tuple[SerializationContext, ...] = (
    WorkflowSerializationContext(namespace="default", workflow_id="sample"),
    ActivitySerializationContext(
        namespace="default",
        workflow_id="sample",
        workflow_type="sample",
        activity_type="sample",
        activity_id="1",
        activity_task_queue="sample",
        is_local=True,
    ),
)


def ignores_serialization_context(converter: DataConverter) -> bool:
    """Whether the converter is the same whatever the context: none of its parts takes one.

    `DataConverter.with_context` returns the converter itself exactly when no part
    of it (payload converter, codec, failure converter) changes with the context,
    and a part that takes one is a new object for any context. Without external
    storage, the store context is discarded as well.
    """
    return converter.external_storage is None and all(
        converter.with_context(context) is converter for context in _SAMPLE_CONTEXTS
    )


class _LeanInstance(SandboxInstance):
    def __init__(
        self,
        instance_details: WorkflowInstanceDetails,
        runner_class: type[WorkflowRunner],
        restrictions: SandboxRestrictions,
        converter_ignores_context: bool,
    ) -> None:
        self._converter_ignores_context = converter_ignores_context
        super().__init__(instance_details, runner_class, restrictions)

    def _run_code(self, code: str, **extra_globals: Any) -> None:
        # `exec`, which the SDK calls with `code`, takes a code object as well as a string.
        super()._run_code(compiled_snippet(code), **extra_globals)  # type: ignore[arg-type]

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> SerializationContext | None:
        if self._converter_ignores_context:
            # The worker then encodes with its converter as it is, as for any context.
            return None
        return super().get_serialization_context(command_info)

    def get_external_store_context(
        self, command_info: CommandInfo | None
    ) -> StorageDriverStoreContext:
        if self._converter_ignores_context:
            return StorageDriverStoreContext(target=None)
        return super().get_external_store_context(command_info)


@dataclass(frozen=True)
class LeanSandboxRunner(SandboxedWorkflowRunner):
    """The SDK's sandbox, with its snippets compiled once per process and, when the
    worker's converter takes no context, no sandbox round trip to find one per payload."""

    converter_ignores_context: bool = False

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        """Implements `WorkflowRunner.create_instance`, as the SDK's sandbox does."""
        return _LeanInstance(
            det, self.runner_class, self.restrictions, self.converter_ignores_context
        )

    @classmethod
    def for_converter(cls, converter: DataConverter) -> LeanSandboxRunner:
        """The runner for a worker whose client has this converter."""
        return cls(converter_ignores_context=ignores_serialization_context(converter))

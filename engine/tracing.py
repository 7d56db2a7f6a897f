"""One trace per request through Temporal: client calls, the session's messages, its audit writes.

Built on `temporalio.contrib.opentelemetry.TracingInterceptor`, which makes workflow
spans outside the sandbox, at workflow time, and never while replaying. Two things
differ from it, so that an update's request is one trace down to its audit row:

- an update's validator and handler spans join the trace of the request that sent
  the update (the stock interceptor puts them in the session's start trace);
- an audit activity writes the events of several changes: its span joins the trace
  of the oldest change it writes (the one whose wait is the audit lag) and links the
  traces of the others. Which changes are unwritten is kept in memory only: after
  the worker rebuilt the session from history, changes accepted before that are
  written under the session's start trace.

Imported only when tracing is on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import opentelemetry.context
import temporalio.worker
import temporalio.workflow
from opentelemetry import trace
from temporalio.api.common.v1 import Payload
from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor
from temporalio.contrib.opentelemetry._context import attached_context
from temporalio.contrib.opentelemetry._interceptor import _TracingWorkflowOutboundInterceptor

from activities.audit import APPEND_AUDIT_EVENTS

# A propagated context as the tracing header carries it: `traceparent`, `baggage`, ...
Carrier = dict[str, Any]

_BATCH_SPAN_EXTERN = "__work_sessions_batch_span"


@dataclass(frozen=True)
class _BatchSpanParams:
    name: str
    parent: Carrier
    linked: Sequence[Carrier]
    attributes: Mapping[str, str]
    time_ns: int


class SessionTracingInterceptor(TracingInterceptor):
    """Traces client calls, workflow messages and activities; one per traced client."""

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[TracingWorkflowInboundInterceptor]:
        super().workflow_interceptor_class(input)
        input.unsafe_extern_functions[_BATCH_SPAN_EXTERN] = self._batch_span
        return _SessionWorkflowTracing

    def _batch_span(self, params: _BatchSpanParams) -> Carrier:
        """Makes a finished span in the trace of `parent`, linked to the others; its context."""
        propagator = self.text_map_propagator
        parent = propagator.extract(params.parent)
        linked = (trace.get_current_span(propagator.extract(c)) for c in params.linked)
        span = self.tracer.start_span(
            params.name,
            parent,
            kind=trace.SpanKind.CLIENT,
            attributes=dict(params.attributes),
            links=[trace.Link(s.get_span_context()) for s in linked if s is not trace.INVALID_SPAN],
            start_time=params.time_ns,
        )
        # Ended at once, like every workflow span: a span kept open would not survive a replay.
        span.end(end_time=params.time_ns)
        carrier: Carrier = {}
        propagator.inject(carrier, trace.set_span_in_context(span, parent))
        return carrier


class _WithHeaders(Protocol):
    headers: Mapping[str, Payload]


@dataclass
class _OutboundHeaders:
    """Receives the context of a span the stock interceptor makes."""

    headers: Mapping[str, Payload] = field(default_factory=dict)


class _SessionWorkflowTracing(TracingWorkflowInboundInterceptor):
    def __init__(self, next: temporalio.worker.WorkflowInboundInterceptor) -> None:
        super().__init__(next)
        # Contexts of the changes accepted since the last audit write started, oldest first;
        # None until first needed, as the workflow's info is not there yet.
        self._unwritten: list[Carrier] | None = None

    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        self.next.init(_SessionWorkflowOutboundTracing(outbound, self))

    def unwritten(self) -> list[Carrier]:
        """Changes accepted since the last audit write started; first the start, if this run's."""
        if self._unwritten is None:
            started = self._load_workflow_context_carrier()
            first_run = temporalio.workflow.info().continued_run_id is None
            self._unwritten = [started] if started and first_run else []
        return self._unwritten

    def take_unwritten(self) -> list[Carrier]:
        """The changes an audit write starting now is for."""
        changes = self.unwritten()
        self._unwritten = []
        return changes

    def handle_update_validator(self, input: temporalio.worker.HandleUpdateInput) -> None:
        request = self._request_context(input.headers)
        if request is None:
            super().handle_update_validator(input)
            return
        with attached_context(request):
            try:
                self.next.handle_update_validator(input)
            except Exception as refusal:
                self._completed_span(
                    f"ValidateUpdate:{input.update}",
                    exception=refusal,
                    kind=trace.SpanKind.SERVER,
                )
                raise
            self._completed_span(f"ValidateUpdate:{input.update}", kind=trace.SpanKind.SERVER)

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        request = self._request_context(input.headers)
        if request is None:
            return await super().handle_update_handler(input)
        handled = _OutboundHeaders()
        with attached_context(request):
            self._completed_span(
                f"HandleUpdate:{input.update}",
                add_to_outbound=handled,
                kind=trace.SpanKind.SERVER,
            )
            result = await self.next.handle_update_handler(input)
        if self.header_key in handled.headers:
            self.unwritten().append(
                self.payload_converter.from_payloads([handled.headers[self.header_key]])[0]
            )
        return result

    def _request_context(
        self, headers: Mapping[str, Payload]
    ) -> opentelemetry.context.Context | None:
        header = headers.get(self.header_key)
        if not header:
            return None
        carrier = self.payload_converter.from_payloads([header])[0]
        return self._set_on_context(self.text_map_propagator.extract(carrier))

    def batch_span(self, name: str, changes: list[Carrier], input: _WithHeaders) -> None:
        """Puts a span for work done on behalf of `changes` in the trace of the oldest one."""
        if temporalio.workflow.unsafe.is_replaying():
            return
        info = temporalio.workflow.info()
        oldest, *others = changes
        carrier = temporalio.workflow.extern_functions()[_BATCH_SPAN_EXTERN](
            _BatchSpanParams(
                name=name,
                parent=oldest,
                linked=others,
                attributes={"temporalWorkflowID": info.workflow_id, "temporalRunID": info.run_id},
                time_ns=temporalio.workflow.time_ns(),
            )
        )
        input.headers = self._context_carrier_to_headers(carrier, input.headers)


class _SessionWorkflowOutboundTracing(_TracingWorkflowOutboundInterceptor):
    """The stock outbound spans, but an audit write goes in the trace of the changes it writes."""

    def __init__(
        self,
        next: temporalio.worker.WorkflowOutboundInterceptor,
        root: _SessionWorkflowTracing,
    ) -> None:
        super().__init__(next, root)
        self.session = root

    def start_activity(
        self, input: temporalio.worker.StartActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        if not self._in_batch_trace(input):
            return super().start_activity(input)
        return self.next.start_activity(input)

    def start_local_activity(
        self, input: temporalio.worker.StartLocalActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        # Audit writes run as local activities inside the flushing workflow task.
        if not self._in_batch_trace(input):
            return super().start_local_activity(input)
        return self.next.start_local_activity(input)

    def _in_batch_trace(
        self,
        input: temporalio.worker.StartActivityInput | temporalio.worker.StartLocalActivityInput,
    ) -> bool:
        """Puts an audit write's span in the trace of the changes it writes, if any."""
        if input.activity != APPEND_AUDIT_EVENTS:
            return False
        changes = self.session.take_unwritten()
        if not changes:
            return False
        self.session.batch_span(f"StartActivity:{input.activity}", changes, input)
        return True

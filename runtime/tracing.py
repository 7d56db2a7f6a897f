"""Optional OpenTelemetry tracing, configured only by OpenTelemetry's standard `OTEL_*` variables.

Tracing is on when `OTEL_TRACES_EXPORTER` names an exporter (not `none`) or an OTLP
endpoint is set, and off when `OTEL_SDK_DISABLED=true`. Off, the SDK is never
imported and no span is made.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from opentelemetry import baggage, context, trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

# The span attribute, and the baggage entry carrying it into Temporal, that names the
# API request behind a span: the same name and value as in the log lines.
REQUEST_ID = "request_id"

_OTLP_EXPORTER_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Tells whether the `OTEL_*` variables ask for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


@dataclass(frozen=True)
class Tracing:
    """The tracer provider a traced process makes its spans with."""

    provider: TracerProvider

    @classmethod
    def exporting_to(cls, processors: list[SpanProcessor], service_name: str) -> Tracing:
        """A provider that names its service (unless `OTEL_SERVICE_NAME` does) and its requests."""
        from opentelemetry.processor.baggage import BaggageSpanProcessor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider

        resource = Resource.create()
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: service_name}))
        provider = TracerProvider(resource=resource)
        # Every span started under a request gets its id, workflow and activity spans too:
        # their parent context is rebuilt from the Temporal header, baggage included.
        provider.add_span_processor(BaggageSpanProcessor(lambda key: key == REQUEST_ID))
        for processor in processors:
            provider.add_span_processor(processor)
        return cls(provider)


def tracing_from_environment(service_name: str) -> Tracing | None:
    """The tracing the process's `OTEL_*` variables ask for, or None when they ask for none.

    The exporters, the batching and the resource read their own variables too.
    """
    if not tracing_wanted(os.environ):
        return None
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    names = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() or "otlp"
    exporters = [_span_exporter(name.strip()) for name in names.split(",") if name.strip()]
    return Tracing.exporting_to([BatchSpanProcessor(e) for e in exporters], service_name)


def _span_exporter(name: str) -> SpanExporter:
    """The exporter an `OTEL_TRACES_EXPORTER` name stands for; it reads its own variables."""
    entry_point = name
    if name == "otlp":
        protocol = (
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        entry_point = _OTLP_EXPORTER_BY_PROTOCOL.get(protocol, f"otlp ({protocol})")
    found = entry_points(group="opentelemetry_traces_exporter", name=entry_point)
    if not found:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={name!r} needs the span exporter {entry_point!r}, which is "
            "not installed: use otlp (with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf), "
            "console or none"
        )
    exporter: SpanExporter = next(iter(found)).load()()
    return exporter


@contextmanager
def request_traced(request_id: str) -> Iterator[None]:
    """Names the request on its HTTP span and, through the baggage, on every span it causes."""
    span = trace.get_current_span()
    if not span.is_recording():
        yield
        return
    span.set_attribute(REQUEST_ID, request_id)
    # A caller's own baggage is dropped: it would travel into every workflow history.
    token = context.attach(baggage.set_baggage(REQUEST_ID, request_id, baggage.clear()))
    try:
        yield
    finally:
        context.detach(token)

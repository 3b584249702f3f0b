"""OpenTelemetry traces, configured only by the standard `OTEL_*` environment variables.

Off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or `OTEL_TRACES_EXPORTER=console`; `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none` keep it off. Off, nothing is instrumented and nothing runs per request:
the API's no-op tracer answers the few spans we start ourselves.

On, `configure_tracing` installs the SDK (the service name defaults to the process's own unless
`OTEL_SERVICE_NAME` says otherwise; `OTEL_TRACES_SAMPLER`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`
and the exporter's variables are read by the SDK itself) and the official instrumentations of what
every service uses: httpx, asyncpg, redis, aio-pika and Celery; `instrument_app` adds the ASGI
server spans to an app.

One trace follows work across processes: HTTP carries `traceparent` headers; an event carries its
creator's context in the CloudEvents envelope (the distributed-tracing extension's `traceparent`,
`tracestate`), so it survives the outbox and retries; the relay publishes inside that context and
aio-pika's instrumentation carries it on to the consumer in the message headers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

log = logging.getLogger(__name__)

_configured = False


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    if exporter == "console":
        return True
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(service: str) -> bool:
    """Install the SDK and the instrumentations when the environment asks for traces (once per
    process); returns whether tracing is on."""
    global _configured
    if _configured:
        return True
    if not tracing_enabled():
        return False
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, which win over ours.
    defaults = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    provider = TracerProvider(resource=Resource.create(defaults))
    provider.add_span_processor(_WithoutOrphanClients(BatchSpanProcessor(exporter)))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()
    AsyncPGInstrumentor().instrument()
    RedisInstrumentor().instrument()
    AioPikaInstrumentor().instrument()
    CeleryInstrumentor().instrument()
    _configured = True
    log.info(
        "tracing on: spans exported over %s",
        "console" if isinstance(exporter, ConsoleSpanExporter) else "OTLP",
    )
    return True


class _WithoutOrphanClients(SpanProcessor):
    """Drops client spans that start a trace: a query or Redis call outside any request, job or
    message (the relay's and the processors' polls, every second) is noise, not a trace."""

    def __init__(self, processor: SpanProcessor) -> None:
        self._processor = processor

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        self._processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if span.parent is None and span.kind is trace.SpanKind.CLIENT:
            return
        self._processor.on_end(span)

    def shutdown(self) -> None:
        self._processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._processor.force_flush(timeout_millis)


def instrument_app(app: Any) -> None:
    """ASGI server spans (one per request, the parent of everything the request does) when
    tracing is on; nothing otherwise."""
    if _configured:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"]
        )


def current_trace_context() -> dict[str, str]:
    """The current span's `traceparent` (and `tracestate`), to carry in an event's envelope; empty
    when tracing is off or no span is active."""
    if not _configured:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continued_from(carrier: Mapping[str, Any]) -> Iterator[None]:
    """Run the block in the context a carrier (an envelope's or a row's `traceparent`) names, so
    the spans it starts join that trace."""
    if not _configured or not carrier.get("traceparent"):
        yield
        return
    token = context.attach(propagate.extract(dict(carrier)))
    try:
        yield
    finally:
        context.detach(token)


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


@contextmanager
def span(
    name: str,
    *,
    parent: Mapping[str, Any] | None = None,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[None]:
    """A span of our own around the block (in the trace `parent` names, else the current one);
    nothing at all when tracing is off."""
    if not _configured:
        yield
        return
    with continued_from(parent or {}), _TRACER.start_as_current_span(name, kind=kind, attributes=attributes):
        yield


_TRACER = tracer("gatehouse")

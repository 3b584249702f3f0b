"""JSON logs on stdout, each line carrying the request / correlation id, and the trace and span
ids when tracing is on (gatehouse_platform.tracing)."""

from __future__ import annotations

import logging
import sys

from asgi_correlation_id import CorrelationIdFilter
from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from gatehouse_platform.tracing import tracing_enabled


class TraceIdFilter(logging.Filter):
    """Adds `trace_id` and `span_id` (hex, or "-" outside a span) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        record.trace_id = f"{span.trace_id:032x}" if span.is_valid else "-"
        record.span_id = f"{span.span_id:016x}" if span.is_valid else "-"
        return True


def configure_logging(service: str, *, level: str = "INFO", json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(CorrelationIdFilter(name="correlation", uuid_length=None, default_value="-"))
    traced = tracing_enabled()
    if traced:
        handler.addFilter(TraceIdFilter(name="trace"))
    if json:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s"
                + (" %(trace_id)s %(span_id)s" if traced else ""),
                rename_fields={
                    "asctime": "time",
                    "levelname": "level",
                    "name": "logger",
                    "correlation_id": "request_id",
                },
                static_fields={"service": service},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s [%(correlation_id)s"
                + (" %(trace_id)s/%(span_id)s" if traced else "")
                + "] %(name)s: %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's access log would repeat what our middleware logs, and it prints query strings
    # (which can hold a verification token): keep it off.
    logging.getLogger("uvicorn.access").disabled = True

"""Tracing is configured by OTEL_* alone: off (nothing instrumented, no trace fields in logs,
events without trace context) unless an exporter is named; on, spans carry across the outbox and
log lines name their trace. Each case runs in a fresh interpreter: instrumentation is process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from gatehouse_platform.tracing import tracing_enabled


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_only_an_exporter_switches_tracing_on(environ: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(environ) is enabled


def run(script: str, **environ: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**clean, **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


PROBE = """
    import json, logging
    from opentelemetry import trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from gatehouse_contracts.envelope import new_event
    from gatehouse_contracts.events.auth import PasswordChanged
    from gatehouse_platform.logging import configure_logging
    from gatehouse_platform.tracing import configure_tracing, current_trace_context, span

    configure_logging("probe", json=True)
    on = configure_tracing("probe")
    with span("probe work"):
        logging.getLogger("probe").warning("inside")
        context = current_trace_context()
        event = new_event(
            PasswordChanged(
                user_id="6f1c1d7e-3a66-4c1b-9a3e-0b4f7c6a2d10", email="a@example.com",
                method="change", changed_at="2026-12-03T12:00:00Z",
            ),
            source="/probe", trace_context=context,
        )
        current = trace.get_current_span().get_span_context()
    print("RESULT " + json.dumps({
        "on": on,
        "httpx_instrumented": HTTPXClientInstrumentor().is_instrumented_by_opentelemetry,
        "traceparent": event.traceparent,
        "trace_id": f"{current.trace_id:032x}" if current.is_valid else None,
    }))
"""


def result_of(stdout: str) -> dict[str, object]:
    line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
    return dict(json.loads(line.removeprefix("RESULT ")))


def logged(stdout: str) -> dict[str, object]:
    return dict(json.loads(next(line for line in stdout.splitlines() if '"inside"' in line)))


def test_off_nothing_is_instrumented_and_nothing_is_added() -> None:
    stdout = run(PROBE)
    result = result_of(stdout)
    assert result == {"on": False, "httpx_instrumented": False, "traceparent": None, "trace_id": None}
    line = logged(stdout)
    assert "trace_id" not in line and "span_id" not in line


def test_on_events_and_log_lines_carry_the_trace() -> None:
    stdout = run(PROBE, OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="probe-service")
    result = result_of(stdout)
    assert result["on"] is True and result["httpx_instrumented"] is True
    trace_id = result["trace_id"]
    assert isinstance(trace_id, str) and len(trace_id) == 32
    version, traced, parent, flags = str(result["traceparent"]).split("-")
    assert (version, traced, len(parent)) == ("00", trace_id, 16) and int(flags, 16) & 1  # sampled
    line = logged(stdout)
    assert line["trace_id"] == trace_id and len(str(line["span_id"])) == 16
    # The console exporter printed the span, with the service name from OTEL_SERVICE_NAME.
    assert '"name": "probe work"' in stdout and '"service.name": "probe-service"' in stdout

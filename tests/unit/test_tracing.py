"""Tracing is configured by OpenTelemetry's own variables, and log lines name the active span."""

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import format_span_id, format_trace_id

from config.logging import JsonFormatter
from jobs.tracing import wanted


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_SERVICE_NAME": "web", "OTEL_TRACES_SAMPLER": "always_on"}, False),
    ],
)
def test_tracing_is_on_only_with_an_exporter_endpoint(env, on):
    assert wanted(env) is on


def log_line(message: str) -> dict:
    record = logging.LogRecord("test", logging.INFO, __file__, 1, message, None, None)
    return json.loads(JsonFormatter().format(record))


def test_a_log_line_carries_the_ids_of_the_active_span_and_none_outside_one():
    assert "trace_id" not in log_line("outside") and "span_id" not in log_line("outside")
    tracer = TracerProvider().get_tracer("test")  # a provider of its own: the global one stays unset
    with tracer.start_as_current_span("job") as span:
        line = log_line("inside")
    context = span.get_span_context()
    assert line["trace_id"] == format_trace_id(context.trace_id)
    assert line["span_id"] == format_span_id(context.span_id)

"""OpenTelemetry tracing: one trace per job across web, broker and worker, configured by OTEL_* variables.

Tracing is on only when an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and ``OTEL_SDK_DISABLED`` is not true. Otherwise nothing is
installed: the OpenTelemetry API's no-op tracer answers every call, so an untraced service pays a
function call per span at most. The SDK reads the other standard variables itself
(``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_RESOURCE_ATTRIBUTES``…).

The maintained instrumentations make the spans of the framework calls: Flask (the request, with a
client's W3C ``traceparent`` honoured), SQLAlchemy (each statement) and Celery (the publish, and the
task run on the worker, whose message headers carry the trace context).
"""

import os
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry import context, trace
from opentelemetry.trace import format_span_id, format_trace_id

tracer = trace.get_tracer("imgsvc")
_enabled = False
# Per job uuid, the context of that job's span on the worker: what it publishes for the job
# (its webhook delivery) joins the job's trace instead of the batch's.
_job_contexts: ContextVar[dict[str, context.Context] | None] = ContextVar("job_contexts", default=None)


def wanted(env=os.environ) -> bool:
    """Is an exporter endpoint configured, and the SDK not switched off?"""
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return bool(endpoint) and env.get("OTEL_SDK_DISABLED", "").lower() != "true"


def enabled() -> bool:
    return _enabled


def init_tracing(default_service_name: str) -> bool:
    """Install the SDK with an OTLP/HTTP exporter and the Celery and SQLAlchemy instrumentations,
    once per process; returns whether tracing is on."""
    global _enabled
    if _enabled or not wanted():
        return _enabled
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or default_service_name})
    resource = resource.merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    # The batch processor exports from a thread of its own and starts it again after a fork
    # (Gunicorn's and Celery's pool processes).
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument()
    # Every engine made from now on. The instrumentation declares SQLAlchemy < 2.1 and would skip 2.1
    # silently; the engine events it hooks are the same in 2.1 (test_tracing sees the INSERT's span).
    SQLAlchemyInstrumentor().instrument(enable_commenter=False, skip_dep_check=True)
    _enabled = True
    return True


def instrument_flask(app) -> None:
    """Spans for the app's requests; every answer names its trace (``traceresponse``, ``X-Trace-Id``)."""
    if not _enabled:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(app, excluded_urls="health,metrics")
    app.after_request(_name_the_trace)


def _name_the_trace(response):
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        trace_id = format_trace_id(span.trace_id)
        response.headers["traceresponse"] = f"00-{trace_id}-{format_span_id(span.span_id)}-{span.trace_flags:02x}"
        response.headers["X-Trace-Id"] = trace_id
    return response


def current_trace_id() -> str | None:
    """The trace id of the active span (32 hex digits) when its trace is kept (sampled), or None:
    a row never points at a trace the backend never received."""
    span = trace.get_current_span().get_span_context()
    return format_trace_id(span.trace_id) if span.is_valid and span.trace_flags.sampled else None


@contextmanager
def jobs_in_their_traces(contexts: dict[str, context.Context]):
    """While inside, ``in_job_trace(uuid)`` puts work done for a job into that job's trace."""
    token = _job_contexts.set(contexts)
    try:
        yield
    finally:
        _job_contexts.reset(token)


@contextmanager
def in_job_trace(prediction_uuid: str):
    """Run the block in the job's trace when the worker has one for it (see ``jobs_in_their_traces``)."""
    job_context = (_job_contexts.get() or {}).get(prediction_uuid)
    if job_context is None:
        yield
        return
    token = context.attach(job_context)
    try:
        yield
    finally:
        context.detach(token)

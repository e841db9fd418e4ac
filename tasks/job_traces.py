"""Each job of a batch in its own trace: celery-batches runs many jobs in one task run.

The run's span (Celery's instrumentation) belongs to no job. Each job gets a span in the trace its
message carries (the web's POST started it), linked to the run's span, so both views work: from a
job's trace to the batch it rode in, and from the batch to its jobs. The steps of the run (each job's
own decode; the shared model call, record and completion event) are timed as they happen and become
children of every job span they served. With tracing off, the timing is all that runs.
"""

import time
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.trace import Link

from jobs import tracing


class BatchSteps:
    """When each step of one run started and ended (ns since the epoch, as spans want them)."""

    def __init__(self) -> None:
        self.started = time.time_ns()
        self.shared: list[tuple[str, int, int, dict]] = []
        self.own: dict[str, list[tuple[str, int, int, dict]]] = {}

    @contextmanager
    def step(self, name: str, **attributes):
        """A step done once for every job of the run."""
        started = time.time_ns()
        try:
            yield
        finally:
            self.shared.append((name, started, time.time_ns(), attributes))

    @contextmanager
    def job_step(self, prediction_uuid: str, name: str):
        """A step done for one job alone."""
        started = time.time_ns()
        try:
            yield
        finally:
            self.own.setdefault(prediction_uuid, []).append((name, started, time.time_ns(), {}))


@contextmanager
def job_spans(requests, steps: BatchSteps):
    """One span per job for the block; what the block publishes for a job (``tracing.in_job_trace``)
    joins that job's trace. The steps become the job spans' children as the block ends."""
    if not tracing.enabled():
        yield
        return
    batch = trace.get_current_span().get_span_context()
    links = [Link(batch)] if batch.is_valid else []
    spans = {}
    for request in requests:
        prediction_uuid = request.args[0]
        parent = propagate.extract(getattr(request, "request_dict", None) or {})
        spans[prediction_uuid] = tracing.tracer.start_span(
            "classify job",
            context=parent,
            links=links,
            start_time=steps.started,
            attributes={"job.uuid": prediction_uuid, "batch.size": len(requests)},
        )
    contexts = {prediction_uuid: trace.set_span_in_context(span) for prediction_uuid, span in spans.items()}
    try:
        with tracing.jobs_in_their_traces(contexts):
            yield
    finally:
        for prediction_uuid, span in spans.items():
            for name, started, ended, attributes in [*steps.own.get(prediction_uuid, []), *steps.shared]:
                child = tracing.tracer.start_span(
                    name, context=contexts[prediction_uuid], start_time=started, attributes=attributes
                )
                child.end(end_time=ended)
            span.end()

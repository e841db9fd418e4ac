"""One trace per job (OpenTelemetry): a job sent through nginx, the web, RabbitMQ, the worker and the
webhook worker reaches a real OTLP/HTTP receiver as one trace with the expected parent and link relations."""

import json

import pytest
import requests

from deploy.harness import deployment_env, running_service, start_webhook_worker
from tests.support.api import upload
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.polling import until
from tests.support.webhook_receiver import Receiver

DEADLINE = 90
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def collector():
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def traced_service(tmp_path_factory, mysql_url, new_queue, collector):
    env = deployment_env(
        tmp_path_factory.mktemp("traced"),
        mysql_url,
        new_queue(),
        WEBHOOK_ALLOW_PRIVATE="1",
        WEBHOOK_SECRET="tracing-test-secret",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="200",  # ms between exports, so spans arrive quickly
    )
    env.pop("OTEL_SDK_DISABLED", None)
    logs = tmp_path_factory.mktemp("traced-logs")
    with running_service(env, logs) as (url, _, worker):
        webhooks = start_webhook_worker(env, logs)
        try:
            yield url, logs
        finally:
            webhooks.stop()


def test_a_job_is_one_trace_from_the_post_to_the_webhook(traced_service, collector):
    url, logs = traced_service
    hook = Receiver()
    try:
        response = requests.post(
            f"{url}/inference/image",
            data=upload(callback_url=hook.url),
            headers={"Content-Type": "application/json", "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        assert response.headers["X-Trace-Id"] == CLIENT_TRACE
        assert response.headers["traceresponse"].startswith(f"00-{CLIENT_TRACE}-")
        job = response.json()["uuid"]
        until(lambda: hook.received, "the webhook", DEADLINE)
    finally:
        hook.close()

    def spans_named(*names):
        spans = collector.trace(CLIENT_TRACE)
        return spans if all(any(span["name"].startswith(name) for span in spans) for name in names) else None

    spans = until(
        lambda: spans_named(
            "POST",
            "image store write",
            "INSERT",
            "apply_async/classify_image",
            "classify job",
            "decode",
            "inference",
            "record",
            "completion event",
            "apply_async/deliver_webhook",
            "run/deliver_webhook",
        ),
        lambda: "every span of the job's trace; received: "
        + ", ".join(sorted(f"{span['service']}:{span['name']}@{span['trace_id'][:6]}" for span in collector.spans)),
        DEADLINE,
    )
    by_id = {span["span_id"]: span for span in spans}

    def one(name):
        [span] = [span for span in spans if span["name"].startswith(name)]
        return span

    def parent(span):
        return by_id.get(span["parent_span_id"])

    post = one("POST")
    assert post["parent_span_id"] == CLIENT_SPAN and post["service"] == "imgsvc-webapp"
    for name in ("image store write", "apply_async/classify_image"):
        assert parent(one(name)) is post, name
    insert = [span for span in spans if span["name"].startswith("INSERT")]
    assert any(span["parent_span_id"] == post["span_id"] for span in insert)

    job_span = one("classify job")
    assert job_span["service"] == "imgsvc-worker" and job_span["attributes"]["job.uuid"] == job
    assert parent(job_span) is one("apply_async/classify_image")
    [(batch_trace, batch_span)] = job_span["links"]
    [batch] = [span for span in collector.spans if span["span_id"] == batch_span]
    assert batch["trace_id"] == batch_trace != CLIENT_TRACE and batch["name"].startswith("run/classify_image")
    for name in ("decode", "inference", "record", "completion event", "apply_async/deliver_webhook"):
        assert parent(one(name)) is job_span, name
    delivery = one("run/deliver_webhook")
    assert delivery["service"] == "imgsvc-webhook_worker"
    assert parent(delivery) is one("apply_async/deliver_webhook")

    row = requests.get(f"{url}/predictions/{job}", timeout=10).json()
    assert row["trace_id"] == CLIENT_TRACE

    worker_lines = [json.loads(line) for line in (logs / "worker.log").read_text().splitlines() if line.startswith("{")]
    recorded = [line for line in worker_lines if line.get("uuid") == job and "recorded" in line["message"]]
    assert recorded and all(line["trace_id"] == CLIENT_TRACE for line in recorded)

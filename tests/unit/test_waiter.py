"""The waiter in-process on SQLite without fan-out: it answers when the job ends, found by polling."""

import asyncio
import time

from aiohttp.test_utils import TestClient, TestServer

from jobs.broker import broker_urls
from jobs.records import done_outcome, record_outcomes
from tests.conftest import b64, image_bytes
from webapp.waiter import POLL_WITHOUT_EVENTS, make_app


def waiter_settings(app, **changes):
    return app.extensions["settings"].replace(CELERY_BROKER_URL="embedded://", **changes)


def submit(app) -> str:
    response = app.test_client().post("/inference/image", json={"name": "x", "data": b64(image_bytes())})
    return response.get_json()["uuid"]


def run(settings, scenario):
    async def main():
        async with TestClient(TestServer(make_app(settings))) as client:
            return await scenario(client)

    return asyncio.run(main())


def test_a_waiting_request_is_answered_soon_after_the_job_ends(app):
    prediction_uuid = submit(app)

    async def scenario(client):
        started = time.monotonic()
        request = asyncio.create_task(client.get(f"/predictions/{prediction_uuid}?wait=10"))
        await asyncio.sleep(0.6)
        assert not request.done()
        with app.app_context():
            await asyncio.to_thread(record_outcomes, {prediction_uuid: done_outcome("dogsled", 0.9, [])})
        ended = time.monotonic()
        response = await request
        return response.status, await response.json(), ended - started, time.monotonic() - ended

    status, body, before_end, after_end = run(waiter_settings(app), scenario)
    assert status == 200 and body["status"] == "done" and body["prediction"] == "dogsled"
    assert before_end >= 0.6 and after_end < POLL_WITHOUT_EVENTS + 0.5


def test_a_wait_that_runs_out_answers_pending_like_the_plain_get(app):
    prediction_uuid = submit(app)

    async def scenario(client):
        started = time.monotonic()
        response = await client.get(f"/predictions/{prediction_uuid}/", params={"wait": "0.5"})
        return response.status, response.headers["Retry-After"], await response.json(), time.monotonic() - started

    status, retry_after, body, elapsed = run(waiter_settings(app), scenario)
    assert (status, retry_after, body) == (202, "1", {"uuid": prediction_uuid, "status": "pending"})
    assert 0.5 <= elapsed < 1.5


def test_the_waiter_refuses_like_the_web_bad_wait_unknown_ids_and_missing_keys(app):
    prediction_uuid = submit(app)

    async def scenario(client):
        answers = {}
        for name, path, headers in [
            ("bad wait", f"/predictions/{prediction_uuid}?wait=31", {"Authorization": "Bearer k1"}),
            ("not uuid4", "/predictions/nope?wait=1", {"Authorization": "Bearer k1"}),
            ("unknown", "/predictions/0b6c5f8e-5d3a-4c1e-9f55-2f3e8a9d7c61?wait=1", {"Authorization": "Bearer k1"}),
            ("no key", f"/predictions/{prediction_uuid}?wait=1", {}),
            ("wrong key", f"/predictions/{prediction_uuid}?wait=1", {"Authorization": "Bearer k3"}),
        ]:
            response = await client.get(path, headers=headers)
            answers[name] = (
                response.status,
                response.content_type,
                (await response.json())["detail"],
                response.headers.get("WWW-Authenticate"),
            )
        return answers

    answers = run(waiter_settings(app, API_KEYS=("k1", "k2")), scenario)
    assert {name: answer[:2] for name, answer in answers.items()} == {
        "bad wait": (422, "application/problem+json"),
        "not uuid4": (404, "application/problem+json"),
        "unknown": (404, "application/problem+json"),
        "no key": (401, "application/problem+json"),
        "wrong key": (401, "application/problem+json"),
    }
    assert answers["no key"][3] == 'Bearer realm="api"'
    assert "'wait' must be a number" in answers["bad wait"][2]


def test_the_waiter_takes_every_node_of_a_broker_failover_list_in_order():
    urls = broker_urls("pyamqp://guest:guest@10.0.0.1:5672//; amqp://guest:guest@10.0.0.2:5672//;")
    assert urls == ["amqp://guest:guest@10.0.0.1:5672//", "amqp://guest:guest@10.0.0.2:5672//"]

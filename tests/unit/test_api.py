"""The HTTP contract on SQLite and an in-memory broker: status codes, bodies, and what is published."""

import logging
from pathlib import Path

import pytest
from sqlalchemy import event, text

from jobs.broker import job_queue_names
from jobs.database import db
from jobs.records import FAILED, PENDING, Prediction, done_outcome, failed_outcome, record_outcomes
from tests.conftest import SAMPLES, UNREACHABLE_BROKER, b64, drain_queue, image_bytes
from tests.support.batches import tar_bytes


def post_image(client, data: bytes, name="photo.jpg", content_type="application/json", path="/inference/image"):
    return client.post(path, json=None, data=f'{{"name": "{name}", "data": "{b64(data)}"}}', content_type=content_type)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "text/plain; charset=utf-8"])
@pytest.mark.parametrize("path", ["/inference/image", "/inference/image/"])
def test_post_accepts_json_under_any_content_type_and_both_paths(client, published, content_type, path):
    response = post_image(client, image_bytes(), content_type=content_type, path=path)
    assert response.status_code == 202
    prediction_uuid = response.get_json()["uuid"]
    assert response.headers["Location"] == f"/predictions/{prediction_uuid}"
    assert len(published()) == 1


def test_post_records_pending_row_and_publishes_uuid_and_url_not_bytes(app, client, published):
    data = (SAMPLES / "elephant.jpg").read_bytes()
    response = post_image(client, data, name="elephant.jpg")
    prediction_uuid = response.get_json()["uuid"]

    with app.app_context():
        row = db.session.get(Prediction, prediction_uuid)
        assert (row.status, row.name) == (PENDING, "elephant.jpg")
        assert app.extensions["image_store"].read(row.image_url) == data

    [message] = published()
    assert message.headers["task"] == "classify_image"
    assert message.headers["id"] == prediction_uuid
    args, kwargs, _ = message.payload
    assert args == [prediction_uuid, row.image_url]
    assert len(message.body) < 1024, "the message must carry the URL, never the image"


def test_get_pending_answers_202_with_retry_after(client):
    prediction_uuid = post_image(client, image_bytes()).get_json()["uuid"]
    for path in (f"/predictions/{prediction_uuid}", f"/predictions/{prediction_uuid}/"):
        response = client.get(path)
        assert response.status_code == 202
        assert response.headers["Retry-After"]
        assert response.get_json() == {"uuid": prediction_uuid, "status": "pending"}


def test_get_done_answers_prediction_confidence_and_top5(app, client):
    prediction_uuid = post_image(client, image_bytes()).get_json()["uuid"]
    top5 = [{"label": "dogsled", "score": 0.9}, {"label": "malamute", "score": 0.05}]
    model = {
        "model_name": "mobilenet_v1_0.75_224",
        "model_runtime": "litert",
        "weights_sha256": "0123456789abcdef",
        "converted_sha256": "fedcba9876543210",
    }
    with app.app_context():
        record_outcomes({prediction_uuid: done_outcome("dogsled", 0.9, top5)}, model)
        finished_at = db.session.get(Prediction, prediction_uuid).finished_at

    response = client.get(f"/predictions/{prediction_uuid}")
    assert response.status_code == 200
    assert response.get_json() == {
        "uuid": prediction_uuid,
        "status": "done",
        "prediction": "dogsled",
        "confidence": 0.9,
        "top5": top5,
        "model": {
            "name": "mobilenet_v1_0.75_224",
            "runtime": "litert",
            "weights_sha256": "0123456789abcdef",
            "converted_sha256": "fedcba9876543210",
        },
        "finished_at": finished_at.isoformat(timespec="microseconds") + "Z",
    }


def test_get_failed_answers_200_with_error_so_clients_stop_polling(app, client):
    prediction_uuid = post_image(client, image_bytes()).get_json()["uuid"]
    with app.app_context():
        record_outcomes({prediction_uuid: failed_outcome("image file gone")})
    body = client.get(f"/predictions/{prediction_uuid}").get_json()
    assert body == {
        "uuid": prediction_uuid,
        "status": FAILED,
        "error": "image file gone",
        "finished_at": body["finished_at"],
    }
    assert body["finished_at"].endswith("Z")


def test_result_is_recorded_once_even_when_redelivered(app, client):
    prediction_uuid = post_image(client, image_bytes()).get_json()["uuid"]
    other_uuid = post_image(client, image_bytes()).get_json()["uuid"]
    with app.app_context():
        assert record_outcomes({prediction_uuid: done_outcome("dogsled", 0.9, [])}) == {prediction_uuid}
        finished_at = db.session.get(Prediction, prediction_uuid).updated_at
        # Only the rows this call changed are reported: the worker's "recorded" lines and counters rely on it.
        assert record_outcomes(
            {prediction_uuid: done_outcome("pencil_sharpener", 0.1, []), other_uuid: failed_outcome("unreadable")}
        ) == {other_uuid}
        assert record_outcomes({prediction_uuid: failed_outcome("late failure")}) == set()
        db.session.expire_all()
        row = db.session.get(Prediction, prediction_uuid)
        assert (row.status, row.prediction, row.updated_at) == ("done", "dogsled", finished_at)


@pytest.mark.parametrize(
    "bad_id",
    [
        "abc",
        "00000000-0000-0000-0000-000000000000",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "'; DROP TABLE predictions; --",
        "1b4e28ba2fa141d2883f0016d3cca427",
        "{1b4e28ba-2fa1-41d2-883f-0016d3cca427}",
        "urn:uuid:1b4e28ba-2fa1-41d2-883f-0016d3cca427",
        "1b4e28ba-2fa1-41d2-883f-0016d3cca427%0A",
        "１b4e28ba-2fa1-41d2-883f-0016d3cca427",
        "%00",
        "a" * 10_000,
    ],
)
def test_get_malformed_or_non_uuid4_is_404_json_without_a_query(app, client, bad_id):
    statements = []
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    response = client.get(f"/predictions/{bad_id}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert "UUID4" in response.get_json()["detail"]
    assert statements == [], "a malformed id must never reach the database"


def test_get_unknown_uuid_is_404_json(client):
    response = client.get("/predictions/1b4e28ba-2fa1-41d2-883f-0016d3cca427")
    assert response.status_code == 404
    assert response.get_json()["status"] == 404


def test_database_failure_answers_503_and_publishes_nothing(app, client, published):
    with app.app_context():
        db.session.execute(text("DROP TABLE predictions"))
        db.session.commit()
    response = post_image(client, image_bytes())
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "database" in response.get_json()["detail"]
    assert published() == []


def test_publish_failure_keeps_job_pending_and_sweeper_publishes_it(make_app, app, client, published):
    import tasks.sweeper  # noqa: F401  registers the worker's sweeper with every Celery app

    broker_down = make_app(broker_url=UNREACHABLE_BROKER)
    response = post_image(broker_down.test_client(), image_bytes())
    assert response.status_code == 202, "the row is committed, so the job is accepted"
    prediction_uuid = response.get_json()["uuid"]
    assert client.get(f"/predictions/{prediction_uuid}").status_code == 202

    republish_stale_pending = app.extensions["celery"].tasks["republish_stale_pending"]
    assert republish_stale_pending() == 1
    [message] = published()
    assert message.headers["id"] == prediction_uuid


def test_the_sweeper_republishes_a_batch_job_to_its_clients_bulk_lane(app, client, published):
    import tasks.sweeper  # noqa: F401  registers the worker's sweeper with every Celery app

    published()
    response = client.post("/batches", data=tar_bytes([("a.jpg", image_bytes())]), content_type="application/x-tar")
    assert response.status_code == 202
    settings = app.extensions["settings"]
    names = job_queue_names(settings.CELERY_QUEUE, settings.BULK_LANES)
    [lane] = [name for name in names if drain_queue(app, name)]
    assert lane != settings.CELERY_QUEUE, "a batch's job is bulk work"

    assert app.extensions["celery"].tasks["republish_stale_pending"]() == 1
    assert [name for name in names if drain_queue(app, name)] == [lane], "republished to the same lane"


def test_the_sweeper_neither_republishes_nor_fails_a_job_a_worker_ended_after_its_select(app, client, published):
    from jobs.records import done_outcome, record_outcomes
    from tasks.sweeper import settle, stale_pending

    prediction_uuid = post_image(client, image_bytes()).get_json()["uuid"]
    published()
    with app.app_context():
        stale = stale_pending()
        assert [row.uuid for row in stale] == [prediction_uuid]
        record_outcomes({prediction_uuid: done_outcome("dogsled", 0.9, [{"label": "dogsled", "score": 0.9}])})
        assert settle(stale) == (set(), set())
    assert published() == []
    assert client.get(f"/predictions/{prediction_uuid}").get_json()["status"] == "done"


def test_health_reports_each_dependency(make_app, client):
    assert client.get("/health").get_json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok"},
        "workers": [],
    }
    response = make_app(broker_url=UNREACHABLE_BROKER).test_client().get("/health")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "unreachable"},
        "workers": [],
    }


def test_wrong_method_is_a_405_problem_that_says_what_is_allowed(client):
    response = client.put("/inference/image")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "POST" in response.headers["Allow"]


HOSTILE_NAME = "../../etc/passwd\n2024-01-01 INFO forged line\x1b[31m\x00\u2028/"


def test_name_is_stored_as_data_never_as_a_path_and_logged_escaped(app, client, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="webapp.predictions.views")
    response = client.post("/inference/image", json={"name": HOSTILE_NAME, "data": b64(image_bytes())})
    assert response.status_code == 202, response.get_data(as_text=True)
    prediction_uuid = response.get_json()["uuid"]

    with app.app_context():
        row = db.session.get(Prediction, prediction_uuid)
    assert row.name == HOSTILE_NAME
    assert Path(row.image_url.removeprefix("file://")).name == f"{prediction_uuid}.jpg"
    stored = [path for path in (tmp_path / "images").rglob("*") if path.is_file()]
    assert [path.name for path in stored] == [f"{prediction_uuid}.jpg"]

    [line] = [record.getMessage() for record in caplog.records if prediction_uuid in record.getMessage()]
    assert line.isprintable(), line
    assert "\\n2024-01-01 INFO forged line" in line

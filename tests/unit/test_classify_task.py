"""The batch task's bookkeeping on SQLite: outcomes per job, poison isolation, redelivery.

The network is replaced by a small stand-in classifier so that a "poison" image
(one that makes the model raise) can be made on purpose; the real model is
exercised end to end in tests/integration.
"""

import logging
from pathlib import Path
from urllib.parse import urlparse

import pytest

import tasks.classify  # noqa: F401  registers the batch task with every Celery app
from jobs.database import db
from jobs.records import Prediction
from tasks.state import worker_state
from tests.conftest import b64, image_bytes
from tests.support.hostile_images import png_cut_stream_in_whole_chunks
from tests.support.stand_in_classifier import StandInClassifier, run_batch

POISON_COLOR = (0, 255, 0)


@pytest.fixture
def classifier(monkeypatch):
    stand_in = StandInClassifier()
    monkeypatch.setattr(worker_state, "classifier", stand_in)
    return stand_in


def submit(client, color=(200, 30, 30)) -> str:
    response = client.post("/inference/image", json={"name": "x", "data": b64(image_bytes(fmt="PNG", color=color))})
    return response.get_json()["uuid"]


def statuses(app, uuids):
    with app.app_context():
        return [db.session.get(Prediction, u).to_json() for u in uuids]


def test_a_batch_is_one_model_call_and_every_job_gets_its_result(app, client, classifier):
    uuids = [submit(client) for _ in range(5)]
    assert run_batch(app, uuids) is True
    assert classifier.batch_sizes == [5]
    assert [row["prediction"] for row in statuses(app, uuids)] == ["class_7"] * 5


def test_a_poison_image_fails_alone_and_the_rest_of_its_batch_completes(app, client, classifier):
    good = [submit(client) for _ in range(3)]
    poison = submit(client, color=POISON_COLOR)
    assert run_batch(app, good + [poison]) is True, "the batch is committed, not requeued forever"
    rows = statuses(app, good + [poison])
    assert [row["status"] for row in rows] == ["done", "done", "done", "failed"]
    assert "the model failed on this image: kernel crashed" in rows[3]["error"]


def test_a_vanished_image_fails_with_its_reason(app, client, classifier):
    prediction_uuid = submit(client)
    with app.app_context():
        url = db.session.get(Prediction, prediction_uuid).image_url
    Path(urlparse(url).path).unlink()
    run_batch(app, [prediction_uuid])
    [row] = statuses(app, [prediction_uuid])
    assert row["status"] == "failed"
    assert row["error"].startswith(f"image {Path(urlparse(url).path).name} is not on this worker's disk")


def test_redelivered_jobs_are_not_classified_or_written_again(app, client, classifier):
    prediction_uuid = submit(client)
    run_batch(app, [prediction_uuid])
    first = statuses(app, [prediction_uuid])
    run_batch(app, [prediction_uuid, prediction_uuid])
    assert classifier.batch_sizes == [1], "a done job is skipped"
    assert statuses(app, [prediction_uuid]) == first


def test_oversized_images_fail_alone_before_they_are_decoded(make_app, app, client, classifier):
    """A bomb beyond Pillow's own limit used to raise out of the batch, which was then requeued forever."""
    worker_app = make_app(MAX_IMAGE_PIXELS=5000)  # a worker with a lower limit than the web's
    good, over_limit = submit(client), submit(client)
    with app.app_context():
        Path(urlparse(db.session.get(Prediction, over_limit).image_url).path).write_bytes(
            image_bytes(fmt="PNG", size=(100, 100))
        )
        bomb_url = app.extensions["image_store"].save("bomb.png", image_bytes(mode="L", fmt="PNG", size=(20000, 20000)))
        bomb = "0b0b0b0b-0000-4000-8000-000000000000"
        db.session.add(Prediction(uuid=bomb, name="bomb.png", image_url=bomb_url))
        db.session.commit()
    assert run_batch(worker_app, [good, over_limit, bomb]) is True
    rows = statuses(app, [good, over_limit, bomb])
    assert [row["status"] for row in rows] == ["done", "failed", "failed"]
    assert rows[1]["error"] == "The PNG image is 100x100 pixels; the limit is 5000 pixels."
    assert rows[2]["error"] == "The PNG image is 20000x20000 pixels; the limit is 5000 pixels."
    assert classifier.batch_sizes == [1]


def test_an_undecodable_image_fails_with_one_warning_line_and_no_traceback(app, client, classifier, caplog):
    """A damaged file is expected input: its refusal is a WARNING line, never ERROR with a traceback."""
    data = png_cut_stream_in_whole_chunks()
    response = client.post("/inference/image", json={"name": "x", "data": b64(data)})
    assert response.status_code == 202, "the structure is intact: only the decoder can tell"
    prediction_uuid = response.get_json()["uuid"]
    with caplog.at_level(logging.INFO, logger="tasks.classify"):
        run_batch(app, [prediction_uuid])
    [row] = statuses(app, [prediction_uuid])
    assert row["status"] == "failed" and row["error"].startswith("the image could not be decoded: ")
    [line] = [record for record in caplog.records if "not decodable" in record.getMessage()]
    assert line.levelno == logging.WARNING and line.exc_info is None and "\n" not in line.getMessage()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]

"""The whole pipeline for real: Gunicorn → MariaDB row → RabbitMQ → Celery worker → Keras → GET."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import SAMPLES
from tests.support.api import ELEPHANTS, classify, post, wait_for_result
from tests.support.photos import shared_images


def test_server_status(base_url):
    response = requests.get(f"{base_url}/health", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("status", "checks")} == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok"},
    }


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
def test_endpoint_formats(base_url, content_type):
    response = post(base_url, SAMPLES / "elephant.jpg", content_type)
    assert response.status_code == 202
    assert set(response.json()) == {"uuid"}
    prediction_uuid = response.json()["uuid"]
    assert uuid.UUID(prediction_uuid).version == 4
    assert response.headers["Location"] == f"/predictions/{prediction_uuid}"

    result = wait_for_result(base_url, prediction_uuid)
    assert set(result) == {"uuid", "status", "prediction", "confidence", "top5", "model", "finished_at"}
    assert result["uuid"] == prediction_uuid and result["status"] == "done"
    assert [entry["label"] for entry in result["top5"]][0] == result["prediction"]
    scores = [entry["score"] for entry in result["top5"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert result["confidence"] == scores[0]

    trailing = requests.get(f"{base_url}/predictions/{prediction_uuid}/", timeout=5)
    assert trailing.status_code == 200 and trailing.json() == result


def test_expected_inference_on_samples(base_url):
    assert classify(base_url, SAMPLES / "elephant.jpg")["prediction"] in ELEPHANTS
    assert classify(base_url, SAMPLES / "soccer_ball.jpg")["prediction"] == "soccer_ball"
    assert classify(base_url, SAMPLES / "bmw.png")["prediction"] == "convertible"


@pytest.fixture(scope="module")
def keras_top1():
    """Top-1 of in-process Keras through its own image loading, the reference the service must match."""
    import numpy as np
    from keras.applications import mobilenet
    from keras.utils import img_to_array, load_img

    model = mobilenet.MobileNet(alpha=0.75, weights="imagenet")
    paths = shared_images()
    batch = np.stack([img_to_array(load_img(p, target_size=(224, 224), interpolation="bilinear")) for p in paths])
    probabilities = model.predict(mobilenet.preprocess_input(batch), verbose=0)
    decoded = mobilenet.decode_predictions(probabilities, top=1)
    return {path.name: top[0][1] for path, top in zip(paths, decoded)}


def test_served_top1_matches_in_process_keras_on_every_shared_image(base_url, keras_top1):
    paths = shared_images()
    with ThreadPoolExecutor(max_workers=8) as pool:
        served = dict(zip((p.name for p in paths), pool.map(lambda p: classify(base_url, p)["prediction"], paths)))
    mismatches = {name: (served[name], keras_top1[name]) for name in served if served[name] != keras_top1[name]}
    assert len(served) == 104
    assert mismatches == {}


def test_row_in_mariadb_holds_the_url_and_result(base_url, service_env):
    response = post(base_url, SAMPLES / "soccer_ball.jpg")
    prediction_uuid = response.json()["uuid"]
    wait_for_result(base_url, prediction_uuid)
    engine = create_engine(service_env["DATABASE_URL"])
    with engine.connect() as connection:
        query = text("SELECT * FROM predictions WHERE uuid = :u")
        row = connection.execute(query, {"u": prediction_uuid}).mappings().one()
    engine.dispose()
    assert row["name"] == "soccer_ball.jpg" and row["status"] == "done" and row["prediction"] == "soccer_ball"
    assert row["image_url"].startswith("file://") and row["image_url"].endswith(f"{prediction_uuid}.jpg")
    assert row["updated_at"] >= row["created_at"]


def test_missing_image_file_ends_failed_with_a_reason(base_url, service_app):
    from jobs.database import db
    from jobs.queue import publish_job
    from jobs.records import Prediction

    prediction_uuid = str(uuid.uuid4())
    with service_app.app_context():
        missing_url = (Path(service_app.instance_path) / "images" / "gone.jpg").as_uri()
        db.session.add(Prediction(uuid=prediction_uuid, name="gone.jpg", image_url=missing_url))
        db.session.commit()
        assert publish_job(prediction_uuid, missing_url)
    result = wait_for_result(base_url, prediction_uuid)
    assert result["status"] == "failed"
    assert "not on this worker's disk" in result["error"]


def test_redelivered_job_is_recorded_once(service, service_app):
    from jobs.database import db
    from jobs.queue import publish_job
    from jobs.records import Prediction

    base_url, _, worker = service
    prediction_uuid = post(base_url, SAMPLES / "bmw.png").json()["uuid"]
    first = wait_for_result(base_url, prediction_uuid)
    with service_app.app_context():
        row = db.session.get(Prediction, prediction_uuid)
        finished_at = row.updated_at
        assert publish_job(prediction_uuid, row.image_url)
    worker.wait_for(f"prediction {prediction_uuid} already done; redelivery ignored", timeout=60)
    assert wait_for_result(base_url, prediction_uuid) == first
    with service_app.app_context():
        db.session.expire_all()
        assert db.session.get(Prediction, prediction_uuid).updated_at == finished_at

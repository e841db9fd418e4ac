"""Provenance: each done result records the model (name, runtime, file hashes) and when it finished;
workers publish their model for /health."""

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import update

import tasks.classify  # noqa: F401  registers the batch task with every Celery app
from jobs import workers
from jobs.database import db
from jobs.records import Prediction
from models import runtime
from models.litert import converted_path
from models.weights import ModelFiles
from tasks.state import worker_state
from tests.conftest import b64, image_bytes
from tests.support.stand_in_classifier import StandInClassifier, run_batch


@pytest.fixture
def model_files(tmp_path):
    weights = tmp_path / "mobilenet_7_5_224_tf.h5"
    weights.write_bytes(b"weights " * 100)
    index = tmp_path / "imagenet_class_index.json"
    index.write_text("{}")
    files = ModelFiles(weights, index, in_keras_cache=False)
    converted = converted_path(files, tmp_path / "cache")
    converted.parent.mkdir()
    converted.write_bytes(b"flatbuffer")
    return files, tmp_path / "cache"


def short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def test_provenance_hashes_the_weights_and_for_litert_the_converted_file(model_files):
    files, cache = model_files
    assert runtime.provenance(files, "litert", cache) == {
        "model_name": "mobilenet_v1_0.75_224",
        "model_runtime": "litert",
        "weights_sha256": short(b"weights " * 100),
        "converted_sha256": short(b"flatbuffer"),
    }
    assert runtime.provenance(files, "keras", cache)["converted_sha256"] is None


def test_a_classified_job_records_the_workers_model_and_finish_time(app, client, monkeypatch, model_files):
    description = runtime.provenance(model_files[0], "litert", model_files[1])
    monkeypatch.setattr(worker_state, "classifier", StandInClassifier())
    monkeypatch.setattr(worker_state, "model_provenance", description)
    prediction_uuid = client.post(
        "/inference/image", json={"name": "x", "data": b64(image_bytes(fmt="PNG"))}
    ).get_json()["uuid"]
    run_batch(app, [prediction_uuid])
    body = client.get(f"/predictions/{prediction_uuid}").get_json()
    assert body["model"] == {
        "name": "mobilenet_v1_0.75_224",
        "runtime": "litert",
        "weights_sha256": description["weights_sha256"],
        "converted_sha256": description["converted_sha256"],
    }
    with app.app_context():
        row = db.session.get(Prediction, prediction_uuid)
        assert row.created_at <= row.finished_at
        assert body["finished_at"] == row.finished_at.isoformat(timespec="microseconds") + "Z"


def test_health_lists_the_workers_heard_from_lately_with_their_model(app, client):
    model = {
        "model_name": "mobilenet_v1_0.75_224",
        "model_runtime": "keras",
        "weights_sha256": "ab" * 8,
        "converted_sha256": None,
    }
    with app.app_context():
        workers.heartbeat("w1@host-a", model)
        workers.heartbeat("w2@host-b", {**model, "model_runtime": "litert", "converted_sha256": "cd" * 8})
        workers.heartbeat("w1@host-a", model)  # a second beat updates, never duplicates
        workers.heartbeat("gone@host-c", model)
        db.session.execute(
            update(workers.WorkerRecord)
            .where(workers.WorkerRecord.hostname == "gone@host-c")
            .values(last_seen=workers.WorkerRecord.last_seen - timedelta(minutes=5))
        )
        db.session.commit()
    listed = client.get("/health").get_json()["workers"]
    assert [(w["hostname"], w["model"]["runtime"], w["model"]["converted_sha256"]) for w in listed] == [
        ("w1@host-a", "keras", None),
        ("w2@host-b", "litert", "cd" * 8),
    ]
    with app.app_context():
        workers.forget("w1@host-a")
    assert [w["hostname"] for w in client.get("/health").get_json()["workers"]] == ["w2@host-b"]

"""DELETE /predictions/<uuid>: a pending job is cancelled once and for all; an ended one cannot be."""

import pytest

import tasks.classify  # noqa: F401  registers the batch task with every Celery app
from jobs.database import db
from jobs.records import Prediction, done_outcome, failed_outcome, record_outcomes
from tasks.state import worker_state
from tests.conftest import b64, image_bytes
from tests.support.stand_in_classifier import StandInClassifier, run_batch


@pytest.fixture
def classifier(monkeypatch):
    stand_in = StandInClassifier()
    monkeypatch.setattr(worker_state, "classifier", stand_in)
    return stand_in


def submit(client) -> str:
    return client.post("/inference/image", json={"name": "x", "data": b64(image_bytes(fmt="PNG"))}).get_json()["uuid"]


@pytest.mark.parametrize("path", ["/predictions/{}", "/predictions/{}/"])
def test_cancelling_a_pending_job_answers_its_row_and_again_the_same(client, path):
    prediction_uuid = submit(client)
    first = client.delete(path.format(prediction_uuid))
    assert first.status_code == 200
    assert first.get_json() == {"uuid": prediction_uuid, "status": "cancelled"}
    again = client.delete(path.format(prediction_uuid))
    assert (again.status_code, again.get_json()) == (200, first.get_json())
    got = client.get(f"/predictions/{prediction_uuid}")
    assert (got.status_code, got.get_json()) == (200, first.get_json())


@pytest.mark.parametrize("outcome", [done_outcome("dogsled", 0.9, []), failed_outcome("gone")])
def test_an_ended_job_cannot_be_cancelled(app, client, outcome):
    prediction_uuid = submit(client)
    with app.app_context():
        record_outcomes({prediction_uuid: outcome})
    before = client.get(f"/predictions/{prediction_uuid}").get_json()
    response = client.delete(f"/predictions/{prediction_uuid}")
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert f"already ended ({outcome['status']})" in response.get_json()["detail"]
    assert client.get(f"/predictions/{prediction_uuid}").get_json() == before


@pytest.mark.parametrize("job", ["4b0e7c1e-2d5f-4a8b-9c3d-1e2f3a4b5c6d", "not-a-uuid"])
def test_cancelling_an_unknown_job_is_a_404(client, job):
    response = client.delete(f"/predictions/{job}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_the_worker_skips_a_cancelled_job_and_a_late_result_does_not_overwrite_it(app, client, classifier):
    cancelled, kept = submit(client), submit(client)
    client.delete(f"/predictions/{cancelled}")
    run_batch(app, [cancelled, kept])
    assert classifier.batch_sizes == [1], "only the pending job reached the model"
    with app.app_context():
        record_outcomes({cancelled: done_outcome("late", 0.5, [])}, {"model_name": "m"})
        row = db.session.get(Prediction, cancelled)
        assert (row.status, row.prediction, row.finished_at, row.model_name) == ("cancelled", None, None, None)
        assert db.session.get(Prediction, kept).status == "done"


def test_cancelling_needs_the_api_key_when_keys_are_on(make_app):
    client = make_app(API_KEYS=("k",)).test_client()
    prediction_uuid = client.post(
        "/inference/image", json={"name": "x", "data": b64(image_bytes())}, headers={"Authorization": "Bearer k"}
    ).get_json()["uuid"]
    assert client.delete(f"/predictions/{prediction_uuid}").status_code == 401
    assert client.delete(f"/predictions/{prediction_uuid}", headers={"Authorization": "Bearer k"}).status_code == 200

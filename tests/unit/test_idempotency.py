"""Idempotency-Key on POST: a retry gets the same job, stored once; a reused key with another body is refused."""

import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

import jobs.submit
from jobs.database import db
from jobs.idempotency import IdempotencyKey
from jobs.records import Prediction, utcnow
from tests.conftest import SAMPLES, b64, image_bytes

JPEG = (SAMPLES / "elephant.jpg").read_bytes()


def as_json(client, key, image=JPEG, name="e.jpg", headers=None):
    return client.post(
        "/inference/image", json={"name": name, "data": b64(image)}, headers={"Idempotency-Key": key, **(headers or {})}
    )


def as_multipart(client, key, image=JPEG, name="e.jpg"):
    return client.post(
        "/inference/image", data={"image": (io.BytesIO(image), "f.jpg"), "name": name}, headers={"Idempotency-Key": key}
    )


def as_raw(client, key, image=JPEG, name="e.jpg"):
    return client.post(
        f"/inference/image?name={name}", data=image, content_type="image/jpeg", headers={"Idempotency-Key": key}
    )


def counts(app, tmp_path):
    with app.app_context():
        rows = db.session.scalar(select(func.count()).select_from(Prediction))
        keys = db.session.scalar(select(func.count()).select_from(IdempotencyKey))
    return rows, keys, sum(1 for path in (tmp_path / "images").rglob("*") if path.is_file())


@pytest.mark.parametrize("send", [as_json, as_multipart, as_raw])
def test_a_retry_with_the_same_key_and_body_gets_the_same_202_and_stores_nothing(
    app, client, published, tmp_path, send
):
    first = send(client, "retry-1")
    second = send(client, "retry-1")
    assert first.status_code == second.status_code == 202
    assert first.get_json() == second.get_json()
    assert first.headers["Location"] == second.headers["Location"]
    assert counts(app, tmp_path) == (1, 1, 1)
    assert len(published()) == 1


def test_the_same_image_and_name_is_the_same_body_whichever_way_it_is_sent(client):
    uuids = {send(client, "same").get_json()["uuid"] for send in (as_json, as_multipart, as_raw)}
    assert len(uuids) == 1


@pytest.mark.parametrize("changed", [{"image": image_bytes()}, {"name": "other.jpg"}])
def test_the_same_key_with_another_body_is_a_422_and_keeps_the_first_job(app, client, tmp_path, changed):
    first = as_json(client, "k")
    response = as_json(client, "k", **changed)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "already used with a different image or name" in response.get_json()["detail"]
    assert counts(app, tmp_path) == (1, 1, 1)
    assert as_json(client, "k").get_json() == first.get_json()


def test_without_a_key_every_post_is_a_new_job(client):
    assert as_json(client, "a").get_json() != as_json(client, "b").get_json()
    plain = [client.post("/inference/image", json={"name": "x", "data": b64(JPEG)}).get_json() for _ in range(2)]
    assert plain[0] != plain[1]


def test_keys_are_scoped_per_api_key(make_app):
    client = make_app(API_KEYS=("key-a", "key-b")).test_client()
    a = as_json(client, "shared", headers={"Authorization": "Bearer key-a"})
    b = as_json(client, "shared", headers={"Authorization": "Bearer key-b"})
    assert a.status_code == b.status_code == 202
    assert a.get_json() != b.get_json()
    assert as_json(client, "shared", headers={"Authorization": "Bearer key-a"}).get_json() == a.get_json()


def test_an_expired_key_makes_a_new_job_and_takes_the_key_over(app, client):
    first = as_json(client, "old").get_json()["uuid"]
    with app.app_context():
        db.session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(days=2)))
        db.session.commit()
    second = as_json(client, "old", image=image_bytes()).get_json()["uuid"]
    assert second != first
    assert as_json(client, "old", image=image_bytes()).get_json()["uuid"] == second


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there", " padded"])
def test_a_malformed_key_is_a_400(client, published, key):
    response = client.post(
        "/inference/image",
        json={"name": "x", "data": b64(JPEG)},
        headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.get_json()["detail"]
    assert published() == []


def test_losing_the_race_for_a_key_answers_with_the_winners_job(app, client, published, tmp_path, monkeypatch):
    """Two requests with one key both found it unused; the second insert hits the primary key."""
    winner = as_json(client, "race").get_json()["uuid"]
    published()
    real = jobs.submit.find_key
    calls = []

    def first_look_misses(*args):
        calls.append(args)
        return None if len(calls) == 1 else real(*args)  # as if the winner had not committed yet

    monkeypatch.setattr(jobs.submit, "find_key", first_look_misses)
    response = as_json(client, "race")
    assert response.status_code == 202
    assert response.get_json()["uuid"] == winner
    assert len(calls) == 2
    assert counts(app, tmp_path) == (1, 1, 1), "the loser's image and row are gone"
    assert published() == []

"""Retention on SQLite and real stores: old jobs go with their images, expired idempotency keys
and orphan images go too, a bounded chunk at a time, and nothing newer is touched."""

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from celeryconfig import celery_settings
from sqlalchemy import func, select, update

from config.settings import load_settings
from jobs.database import db
from jobs.idempotency import IdempotencyKey
from jobs.imagestore import open_image_store
from jobs.records import Prediction, utcnow
from tasks import retention
from tasks.state import worker_state
from tests.conftest import b64, image_bytes


def submit(client, key=None) -> str:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        "/inference/image", json={"name": "x", "data": b64(image_bytes(fmt="PNG"))}, headers=headers
    ).get_json()["uuid"]


def age(app, uuids, days):
    with app.app_context():
        db.session.execute(
            update(Prediction).where(Prediction.uuid.in_(uuids)).values(created_at=utcnow() - timedelta(days=days))
        )
        db.session.commit()


def image_path(app, prediction_uuid) -> Path:
    with app.app_context():
        return Path(urlparse(db.session.get(Prediction, prediction_uuid).image_url).path)


def remaining(app) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(select(Prediction.uuid)))


def test_jobs_older_than_the_retention_go_with_their_images_and_keys(make_app):
    app = make_app(RETENTION_DAYS=30)
    client = app.test_client()
    old = [submit(client, key=f"k{i}") for i in range(3)]
    new = [submit(client) for _ in range(2)]
    age(app, old, days=31)
    age(app, new[:1], days=29)
    old_files = [image_path(app, job) for job in old]
    with app.app_context():
        counts = retention.purge_expired()
        assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    assert counts["jobs"] == 3
    assert remaining(app) == set(new)
    assert not any(path.exists() for path in old_files)
    assert all(image_path(app, job).exists() for job in new)


def test_without_retention_days_everything_is_kept(app, client):
    jobs = [submit(client) for _ in range(2)]
    age(app, jobs, days=3650)
    with app.app_context():
        assert retention.purge_expired()["jobs"] == 0
    assert remaining(app) == set(jobs)


def test_old_jobs_are_deleted_in_bounded_chunks(app, client):
    jobs = [submit(client) for _ in range(5)]
    age(app, jobs, days=2)
    with app.app_context():
        assert retention.purge_old_jobs(utcnow() - timedelta(days=1), chunk=2, max_chunks=2) == 4
        assert len(remaining(app)) == 1
        assert retention.purge_old_jobs(utcnow() - timedelta(days=1), chunk=2, max_chunks=2) == 1
    assert remaining(app) == set()


def test_expired_idempotency_keys_are_forgotten_and_live_ones_kept(make_app):
    app = make_app(IDEMPOTENCY_TTL_SECONDS=3600)
    client = app.test_client()
    submit(client, key="old"), submit(client, key="fresh")
    with app.app_context():
        db.session.execute(
            update(IdempotencyKey).where(IdempotencyKey.key == "old").values(created_at=utcnow() - timedelta(hours=2))
        )
        db.session.commit()
        assert retention.purge_expired()["keys"] == 1
        assert list(db.session.scalars(select(IdempotencyKey.key))) == ["fresh"]
    assert len(remaining(app)) == 2, "forgetting a key keeps its job"


def test_orphan_images_past_the_grace_period_go_and_referenced_or_recent_ones_stay(app, client):
    kept = submit(client)
    store = app.extensions["image_store"]
    orphan_old = Path(urlparse(store.save(f"{uuid.uuid4()}.png", b"x")).path)
    orphan_new = Path(urlparse(store.save(f"{uuid.uuid4()}.png", b"y")).path)
    an_hour_ago = time.time() - 3600
    os.utime(orphan_old, (an_hour_ago, an_hour_ago))
    os.utime(image_path(app, kept), (an_hour_ago, an_hour_ago))
    with app.app_context():
        assert retention.purge_orphan_images(utcnow() - timedelta(minutes=30)) == 1
    assert not orphan_old.exists()
    assert orphan_new.exists() and image_path(app, kept).exists()


def test_the_orphan_sweep_walks_the_store_a_chunk_at_a_time(app):
    store = app.extensions["image_store"]
    orphans = [Path(urlparse(store.save(f"{uuid.uuid4()}.png", b"x")).path) for _ in range(5)]
    worker_state.orphan_cursor = ""
    later = utcnow() + timedelta(minutes=1)
    with app.app_context():
        passes = [retention.purge_orphan_images(later, chunk=2) for _ in range(3)]
    assert passes == [2, 2, 1]
    assert not any(path.exists() for path in orphans)


def test_s3_store_lists_keys_in_order_after_a_cursor(s3_endpoint):
    store = open_image_store(f"s3://bucket-{uuid.uuid4().hex[:8]}/uploads", s3_endpoint, s3_create_bucket=True)
    urls = sorted(store.save(f"{name}.png", b"x") for name in ("b", "a", "c"))
    first = store.list_images("", 2)
    assert [image.url for image in first] == urls[:2]
    assert [image.url for image in store.list_images(first[-1].key, 2)] == urls[2:]
    assert all(abs(image.modified - utcnow()) < timedelta(minutes=5) for image in first)


def test_orphans_in_an_s3_store_are_swept(make_app, s3_endpoint, monkeypatch):
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_endpoint)
    app = make_app(
        IMAGE_STORE_URL=f"s3://bucket-{uuid.uuid4().hex[:8]}/uploads",
        S3_ENDPOINT_URL=s3_endpoint,
        S3_CREATE_BUCKET=True,
    )
    client = app.test_client()
    kept = submit(client)
    store = app.extensions["image_store"]
    orphan = store.save(f"{uuid.uuid4()}.png", b"x")
    worker_state.orphan_cursor = ""
    with app.app_context():
        assert retention.purge_orphan_images(utcnow() + timedelta(minutes=1)) == 1
        kept_url = db.session.get(Prediction, kept).image_url
    assert [image.url for image in store.list_images("", 10)] == [kept_url]
    assert orphan != kept_url


def test_beat_runs_the_retention_task():
    schedule = celery_settings(load_settings({"CELERY_BROKER_URL": "memory://"}))["beat_schedule"]
    assert any(entry["task"] == "purge_expired" for entry in schedule.values())


@pytest.mark.parametrize("value, expected", [("", None), ("0", 0), ("30", 30)])
def test_retention_days_is_unset_by_default(value, expected):
    assert expected == load_settings({"RETENTION_DAYS": value}).RETENTION_DAYS

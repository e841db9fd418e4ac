"""Forgetting old work, in bounded chunks on beat's schedule.

- With ``RETENTION_DAYS`` set, jobs created longer ago are deleted with their images
  (unset, the default, keeps everything). A batch's images are parts of its one stored upload:
  the upload and the batch's row go once none of its jobs is left.
- Idempotency keys are forgotten once ``IDEMPOTENCY_TTL_SECONDS`` has passed.
- Images with no row (a row the database refused after its image was stored, a
  process killed in between) are deleted once ``ORPHAN_GRACE_SECONDS`` old, so an
  upload still being recorded is never taken. The store is walked a chunk per
  run, resuming after the last key seen (per process; a restart starts over).
"""

import logging
from datetime import timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy import delete, select

from config.settings import current_settings
from jobs.batches import Batch
from jobs.broker import PURGE_TASK
from jobs.database import db
from jobs.idempotency import IdempotencyKey
from jobs.idempotency import cutoff as key_cutoff
from jobs.records import Prediction, utcnow
from tasks.state import worker_state

logger = logging.getLogger(__name__)
CHUNK = 500
# At most this many chunks of each kind per run, so one run stays short.
MAX_CHUNKS = 20


@shared_task(name=PURGE_TASK)
def purge_expired() -> dict:
    settings = current_settings()
    counts = {"jobs": 0, "batches": 0, "keys": 0, "orphans": 0}
    if settings.RETENTION_DAYS:
        cutoff = utcnow() - timedelta(days=settings.RETENTION_DAYS)
        counts["jobs"] = purge_old_jobs(cutoff)
        counts["batches"] = purge_emptied_batches(cutoff)
    counts["keys"] = purge_expired_keys(settings.IDEMPOTENCY_TTL_SECONDS)
    counts["orphans"] = purge_orphan_images(utcnow() - timedelta(seconds=settings.ORPHAN_GRACE_SECONDS))
    if any(counts.values()):
        logger.info(
            "retention removed %(jobs)d jobs, %(batches)d batches, %(keys)d idempotency keys, "
            "%(orphans)d orphan images",
            counts,
        )
    return counts


def purge_old_jobs(created_before, chunk: int = CHUNK, max_chunks: int = MAX_CHUNKS) -> int:
    """Delete jobs created before ``created_before``: images first, so a failure leaves rows
    to try again next run rather than images nobody points at."""
    store = current_app.extensions["image_store"]
    removed = 0
    for _ in range(max_chunks):
        rows = db.session.execute(
            select(Prediction.uuid, Prediction.image_url)
            .where(Prediction.created_at < created_before)
            .order_by(Prediction.created_at)
            .limit(chunk)
        ).all()
        db.session.rollback()
        if not rows:
            break
        for row in rows:
            store.delete(row.image_url)
        uuids = [row.uuid for row in rows]
        db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.prediction_uuid.in_(uuids)))
        db.session.execute(delete(Prediction).where(Prediction.uuid.in_(uuids)))
        db.session.commit()
        removed += len(rows)
        if len(rows) < chunk:
            break
    return removed


def purge_emptied_batches(created_before, chunk: int = CHUNK) -> int:
    """Delete the batches created before ``created_before`` that have no job left, upload first
    (a part URL's delete does nothing, so ``purge_old_jobs`` leaves the upload to this)."""
    store = current_app.extensions["image_store"]
    has_jobs = select(Prediction.uuid).where(Prediction.batch_id == Batch.id).exists()
    emptied = db.session.execute(
        select(Batch.id, Batch.upload_url).where(Batch.created_at < created_before, ~has_jobs).limit(chunk)
    ).all()
    db.session.rollback()
    for row in emptied:
        if row.upload_url:
            store.delete(row.upload_url)
    if emptied:
        db.session.execute(delete(Batch).where(Batch.id.in_([row.id for row in emptied])))
        db.session.commit()
    return len(emptied)


def purge_expired_keys(ttl_seconds: int, chunk: int = CHUNK, max_chunks: int = MAX_CHUNKS) -> int:
    removed = 0
    for _ in range(max_chunks):
        keys = db.session.execute(
            select(IdempotencyKey.scope, IdempotencyKey.key)
            .where(IdempotencyKey.created_at < key_cutoff(ttl_seconds))
            .limit(chunk)
        ).all()
        for scope, key in keys:
            db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key))
        db.session.commit()
        removed += len(keys)
        if len(keys) < chunk:
            break
    return removed


def purge_orphan_images(modified_before, chunk: int = CHUNK) -> int:
    """Delete images older than ``modified_before`` that no row points at, from one chunk of the store."""
    store = current_app.extensions["image_store"]
    images = store.list_images(worker_state.orphan_cursor, chunk)
    worker_state.orphan_cursor = images[-1].key if len(images) == chunk else ""
    old = {image.url: image for image in images if image.modified < modified_before}
    if not old:
        return 0
    referenced = set(
        db.session.execute(select(Prediction.image_url).where(Prediction.image_url.in_(list(old)))).scalars()
    ) | set(db.session.execute(select(Batch.upload_url).where(Batch.upload_url.in_(list(old)))).scalars())
    db.session.rollback()
    orphans = [url for url in old if url not in referenced]
    for url in orphans:
        store.delete(url)
    if orphans:
        logger.info("deleted %d images that no job refers to", len(orphans))
    return len(orphans)

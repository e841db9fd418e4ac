"""Creating a job: store the image, record the row, then publish.

The order matters: a job is never published without its row, and a failed
publish leaves a pending row that the sweeper publishes again. A row the
database refuses takes its image with it, so nothing is left behind. With an
idempotency key, the key's row is inserted in the same transaction as the job's:
a retry finds it and gets the same uuid, and nothing is stored twice.
"""
import logging
import uuid

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from jobs.database import db
from jobs.idempotency import IdempotencyKey, body_hash, remembered_job
from jobs.queue import publish_job
from jobs.records import PENDING, Prediction, utcnow

logger = logging.getLogger(__name__)


class DatabaseUnavailable(RuntimeError):
    """The row could not be recorded; the image was removed again."""


def submit_job(name: str, image: bytes, extension: str, idempotency: tuple[str, str] | None = None) -> str:
    """Create a pending job for ``image`` and return its uuid.

    ``idempotency`` is (scope, key): a key already used with the same name and image
    returns that job's uuid; with another body it raises IdempotencyConflict.
    Raises ImageStoreUnavailable or DatabaseUnavailable; either way nothing is kept.
    """
    key_row = None
    if idempotency is not None:
        scope, key = idempotency
        digest = body_hash(name, image)
        try:
            existing = remembered_job(scope, key, digest, current_app.config["IDEMPOTENCY_TTL_SECONDS"])
        except SQLAlchemyError as error:
            db.session.rollback()
            raise DatabaseUnavailable(str(error)) from None
        if existing is not None:
            return existing
    prediction_uuid = str(uuid.uuid4())
    if idempotency is not None:
        # created_at set here, not by default: replacing an expired key is an UPDATE, where defaults don't apply.
        key_row = IdempotencyKey(scope=scope, key=key, body_sha256=digest, prediction_uuid=prediction_uuid,
                                 created_at=utcnow())
    store = current_app.extensions["image_store"]
    image_url = store.save(f"{prediction_uuid}.{extension}", image)
    try:
        db.session.add(Prediction(uuid=prediction_uuid, name=name, image_url=image_url, status=PENDING))
        if key_row is not None:
            db.session.add(key_row)
        db.session.commit()
    except SQLAlchemyError as error:
        db.session.rollback()
        store.delete(image_url)
        # Another request with the same key committed first (a duplicate key, or a deadlock
        # between the two inserts): answer with its job.
        winner = _winner(idempotency, digest) if key_row is not None else None
        if winner is not None:
            return winner
        logger.exception("could not record %s", prediction_uuid, extra={"uuid": prediction_uuid})
        raise DatabaseUnavailable(str(error)) from None
    publish_job(prediction_uuid, image_url)
    return prediction_uuid


def _winner(idempotency: tuple[str, str], digest: str) -> str | None:
    """The job another request recorded under this key, or None (then the failure was the database's)."""
    try:
        return remembered_job(*idempotency, digest, current_app.config["IDEMPOTENCY_TTL_SECONDS"])
    except SQLAlchemyError:
        db.session.rollback()
        return None

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
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from jobs.database import db
from jobs.idempotency import IdempotencyKey, body_hash, forget_expired_key, remembered_job
from jobs.queue import publish_job
from jobs.records import PENDING, Prediction

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
        ttl = current_app.config["IDEMPOTENCY_TTL_SECONDS"]
        digest = body_hash(name, image)
        try:
            existing = remembered_job(scope, key, digest, ttl)
            if existing is not None:
                return existing
            forget_expired_key(scope, key, ttl)
        except SQLAlchemyError as error:
            db.session.rollback()
            raise DatabaseUnavailable(str(error)) from None
    prediction_uuid = str(uuid.uuid4())
    if idempotency is not None:
        key_row = IdempotencyKey(scope=scope, key=key, body_sha256=digest, prediction_uuid=prediction_uuid)
    store = current_app.extensions["image_store"]
    image_url = store.save(f"{prediction_uuid}.{extension}", image)
    try:
        db.session.add(Prediction(uuid=prediction_uuid, name=name, image_url=image_url, status=PENDING))
        if key_row is not None:
            db.session.add(key_row)
        db.session.commit()
    except IntegrityError as error:
        # Another request with the same key committed first: answer with its job.
        db.session.rollback()
        store.delete(image_url)
        if key_row is None:
            raise DatabaseUnavailable(str(error)) from None
        try:
            winner = remembered_job(scope, key, digest, ttl)
        except SQLAlchemyError as error:
            db.session.rollback()
            raise DatabaseUnavailable(str(error)) from None
        if winner is None:  # the winner's key expired in between: vanishingly rare, the client retries
            raise DatabaseUnavailable("idempotency key changed while it was being recorded") from None
        return winner
    except SQLAlchemyError as error:
        db.session.rollback()
        logger.exception("could not record %s", prediction_uuid, extra={"uuid": prediction_uuid})
        store.delete(image_url)
        raise DatabaseUnavailable(str(error)) from None
    publish_job(prediction_uuid, image_url)
    return prediction_uuid

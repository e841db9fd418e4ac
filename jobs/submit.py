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

from config.settings import current_settings
from jobs.database import db
from jobs.idempotency import body_hash, cutoff, find_key, job_for, record_key
from jobs.imagestore import ImageStoreUnavailable
from jobs.queue import publish_job
from jobs.records import insert_prediction

logger = logging.getLogger(__name__)


class DatabaseUnavailable(RuntimeError):
    """The row could not be recorded; the image was removed again."""


def submit_job(
    name: str,
    image: bytes,
    extension: str,
    callback_url: str | None = None,
    idempotency: tuple[str, str] | None = None,
    client: str = "",
) -> str:
    """Create a pending job for ``image`` and return its uuid; ``callback_url`` (vetted) gets its result.

    ``client`` names whose job it is (the API key's id), for fair sharing (``jobs.queue``).
    ``idempotency`` is (scope, key): a key already used with the same name and image
    returns that job's uuid; with another body it raises IdempotencyConflict.
    Raises ImageStoreUnavailable or DatabaseUnavailable; either way nothing is kept.
    """
    ttl = current_settings().IDEMPOTENCY_TTL_SECONDS
    if idempotency is not None:
        digest = body_hash(name, image)
        try:
            known = find_key(*idempotency)
        except SQLAlchemyError as error:
            raise DatabaseUnavailable(str(error)) from None
        existing = job_for(known, digest, ttl)
        if existing is not None:
            return existing
    prediction_uuid = str(uuid.uuid4())
    store = current_app.extensions["image_store"]
    image_url = store.save(f"{prediction_uuid}.{extension}", image)
    try:
        with db.engine.begin() as connection:
            insert_prediction(prediction_uuid, name, image_url, callback_url, connection)
            if idempotency is not None:
                record_key(
                    connection,
                    *idempotency,
                    digest,
                    prediction_uuid,
                    expired_before=cutoff(ttl) if known is not None else None,
                )
    except SQLAlchemyError as error:
        _remove(store, image_url)
        # Another request with the same key committed first (a duplicate key, or a deadlock
        # between the two inserts): answer with its job.
        winner = _winner(idempotency, digest, ttl) if idempotency is not None else None
        if winner is not None:
            return winner
        logger.exception("could not record %s", prediction_uuid, extra={"uuid": prediction_uuid})
        raise DatabaseUnavailable(str(error)) from None
    publish_job(prediction_uuid, image_url, bulk=False, client=client)
    return prediction_uuid


def _winner(idempotency: tuple[str, str], digest: str, ttl: int) -> str | None:
    """The job another request recorded under this key, or None (then the failure was the database's)."""
    try:
        return job_for(find_key(*idempotency), digest, ttl)
    except SQLAlchemyError:
        return None


def _remove(store, image_url: str) -> None:
    try:
        store.delete(image_url)
    except ImageStoreUnavailable:  # the retention sweep removes it later
        logger.warning("could not remove %s after its row was refused", image_url, exc_info=True)

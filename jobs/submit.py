"""Creating a job: store the image, record the row, then publish.

The order matters: a job is never published without its row, and a failed
publish leaves a pending row that the sweeper publishes again. A row the
database refuses takes its image with it, so nothing is left behind.
"""
import logging
import uuid

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from jobs.imagestore import ImageStoreUnavailable
from jobs.queue import publish_job
from jobs.records import insert_prediction

logger = logging.getLogger(__name__)


class DatabaseUnavailable(RuntimeError):
    """The row could not be recorded; the image was removed again."""


def submit_job(name: str, image: bytes, extension: str, callback_url: str | None = None) -> str:
    """Create a pending job for ``image`` and return its uuid; ``callback_url`` (vetted) gets its result.

    Raises ImageStoreUnavailable or DatabaseUnavailable; either way nothing is kept.
    """
    prediction_uuid = str(uuid.uuid4())
    store = current_app.extensions["image_store"]
    image_url = store.save(f"{prediction_uuid}.{extension}", image)
    try:
        insert_prediction(prediction_uuid, name, image_url, callback_url)
    except SQLAlchemyError as error:
        logger.exception("could not record %s", prediction_uuid, extra={"uuid": prediction_uuid})
        _remove(store, image_url)
        raise DatabaseUnavailable(str(error)) from None
    publish_job(prediction_uuid, image_url)
    return prediction_uuid


def _remove(store, image_url: str) -> None:
    try:
        store.delete(image_url)
    except ImageStoreUnavailable:  # the retention sweep removes it later
        logger.warning("could not remove %s after its row was refused", image_url, exc_info=True)

"""Creating a job: store the image, record the row, then publish.

The order matters: a job is never published without its row, and a failed
publish leaves a pending row that the sweeper publishes again. A row the
database refuses takes its image with it, so nothing is left behind.
"""
import logging
import uuid

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from jobs.database import db
from jobs.queue import publish_job
from jobs.records import PENDING, Prediction

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
        db.session.add(Prediction(uuid=prediction_uuid, name=name, image_url=image_url, status=PENDING,
                                   callback_url=callback_url))
        db.session.commit()
    except SQLAlchemyError as error:
        db.session.rollback()
        logger.exception("could not record %s", prediction_uuid, extra={"uuid": prediction_uuid})
        store.delete(image_url)
        raise DatabaseUnavailable(str(error)) from None
    publish_job(prediction_uuid, image_url)
    return prediction_uuid

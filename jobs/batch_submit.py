"""Creating a batch: check each image, store the upload once, record every row in one transaction, publish.

The order is a single upload's (``jobs.submit``): the upload is stored, the rows recorded, then
the pending ones published; rows the database refuses take the upload with them. An image the
structural checks refuse (``jobs.imagecheck``) is recorded ``failed`` with the reason, and the
rest of the batch goes on. Publishing is batched over one producer (``jobs.queue.publish_jobs``).
"""

import logging
import uuid
from pathlib import Path

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from config.settings import current_settings
from jobs.batches import BatchImage, claim_completions, create_batch
from jobs.database import db
from jobs.endings import announce_batches_completed
from jobs.imagecheck import ImageRefused, configured_limits, inspect_image
from jobs.imagestore import ImageStoreUnavailable, part_url
from jobs.queue import publish_jobs
from jobs.submit import DatabaseUnavailable

logger = logging.getLogger(__name__)
MAX_NAME_LENGTH = 255


def check_part(file, offset: int, length: int, name: str, max_bytes: int, limits) -> str | None:
    """Why this image cannot be classified, or None: a single upload's checks, read from the spool."""
    if len(name) > MAX_NAME_LENGTH:
        return f"The name is longer than {MAX_NAME_LENGTH} characters."
    if length == 0:
        return "The image is empty."
    if length > max_bytes:
        return f"The image is larger than {max_bytes} bytes."
    file.seek(offset)
    try:
        inspect_image(file.read(length), limits)
    except ImageRefused as refusal:
        return refusal.message
    return None


def submit_batch(spool: Path, parts, owner: str, callback_url: str | None) -> tuple[str, int]:
    """Store the spooled body as the batch's upload and create its jobs; returns (batch id, images
    published). ``parts`` are ``webapp.batches.parsing.Part``-like (name, offset, length, problem).
    Raises ImageStoreUnavailable or DatabaseUnavailable; either way nothing is kept."""
    settings = current_settings()
    limits = configured_limits(settings)
    with spool.open("rb") as file:
        problems = [
            part.problem or check_part(file, part.offset, part.length, part.name, settings.MAX_IMAGE_BYTES, limits)
            for part in parts
        ]
    batch_id = str(uuid.uuid4())
    store = current_app.extensions["image_store"]
    upload_url = store.save_file(f"{batch_id}.batch", spool)
    images = [
        BatchImage(part.name[:MAX_NAME_LENGTH], part_url(upload_url, part.offset, max(part.length, 1)), problem)
        for part, problem in zip(parts, problems)
    ]
    completed = []
    try:
        with db.engine.begin() as connection:
            pending = create_batch(connection, batch_id, images, owner, upload_url, callback_url)
            if not pending:  # every image was refused: the batch is over as it begins
                completed = claim_completions(connection, [batch_id])
    except SQLAlchemyError as error:
        logger.exception("could not record batch %s", batch_id)
        try:
            store.delete(upload_url)
        except ImageStoreUnavailable:  # the retention sweep removes it later
            logger.warning("could not remove %s after its rows were refused", upload_url, exc_info=True)
        raise DatabaseUnavailable(str(error)) from None
    announce_batches_completed(completed)
    published = publish_jobs(pending, bulk=True, client=owner or batch_id)
    logger.info("accepted batch %s: %d images, %d refused", batch_id, len(images), len(images) - len(pending))
    return batch_id, published

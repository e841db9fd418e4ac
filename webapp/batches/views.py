"""The batch routes: many images in one POST, the batch's state, its results file, its cancel.

Every image of a batch is also an ordinary job (``GET /predictions/<uuid>``). With API keys on,
a batch belongs to the key that sent it; another key is told it does not exist.
"""

import csv
import io
import logging
import tempfile
from pathlib import Path

import orjson
from flask import Blueprint, Response, current_app, jsonify, request, url_for
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from config.settings import current_settings
from jobs.batch_submit import submit_batch
from jobs.batches import cancel_batch, claim_completions, find_batch, read_batch, result_pages, result_record
from jobs.database import db
from jobs.endings import announce_batches_completed
from jobs.imagestore import ImageStoreUnavailable
from jobs.submit import DatabaseUnavailable
from webapp.auth import api_key_scope, require_api_key
from webapp.batches.parsing import BatchBodyRefused, multipart_body, spool, tar_body
from webapp.errors import ApiError
from webapp.predictions.notify import CALLBACK_HEADER, accepted_callback, is_uuid4, parse_wait

logger = logging.getLogger(__name__)
bp = Blueprint("batches", __name__)
bp.before_request(require_api_key)

MULTIPART = "multipart/form-data"
TAR_TYPES = {"application/x-tar", "application/tar"}
RESULT_FIELDS = ("uuid", "name", "status", "prediction", "confidence", "top5", "error")


def _unavailable(what: str) -> ApiError:
    return ApiError(503, "Service Unavailable", f"The {what} is unavailable; try again shortly.", {"Retry-After": "5"})


@bp.post("/batches", strict_slashes=False)
def submit():
    settings = current_settings()
    request.max_content_length = settings.BATCH_MAX_BYTES  # this route's own limit, above a single image's
    if request.args:
        raise ApiError(400, "Invalid request", f"Unknown query parameter {sorted(request.args)[0][:64]!r}.")
    mimetype = request.mimetype
    if mimetype != MULTIPART and mimetype not in TAR_TYPES:
        raise ApiError(
            415,
            "Unsupported Media Type",
            f"Content-Type {mimetype!r} is not taken here; send multipart/form-data with one 'image' "
            "file part per image, or a tar archive of images as application/x-tar.",
        )
    spool_dir = Path(current_app.instance_path) / "spool"
    spool_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=spool_dir, prefix="batch-", delete=False) as file:
        path = Path(file.name)
    try:
        body = _read_body(path, mimetype)
        callback_url = accepted_callback(
            body.fields.get("callback_url"), request.headers.get(CALLBACK_HEADER), settings
        )
        if not body.parts:
            raise ApiError(422, "Invalid request", "The batch has no images.")
        batch_id, _ = submit_batch(path, body.parts, api_key_scope(), callback_url)
        with db.engine.connect() as connection:
            batch = read_batch(connection, batch_id, api_key_scope())[0]
    except ImageStoreUnavailable:
        logger.exception("could not store a batch")
        raise _unavailable("image store") from None
    except DatabaseUnavailable:
        raise _unavailable("database") from None
    finally:
        path.unlink(missing_ok=True)  # stored (moved or uploaded) already, or refused
    body_json = {key: batch[key] for key in ("id", "status", "request_counts", "created_at")}
    return jsonify(body_json), 202, {"Location": url_for("batches.get_batch", batch_id=batch_id)}


def _read_body(path: Path, mimetype: str):
    """The body spooled to ``path`` and split into its images, or the 4xx that says why not."""
    settings = current_settings()
    try:
        with path.open("r+b") as file:
            try:
                spool(request.stream, file, settings.BATCH_MAX_BYTES)
            except RequestEntityTooLarge:  # a declared length over the limit, refused before reading
                raise BatchBodyRefused(
                    413, f"The batch is larger than BATCH_MAX_BYTES ({settings.BATCH_MAX_BYTES} bytes)."
                ) from None
            if mimetype == MULTIPART:
                return multipart_body(file, request.mimetype_params.get("boundary", ""), settings.BATCH_MAX_IMAGES)
            return tar_body(file, settings.BATCH_MAX_IMAGES)
    except BatchBodyRefused as refusal:
        title = "Payload Too Large" if refusal.status == 413 else "Invalid request"
        raise ApiError(refusal.status, title, refusal.detail) from None


def _batch_id(batch_id: str) -> str:
    if not is_uuid4(batch_id):
        raise ApiError(404, "Not Found", f"{batch_id[:64]!r} is not a batch id (a UUID4).")
    return batch_id.lower()


def _not_found(batch_id: str) -> ApiError:
    return ApiError(404, "Not Found", f"No batch has id {batch_id}.")


@bp.get("/batches/<batch_id>", strict_slashes=False)
def get_batch(batch_id: str):
    """The batch's state. ``?wait=N`` is served by the waiter (webapp/waiter.py, routed there by
    nginx); one that reaches Gunicorn is redirected to ``WAITER_URL`` when set, else answered at once."""
    batch_id = _batch_id(batch_id)
    wait = parse_wait(request.args.get("wait"))
    try:
        with db.engine.begin() as connection:
            batch, claimed = read_batch(connection, batch_id, api_key_scope(), claim=True)
        announce_batches_completed(claimed)
    except SQLAlchemyError:
        raise _unavailable("database") from None
    if batch is None:
        raise _not_found(batch_id)
    if batch["completed_at"] is None and wait is not None and current_settings().WAITER_URL:
        return "", 307, {"Location": current_settings().WAITER_URL + request.full_path}
    return jsonify(batch), 200


@bp.get("/batches/<batch_id>/results", strict_slashes=False)
def get_results(batch_id: str):
    """One line per ended image, in submission order: JSON Lines, or CSV with ``?format=csv``.
    Streamed a page of rows at a time, so it works on a running batch and in flat memory."""
    batch_id = _batch_id(batch_id)
    wanted = request.args.get("format", "jsonl")
    if wanted not in ("jsonl", "csv"):
        raise ApiError(422, "Invalid request", "'format' must be 'jsonl' or 'csv'.")
    engine = db.engine
    try:
        with engine.connect() as connection:
            found = find_batch(connection, batch_id, api_key_scope()) is not None
    except SQLAlchemyError:
        raise _unavailable("database") from None
    if not found:
        raise _not_found(batch_id)
    lines = _csv_lines(engine, batch_id) if wanted == "csv" else _json_lines(engine, batch_id)
    mimetype = "text/csv" if wanted == "csv" else "application/x-ndjson"
    headers = {"Content-Disposition": f'attachment; filename="batch-{batch_id}.{wanted}"'}
    return Response(lines, mimetype=mimetype, headers=headers)


def _json_lines(engine, batch_id: str):
    for rows in result_pages(engine, batch_id):
        yield b"".join(orjson.dumps(result_record(row)) + b"\n" for row in rows)


def _csv_lines(engine, batch_id: str):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, RESULT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for rows in result_pages(engine, batch_id):
        for row in rows:
            record = result_record(row)
            if record["top5"] is not None:
                record["top5"] = orjson.dumps(record["top5"]).decode()
            writer.writerow(record)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # the header of a batch with no ended image yet
        yield buffer.getvalue()


@bp.delete("/batches/<batch_id>", strict_slashes=False)
def cancel(batch_id: str):
    """Cancel every image not yet classified; idempotent. Answers the batch as it now is."""
    batch_id = _batch_id(batch_id)
    owner = api_key_scope()
    try:
        with db.engine.begin() as connection:
            if find_batch(connection, batch_id, owner) is None:
                raise _not_found(batch_id)
            cancelled = cancel_batch(connection, batch_id)
            completed = claim_completions(connection, [batch_id])
        announce_batches_completed(completed)
        with db.engine.connect() as connection:
            batch = read_batch(connection, batch_id, owner)[0]
    except SQLAlchemyError:
        raise _unavailable("database") from None
    if cancelled:
        logger.info("cancelled %d images of batch %s", cancelled, batch_id)
    return jsonify(batch), 200

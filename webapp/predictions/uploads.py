"""Reading an upload from the request, whichever way it was sent.

Three bodies are taken, chosen by Content-Type: the seed's JSON with base64 (any
JSON-ish or form type, as ``curl --data-raw`` sends it), ``multipart/form-data``
with one ``image`` file part (``curl -F image=@dog.jpg``), and the image's own
bytes (``Content-Type: image/jpeg`` …). Each body is read once, in memory, no
further than its limit; the binary ones skip base64 and JSON. All three end in
``validation.validated``, so they share the same checks and errors.
"""

import io
from typing import cast

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from jobs.imagecheck import ImageLimits
from webapp.errors import ApiError
from webapp.predictions.validation import Upload, check_image_bytes, check_name, validate_upload, validated

JSON_TYPES = {"", "application/json", "text/plain", "application/x-www-form-urlencoded"}
MULTIPART = "multipart/form-data"
RAW_TYPES = {
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "application/octet-stream",
}
# image, name, callback_url, and a little slack for clients that add a field of their own.
MAX_FORM_PARTS = 8


def read_upload(max_bytes: int, limits: ImageLimits) -> Upload:
    unknown = sorted(set(request.args) - {"name"})
    if unknown:  # a misspelt ?name= would otherwise be dropped in silence
        raise ApiError(400, "Invalid request", f"Unknown query parameter {unknown[0][:64]!r}; only 'name' is taken.")
    if "name" in request.args:  # judged even where a form field's name takes precedence
        check_name(request.args["name"])
    mimetype = request.mimetype
    if mimetype in JSON_TYPES or mimetype.endswith("+json"):
        return validate_upload(read_body(), max_bytes, limits)
    if mimetype == MULTIPART:
        return _multipart(max_bytes, limits)
    if mimetype in RAW_TYPES:
        return _raw(max_bytes, limits)
    raise ApiError(
        415,
        "Unsupported Media Type",
        f"Content-Type {mimetype!r} is not taken here; send JSON with base64 'data', "
        "multipart/form-data with an 'image' file part, or the image itself as image/jpeg, "
        "image/png, image/gif, image/webp, image/bmp or image/tiff.",
    )


def read_body() -> bytes:
    """The whole body, or 413 once it reaches ``request.max_content_length``.

    A declared Content-Length over the limit is refused before reading. A chunked
    body is read only up to the limit, and Werkzeug then stops without an error,
    so a body that fills the limit is taken as cut short.
    """
    body = request.get_data(cache=False)
    if request.max_content_length is not None and len(body) >= request.max_content_length:
        raise RequestEntityTooLarge()
    return body


def _raw(max_bytes: int, limits: ImageLimits) -> Upload:
    """The body is the image; its name comes from ``?name=`` or an ``X-Image-Name`` header.

    The body is read whole (the proxy bounds it by the same request limit) before it is judged:
    Gunicorn's sync worker closes the connection after answering, and a body left unread there
    would reach the proxy as a reset (502) instead of this 413."""
    image = check_image_bytes(read_body(), max_bytes)
    name = request.args.get("name", request.headers.get("X-Image-Name", ""))
    return validated(name, image, limits)


def _in_memory(*_args, **_kwargs):
    """Parts stay in memory (the body is already bounded), never spooled to disk."""
    return io.BytesIO()


def _multipart(max_bytes: int, limits: ImageLimits) -> Upload:
    body = read_body()  # whole, as in _raw; the image part is judged by its own size below
    # The body is already in memory and bounded, so a text field may be as large as it (the
    # decoder checks each chunk it buffers against this, file parts included).
    parser = FormDataParser(
        stream_factory=_in_memory,
        max_form_memory_size=request.max_content_length,
        silent=False,
        max_form_parts=MAX_FORM_PARTS,
    )
    try:
        _, form, files = parser.parse(io.BytesIO(body), MULTIPART, len(body), request.mimetype_params)
    except ValueError as error:
        raise ApiError(400, "Invalid request", f"The multipart body cannot be parsed ({error}).") from None
    except RequestEntityTooLarge:  # the body is within its limit: only the part count can be over
        raise ApiError(
            422,
            "Invalid request",
            f"The multipart body has more than {MAX_FORM_PARTS} parts; "
            "send one 'image' file part and at most one 'name' field.",
        ) from None
    parts = files.getlist("image")
    if len(parts) != 1 or "image" in form:
        found = len(parts) + len(form.getlist("image"))
        raise ApiError(
            422,
            "Invalid request",
            "Send exactly one 'image' file part (curl -F image=@photo.jpg); "
            f"this body has {found}" + (" ('image' must be a file, not a text field)." if "image" in form else "."),
        )
    image = check_image_bytes(cast(io.BytesIO, parts[0].stream).getvalue(), max_bytes)
    for field in ("name", "callback_url"):
        if len(form.getlist(field)) > 1:
            raise ApiError(422, "Invalid request", f"Send at most one '{field}' field.")
    name = form.get("name", parts[0].filename or "")
    return validated(name, image, limits, form.get("callback_url"))

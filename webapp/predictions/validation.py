"""Checking an upload before anything is stored: JSON shape, base64, size, real image.

Each failure is an ApiError naming the field and the problem, so the client
gets a 4xx it can act on and nothing malformed reaches the queue.
"""

import base64
import binascii
import re
from dataclasses import dataclass

import orjson

from jobs.imagecheck import ImageLimits, ImageRefused, inspect_image
from webapp.errors import ApiError

MAX_NAME_LENGTH = 255
_DATA_URL_PREFIX = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Upload:
    name: str
    image: bytes
    extension: str
    callback_url: object = None  # as sent; vetted by webapp.predictions.notify


def _invalid(detail: str, status: int = 422) -> ApiError:
    title = "Payload Too Large" if status == 413 else "Invalid request"
    return ApiError(status, title, detail)


def parse_body(raw: bytes) -> dict:
    """The body as a JSON object, whatever Content-Type the client claimed."""
    if not raw.strip():
        raise _invalid("The request body is empty; send a JSON object with 'name' and 'data'.", 400)
    try:
        body = orjson.loads(raw)  # strict: invalid UTF-8, lone surrogates and deep nesting are errors
    except orjson.JSONDecodeError as error:
        raise _invalid(f"The request body is not valid JSON: {error}.", 400) from None
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object with 'name' and 'data'.", 400)
    return body


def decode_base64(data: str, max_bytes: int) -> bytes:
    """Standard or URL-safe base64, line breaks and a ``data:`` URL prefix allowed."""
    try:
        decoded = base64.b64decode(data, validate=True)  # the common case, without copying the string
    except (binascii.Error, ValueError):
        decoded = _decode_lenient_base64(data, max_bytes)
    if not decoded:
        raise _invalid("'data' is empty.")
    return check_image_bytes(decoded, max_bytes)


def _decode_lenient_base64(data: str, max_bytes: int) -> bytes:
    compact = _WHITESPACE.sub("", _DATA_URL_PREFIX.sub("", data, count=1))
    if len(compact) * 3 // 4 > max_bytes + 3:
        raise _invalid(f"The image is larger than {max_bytes} bytes.", 413)
    compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("'data' is not valid base64.") from None


def check_image(data: bytes, limits: ImageLimits) -> str:
    """The image's file extension, judged from its structure alone: no pixel is decoded here.

    The worker decodes it once; a file that passes this check but cannot be decoded fails its job
    with the decoder's reason.
    """
    try:
        return inspect_image(data, limits).extension
    except ImageRefused as error:
        title = "Unsupported Media Type" if error.status == 415 else "Invalid request"
        raise ApiError(error.status, title, error.message) from None


def check_name(name) -> str:
    """A name is stored as data only; orjson has already refused lone surrogates in JSON, and
    Werkzeug decodes form fields, query strings and headers without producing any."""
    if not isinstance(name, str):
        raise _invalid("'name' must be a string.")
    if len(name) > MAX_NAME_LENGTH:
        raise _invalid(f"'name' is longer than {MAX_NAME_LENGTH} characters.")
    return name


def check_image_bytes(image: bytes, max_bytes: int) -> bytes:
    """An image's size checks, however it was sent (base64, multipart or raw)."""
    if not image:
        raise _invalid("The image is empty.")
    if len(image) > max_bytes:
        raise _invalid(f"The image is larger than {max_bytes} bytes.", 413)
    return image


def validated(name, image: bytes, limits: ImageLimits, callback_url: object = None) -> Upload:
    """The one place every kind of upload (JSON, multipart, raw) gets its name and image checked."""
    return Upload(name=check_name(name), image=image, extension=check_image(image, limits), callback_url=callback_url)


def validate_upload(raw: bytes, max_bytes: int, limits: ImageLimits) -> Upload:
    body = parse_body(raw)
    name = check_name(body.get("name", ""))
    data = body.get("data")
    if data is None:
        raise _invalid("'data' is missing; send the image as a base64 string.")
    if not isinstance(data, str):
        raise _invalid("'data' must be a base64 string.")
    return validated(name, decode_base64(data, max_bytes), limits, body.get("callback_url"))

"""Checking an upload before anything is stored: JSON shape, base64, size, real image.

Each failure is an ApiError naming the field and the problem, so the client
gets a 4xx it can act on and nothing malformed reaches the queue.
"""
import base64
import binascii
import io
import json
import re
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from webapp.errors import ApiError

# The formats Pillow decodes that photos arrive in, with the file extension we store them under.
SUPPORTED_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
MAX_NAME_LENGTH = 255
_DATA_URL_PREFIX = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Upload:
    name: str
    image: bytes
    extension: str


def _invalid(detail: str, status: int = 422) -> ApiError:
    title = "Payload Too Large" if status == 413 else "Invalid request"
    return ApiError(status, title, detail)


def parse_body(raw: bytes) -> dict:
    """The body as a JSON object, whatever Content-Type the client claimed."""
    if not raw.strip():
        raise _invalid("The request body is empty; send a JSON object with 'name' and 'data'.", 400)
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise _invalid("The request body is not valid UTF-8.", 400) from None
    except RecursionError:
        raise _invalid("The request body is nested too deeply to be a request.", 400) from None
    except ValueError:
        raise _invalid("The request body is not valid JSON.", 400) from None
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
    if len(decoded) > max_bytes:
        raise _invalid(f"The image is larger than {max_bytes} bytes.", 413)
    return decoded


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


def check_image(data: bytes, max_pixels: int) -> str:
    """Fully decode the image (so the worker can too) and return its file extension.

    The pixel count is checked from the header first, so a decompression bomb
    is refused before it is decoded.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in SUPPORTED_FORMATS:
                raise _invalid(
                    f"Image format {image.format} is not supported; send one of {', '.join(SUPPORTED_FORMATS)}.",
                    415,
                )
            width, height = image.size
            if width * height > max_pixels:
                raise _too_many_pixels(max_pixels, f"{width}x{height}")
            image.draft("RGB", (224, 224))
            image.load()
            return SUPPORTED_FORMATS[image.format]
    except Image.DecompressionBombError:
        raise _too_many_pixels(max_pixels, "far too many") from None
    except UnidentifiedImageError:
        raise _invalid("'data' does not decode to an image.") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise _invalid(f"The image is damaged or truncated ({error}).") from None


def _too_many_pixels(max_pixels: int, size: str) -> ApiError:
    return _invalid(f"The image is {size} pixels; the limit is {max_pixels} pixels.")


def check_name(name) -> str:
    if not isinstance(name, str):
        raise _invalid("'name' must be a string.")
    if len(name) > MAX_NAME_LENGTH:
        raise _invalid(f"'name' is longer than {MAX_NAME_LENGTH} characters.")
    return name


def check_image_bytes(image: bytes, max_bytes: int) -> bytes:
    """The size checks a decoded base64 image gets, for an image sent as bytes."""
    if not image:
        raise _invalid("The image is empty.")
    if len(image) > max_bytes:
        raise _invalid(f"The image is larger than {max_bytes} bytes.", 413)
    return image


def validated(name, image: bytes, max_pixels: int) -> Upload:
    """The one place every kind of upload (JSON, multipart, raw) gets its name and image checked."""
    return Upload(name=check_name(name), image=image, extension=check_image(image, max_pixels))


def validate_upload(raw: bytes, max_bytes: int, max_pixels: int) -> Upload:
    body = parse_body(raw)
    name = check_name(body.get("name", ""))
    data = body.get("data")
    if data is None:
        raise _invalid("'data' is missing; send the image as a base64 string.")
    if not isinstance(data, str):
        raise _invalid("'data' must be a base64 string.")
    return validated(name, decode_base64(data, max_bytes), max_pixels)

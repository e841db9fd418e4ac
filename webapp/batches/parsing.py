"""Reading a ``POST /batches`` body: spooled to a file as it arrives, then split into its images.

The body is never held in memory: it is copied a chunk at a time into a spool file, and its
images are found there as byte ranges (``Part``), so the file itself can be stored once as the
batch's upload and each job can point into it. Two bodies are taken:

- ``multipart/form-data`` with one ``image`` file part per image (the file name is the image's
  name) and an optional ``callback_url`` field; the parts are found with ``mmap``, never copied;
- ``application/x-tar``: each regular file of the archive is an image, named by its path.

A body that is neither, or over the limits, raises ``BatchBodyRefused`` with the client's reason.
"""

import mmap
import tarfile
from dataclasses import dataclass

from werkzeug.http import parse_options_header

CHUNK = 1024 * 1024
MAX_PART_HEADERS = 16 * 1024  # bytes of headers one part may have
MAX_FIELD_BYTES = 4096  # a text field (callback_url)
TEXT_FIELDS = ("callback_url",)


class BatchBodyRefused(ValueError):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Part:
    """An image in the spooled body: its name, where its bytes start, how many. ``problem`` says why
    it cannot be an image at all (a tar member that is a link), else None."""

    name: str
    offset: int
    length: int
    problem: str | None = None


@dataclass(frozen=True)
class BatchBody:
    parts: list[Part]
    fields: dict[str, str]


def spool(stream, target, max_bytes: int) -> int:
    """Copy ``stream`` into the open file ``target`` a chunk at a time; 413 past ``max_bytes``."""
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise BatchBodyRefused(413, f"The batch is larger than BATCH_MAX_BYTES ({max_bytes} bytes).")
        target.write(chunk)
    target.flush()
    return size


def _too_many(max_images: int) -> BatchBodyRefused:
    return BatchBodyRefused(
        413, f"The batch has more than BATCH_MAX_IMAGES ({max_images}) images; send them in several batches."
    )


def multipart_body(file, boundary: str, max_images: int) -> BatchBody:
    """The ``image`` parts and text fields of a multipart body spooled in ``file``."""
    if not boundary or len(boundary) > 70:
        raise BatchBodyRefused(400, "The multipart Content-Type has no valid boundary.")
    delimiter = b"--" + boundary.encode("latin-1")
    size = file.seek(0, 2)
    if size == 0:
        raise BatchBodyRefused(400, "The request body is empty.")
    parts: list[Part] = []
    fields: dict[str, str] = {}
    with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as body:
        if body[: len(delimiter)] == delimiter:
            position = len(delimiter)
        else:  # after a preamble
            position = body.find(b"\r\n" + delimiter)
            if position < 0:
                raise BatchBodyRefused(400, "The multipart body does not contain its boundary.")
            position += len(delimiter) + 2
        while True:
            if body[position : position + 2] == b"--":
                break  # the closing delimiter
            line_end = body.find(b"\r\n", position, position + 1024)
            if line_end < 0 or body[position:line_end].strip(b" \t"):
                raise BatchBodyRefused(400, "The multipart body is malformed after a boundary.")
            headers_end = body.find(b"\r\n\r\n", line_end, line_end + MAX_PART_HEADERS)
            if headers_end < 0:  # no blank line within reach: a truncated body or oversized part headers
                raise BatchBodyRefused(400, "A multipart part has no end to its headers.")
            headers = _part_headers(body[line_end + 2 : headers_end])
            data_start = headers_end + 4
            data_end = body.find(b"\r\n" + delimiter, data_start)
            if data_end < 0:
                raise BatchBodyRefused(400, "The multipart body ends before its closing boundary.")
            field, filename = headers
            if field == "image":
                if filename is None:  # as a single upload: a text field is not an image
                    raise BatchBodyRefused(
                        422, "Each 'image' part must be a file part (curl -F image=@photo.jpg), not a text field."
                    )
                if len(parts) == max_images:
                    raise _too_many(max_images)
                parts.append(Part(filename or "", data_start, data_end - data_start))
            elif field in TEXT_FIELDS and filename is None:
                if field in fields:
                    raise BatchBodyRefused(422, f"Send at most one '{field}' field.")
                if data_end - data_start > MAX_FIELD_BYTES:
                    raise BatchBodyRefused(422, f"The '{field}' field is longer than {MAX_FIELD_BYTES} bytes.")
                try:
                    fields[field] = body[data_start:data_end].decode()
                except UnicodeDecodeError:
                    raise BatchBodyRefused(422, f"The '{field}' field is not UTF-8.") from None
            else:
                raise BatchBodyRefused(
                    422,
                    f"Unexpected multipart part {field[:64]!r}; send one 'image' file part per image "
                    "and at most a 'callback_url' field.",
                )
            position = data_end + 2 + len(delimiter)
    return BatchBody(parts, fields)


def _part_headers(raw: bytes) -> tuple[str, str | None]:
    """(the part's form field name, its file name or None) from its headers."""
    for line in raw.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-disposition":
            kind, options = parse_options_header(value.decode("utf-8", "replace").strip())
            if kind.lower() != "form-data" or "name" not in options:
                break
            return options["name"], options.get("filename")
    raise BatchBodyRefused(400, "A multipart part has no Content-Disposition: form-data with a name.")


def tar_body(file, max_images: int) -> BatchBody:
    """Each regular file of an (uncompressed) tar archive spooled in ``file``, by its path."""
    file.seek(0)
    parts: list[Part] = []
    try:
        with tarfile.open(fileobj=file, mode="r:") as archive:
            for member in archive:
                if member.isdir():
                    continue
                if len(parts) == max_images:
                    raise _too_many(max_images)
                if member.isreg():
                    parts.append(Part(member.name, member.offset_data, member.size))
                else:
                    parts.append(Part(member.name, 0, 0, "this tar member is not a regular file"))
    except tarfile.TarError as error:
        raise BatchBodyRefused(400, f"The body is not a valid tar archive ({error}).") from None
    size = file.seek(0, 2)
    if any(part.offset + part.length > size for part in parts):
        raise BatchBodyRefused(400, "The tar archive is cut short: a member ends past the body.")
    return BatchBody(parts, {})

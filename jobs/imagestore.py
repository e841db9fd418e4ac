"""Where uploaded images live: the database and the queue only hold their URL.

A store is chosen by ``IMAGE_STORE_URL``: ``file:///dir`` is a data-volume
directory (one host, or a shared mount); ``s3://bucket/prefix`` is an
S3-compatible object store, which workers on any host can read.

A batch's upload (``POST /batches``) is stored once, as one file or object; each of its
images is a byte range of it, named by a *part URL*: the upload's URL with ``#<offset>,<length>``.
Reading a part URL reads that range (a ranged GET on S3); deleting one does nothing, the upload
goes when its batch does.

Error messages can reach clients (a failed job's ``error``), so they name an image
by its key, never by a server path; the log keeps the path.
"""

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

logger = logging.getLogger(__name__)


# A worker on another host than the web sees no file at all: say so, and what the fix is.
NOT_ON_THIS_DISK = (
    "image {name} is not on this worker's disk: it was deleted, or the web saved it on another "
    "host. A file:// image store needs one volume shared by the web and every worker at the same "
    "path; otherwise use IMAGE_STORE_URL=s3://bucket/prefix"
)


class ImageNotFound(LookupError):
    """The image behind a URL is gone (deleted, or another host's disk): retrying won't help."""


class ImageStoreUnavailable(RuntimeError):
    """The store cannot be used right now (disk error, S3 down, missing bucket): retry later."""


@dataclass(frozen=True)
class StoredImage:
    key: str  # orders the listing: a sweep resumes after the last key it saw
    url: str
    modified: datetime  # naive UTC, like the database's timestamps


def part_url(url: str, offset: int, length: int) -> str:
    """The URL of ``length`` bytes at ``offset`` inside the stored upload at ``url``."""
    return f"{url}#{offset},{length}"


def split_part(url: str) -> tuple[str, tuple[int, int] | None]:
    """(the stored object's URL, (offset, length) or None for a whole object)."""
    base, _, fragment = url.partition("#")
    if not fragment:
        return url, None
    offset, _, length = fragment.partition(",")
    try:
        part = int(offset), int(length)
    except ValueError:
        raise ImageNotFound(f"{url!r} does not name a part of an upload") from None
    if part[0] < 0 or part[1] <= 0:
        raise ImageNotFound(f"{url!r} does not name a part of an upload")
    return base, part


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


class ImageStore(Protocol):
    def save(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` and return the URL that reads it back."""

    def save_file(self, key: str, path: Path) -> str:
        """Store the file at ``path`` (moved, not copied, where the store can) under ``key``; its URL."""

    def read(self, url: str) -> bytes:
        """Return the bytes behind ``url`` (a part URL reads its range) or raise ImageNotFound."""

    def delete(self, url: str) -> None:
        """Remove the image behind ``url``; a missing one is not an error, a part URL does nothing."""

    def list_images(self, after: str, limit: int) -> list[StoredImage]:
        """Up to ``limit`` stored images whose key sorts after ``after``, in key order."""


class DirectoryImageStore:
    """Images as files in one directory tree, sharded by the key's first two characters."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def save(self, key: str, data: bytes) -> str:
        path = self.root / key[:2] / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a reader never sees half a file. Keys are unique (a job's uuid),
            # so the partial file's name is too.
            partial = path.with_name(f".{key}.part")
            partial.write_bytes(data)
            os.replace(partial, path)
        except OSError as error:
            raise ImageStoreUnavailable(f"cannot write image {key}: {error.strerror}") from error
        return path.as_uri()

    def save_file(self, key: str, path: Path) -> str:
        target = self.root / key[:2] / key
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{key}.part")
            shutil.move(path, partial)  # a rename on the same file system
            os.replace(partial, target)
        except OSError as error:
            raise ImageStoreUnavailable(f"cannot write upload {key}: {error.strerror}") from error
        return target.as_uri()

    def _path(self, url: str) -> Path:
        """The file behind ``url``, ``..`` folded away by string (no per-component lstat as resolve() does)."""
        return Path(os.path.normpath(unquote(urlparse(url).path)))

    def read(self, url: str) -> bytes:
        url, part = split_part(url)
        path = self._path(url)
        if not path.is_relative_to(self.root):
            logger.warning("image %s is outside the image store %s", path, self.root)
            raise ImageNotFound(f"image {path.name} is outside the image store")
        try:
            if part is None:
                return path.read_bytes()
            with path.open("rb") as file:
                file.seek(part[0])
                data = file.read(part[1])
            if len(data) != part[1]:
                raise ImageNotFound(f"upload {path.name} is shorter than its part at {part[0]}")
            return data
        except FileNotFoundError:
            logger.warning("image file %s is not on this host's disk", path)
            raise ImageNotFound(NOT_ON_THIS_DISK.format(name=path.name)) from None
        except OSError as error:
            raise ImageStoreUnavailable(f"cannot read image {path.name}: {error.strerror}") from error

    def delete(self, url: str) -> None:
        if split_part(url)[1] is not None:
            return
        path = self._path(url)
        if path.is_relative_to(self.root):
            path.unlink(missing_ok=True)

    def list_images(self, after: str, limit: int) -> list[StoredImage]:
        found = []
        try:
            shards = sorted(entry.name for entry in os.scandir(self.root) if entry.is_dir())
        except FileNotFoundError:
            return []
        for shard in shards:
            if shard < after[:2]:
                continue
            with os.scandir(self.root / shard) as entries:
                files = sorted((f"{shard}/{entry.name}", entry) for entry in entries if entry.is_file())
            for key, entry in files:
                if key <= after:
                    continue
                modified = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
                found.append(StoredImage(key, Path(entry.path).as_uri(), _naive_utc(modified)))
                if len(found) == limit:
                    return found
        return found


class S3ImageStore:
    """Images as objects under ``s3://bucket/prefix/``.

    Endpoint, region and credentials come from the environment as boto3 reads
    them (``S3_ENDPOINT_URL`` for MinIO or another S3-compatible server).
    """

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None, create_bucket: bool):
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30),
        )
        self._ensure_bucket(create_bucket)

    def _ensure_bucket(self, create: bool) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except BotoCoreError as error:
            raise ImageStoreUnavailable(f"S3 bucket {self.bucket!r} is not accessible: {error}") from None
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
                raise ImageStoreUnavailable(f"S3 bucket {self.bucket!r} is not accessible: {error}") from None
            if not create:
                raise ImageStoreUnavailable(
                    f"S3 bucket {self.bucket!r} does not exist; create it, or set S3_CREATE_BUCKET=1 "
                    "to have the service create it at start."
                ) from None
            self.client.create_bucket(Bucket=self.bucket)

    def save(self, key: str, data: bytes) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        object_key = f"{self.prefix}/{key}" if self.prefix else key
        try:
            self.client.put_object(Bucket=self.bucket, Key=object_key, Body=data)
        except (BotoCoreError, ClientError) as error:
            raise ImageStoreUnavailable(f"cannot write s3://{self.bucket}/{object_key}: {error}") from error
        return f"s3://{self.bucket}/{object_key}"

    def save_file(self, key: str, path: Path) -> str:
        """One managed upload (multipart above 8 MiB), streamed from the file."""
        from botocore.exceptions import BotoCoreError, ClientError

        object_key = f"{self.prefix}/{key}" if self.prefix else key
        try:
            self.client.upload_file(str(path), self.bucket, object_key)
        except (BotoCoreError, ClientError) as error:
            raise ImageStoreUnavailable(f"cannot write s3://{self.bucket}/{object_key}: {error}") from error
        finally:
            Path(path).unlink(missing_ok=True)
        return f"s3://{self.bucket}/{object_key}"

    def read(self, url: str) -> bytes:
        url, part = split_part(url)
        parsed = urlparse(url)
        if parsed.scheme != "s3" or parsed.netloc != self.bucket:
            raise ImageNotFound(f"a {parsed.scheme or 'schemeless'} URL is not in the image store s3://{self.bucket}")
        from botocore.exceptions import BotoCoreError, ClientError

        arguments = {"Bucket": self.bucket, "Key": parsed.path.lstrip("/")}
        if part is not None:
            arguments["Range"] = f"bytes={part[0]}-{part[0] + part[1] - 1}"
        try:
            return self.client.get_object(**arguments)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise ImageNotFound(f"image object {url} no longer exists") from None
        except (BotoCoreError, ClientError) as error:
            raise ImageStoreUnavailable(f"cannot read {url}: {error}") from error

    def delete(self, url: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        parsed = urlparse(url)
        if parsed.scheme != "s3" or parsed.netloc != self.bucket or split_part(url)[1] is not None:
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=parsed.path.lstrip("/"))
        except (BotoCoreError, ClientError) as error:
            raise ImageStoreUnavailable(f"cannot delete {url}: {error}") from error

    def list_images(self, after: str, limit: int) -> list[StoredImage]:
        from botocore.exceptions import BotoCoreError, ClientError

        arguments = {"Bucket": self.bucket, "Prefix": f"{self.prefix}/" if self.prefix else "", "MaxKeys": limit}
        if after:
            arguments["StartAfter"] = after
        try:
            listing = self.client.list_objects_v2(**arguments)
        except (BotoCoreError, ClientError) as error:
            raise ImageStoreUnavailable(f"cannot list s3://{self.bucket}/{self.prefix}: {error}") from error
        return [
            StoredImage(item["Key"], f"s3://{self.bucket}/{item['Key']}", _naive_utc(item["LastModified"]))
            for item in listing.get("Contents", [])
        ]


def open_image_store(url: str, s3_endpoint_url: str = "", s3_create_bucket: bool = False) -> ImageStore:
    """Return the store that ``IMAGE_STORE_URL`` names."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return DirectoryImageStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3" and parsed.netloc:
        return S3ImageStore(parsed.netloc, parsed.path, s3_endpoint_url, s3_create_bucket)
    raise ImageStoreUnavailable(
        f"IMAGE_STORE_URL {url!r} is not supported; use file:///path/to/dir or s3://bucket/prefix"
    )

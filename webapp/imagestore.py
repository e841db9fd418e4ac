"""Where uploaded images live: the database and the queue only hold their URL.

A store is chosen by ``IMAGE_STORE_URL``. ``file://`` stores are a data-volume
directory; other stores plug in behind the same two methods.
"""
import os
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse


class ImageNotFound(LookupError):
    """The image behind a URL is gone (deleted, or another host's disk)."""


class ImageStore(Protocol):
    def save(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` and return the URL that reads it back."""

    def read(self, url: str) -> bytes:
        """Return the bytes behind ``url`` or raise ImageNotFound."""


class DirectoryImageStore:
    """Images as files in one directory tree, sharded by the key's first two characters."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def save(self, key: str, data: bytes) -> str:
        path = self.root / key[:2] / key
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half a file.
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)
        return path.as_uri()

    def read(self, url: str) -> bytes:
        path = Path(unquote(urlparse(url).path)).resolve()
        if not path.is_relative_to(self.root):
            raise ImageNotFound(f"{url} is outside the image store {self.root}")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ImageNotFound(f"image file {path} no longer exists") from None


def open_image_store(url: str) -> ImageStore:
    """Return the store that ``IMAGE_STORE_URL`` names."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return DirectoryImageStore(Path(unquote(parsed.path)))
    raise ValueError(f"IMAGE_STORE_URL {url!r}: unsupported scheme {parsed.scheme!r} (use file://)")

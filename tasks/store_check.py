"""At start, a worker warns when a file:// image store's directory is not on its host.

Images are read by URL; with a file:// store the web writes them to its own disk, so a
worker on another host finds nothing unless the directory is a shared volume. Jobs then fail
one by one with that reason; this warning says it once, before the first job.
"""

import logging
from pathlib import Path
from urllib.parse import unquote, urlparse

from config.settings import Settings

logger = logging.getLogger(__name__)


def warn_if_image_directory_is_missing(settings: Settings) -> None:
    url = settings.IMAGE_STORE_URL
    parsed = urlparse(url)
    if parsed.scheme == "file" and not Path(unquote(parsed.path)).is_dir():
        logger.warning(
            "image store %s is not a directory on this host (yet): if the web runs on another host, "
            "every job will fail. A file:// store needs one volume shared by the web and every worker at "
            "the same path; otherwise use IMAGE_STORE_URL=s3://bucket/prefix",
            url,
        )

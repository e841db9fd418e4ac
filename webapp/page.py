"""``GET /``: the web page, a client of the JSON API in plain HTML, CSS and JS (webapp/static)."""

from flask import Blueprint, render_template

from config.settings import current_settings

bp = Blueprint("page", __name__)


@bp.get("/")
def index():
    settings = current_settings()
    limit = settings.MAX_IMAGE_BYTES
    return render_template(
        "index.html",
        max_image_bytes=limit,
        max_image_size=readable_size(limit),
        batch_max_images=settings.BATCH_MAX_IMAGES,
    )


def readable_size(size: int) -> str:
    """``1 MiB``, ``48.8 KiB``, ``900 bytes``: one decimal at most, none when it is 0."""
    for unit, unit_bytes in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= unit_bytes:
            return f"{size / unit_bytes:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"

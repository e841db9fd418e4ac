"""``GET /``: the web page, a client of the JSON API in plain HTML, CSS and JS (webapp/static)."""

from flask import Blueprint, current_app, render_template

bp = Blueprint("page", __name__)


@bp.get("/")
def index():
    config = current_app.config
    return render_template(
        "index.html", max_image_bytes=config["MAX_IMAGE_BYTES"], batch_max_images=config["BATCH_MAX_IMAGES"]
    )

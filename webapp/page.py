"""``GET /``: the web page, a client of the JSON API in plain HTML, CSS and JS (webapp/static)."""

from flask import Blueprint, render_template

from config.settings import current_settings

bp = Blueprint("page", __name__)


@bp.get("/")
def index():
    return render_template("index.html", max_image_bytes=current_settings().MAX_IMAGE_BYTES)

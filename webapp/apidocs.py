"""The API's description: the OpenAPI document at /openapi.json and a Swagger UI page at /docs.

The document is written by hand beside this module and the tests hold the code
to it. Swagger UI's files are fetched at install time (scripts/install-swagger-ui.sh)
into vendor/swagger-ui and served from here, so the page works with no internet
access; only the files the page needs are served, never a demo page.
"""

import json
from pathlib import Path

from flask import Blueprint, abort, jsonify, render_template, send_from_directory

from config.settings import PROJECT_ROOT
from webapp.errors import ApiError

SPEC_PATH = Path(__file__).with_name("openapi.json")
SWAGGER_UI_DIR = PROJECT_ROOT / "vendor" / "swagger-ui"
SWAGGER_UI_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})

bp = Blueprint("apidocs", __name__)


def load_spec() -> dict:
    with SPEC_PATH.open(encoding="utf-8") as file:
        return json.load(file)


@bp.get("/openapi.json")
def openapi():
    return jsonify(load_spec())


@bp.get("/docs", strict_slashes=False)
def docs():
    if not all((SWAGGER_UI_DIR / name).is_file() for name in SWAGGER_UI_ASSETS):
        raise ApiError(
            503,
            "Service Unavailable",
            "Swagger UI's files are not installed; run `make install` (scripts/install-swagger-ui.sh). "
            "The API's description is at /openapi.json.",
        )
    return render_template("docs.html")


@bp.get("/docs/assets/<path:filename>")
def asset(filename: str):
    if filename not in SWAGGER_UI_ASSETS:
        abort(404)
    return send_from_directory(SWAGGER_UI_DIR, filename, max_age=86400)

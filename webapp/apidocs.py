"""The API's description: the OpenAPI document at /openapi.json and a Swagger UI page at /docs.

The document is written by hand beside this module and the tests hold the code
to it. Swagger UI's files come from the swagger-ui-bundle package and are served
from here, so the page works with no internet access.
"""
import json
from pathlib import Path

from flask import Blueprint, jsonify, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

SPEC_PATH = Path(__file__).with_name("openapi.json")

bp = Blueprint("apidocs", __name__)


def load_spec() -> dict:
    with SPEC_PATH.open(encoding="utf-8") as file:
        return json.load(file)


@bp.get("/openapi.json")
def openapi():
    return jsonify(load_spec())


@bp.get("/docs", strict_slashes=False)
def docs():
    return render_template("docs.html")


@bp.get("/docs/assets/<path:filename>")
def asset(filename: str):
    return send_from_directory(swagger_ui_path, filename, max_age=86400)

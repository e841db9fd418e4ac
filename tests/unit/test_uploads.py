"""Binary uploads: multipart/form-data and raw image bodies take the same checks, limits and errors as JSON."""

import io

import numpy as np
import pytest
from PIL import Image

from jobs.database import db
from jobs.records import Prediction
from tests.conftest import SAMPLES, b64, image_bytes
from tests.support.request_bodies import CountingBody, post_stream

JPEG = (SAMPLES / "elephant.jpg").read_bytes()


def stored(app, prediction_uuid):
    with app.app_context():
        row = db.session.get(Prediction, prediction_uuid)
        return row.name, app.extensions["image_store"].read(row.image_url), row.image_url


def test_multipart_image_part_is_stored_as_sent_with_its_name(app, client, published):
    response = client.post("/inference/image", data={"image": (io.BytesIO(JPEG), "upload.jpg"), "name": "elephant"})
    assert response.status_code == 202, response.get_json()
    prediction_uuid = response.get_json()["uuid"]
    assert response.headers["Location"] == f"/predictions/{prediction_uuid}"
    name, image, url = stored(app, prediction_uuid)
    assert (name, image) == ("elephant", JPEG) and url.endswith(".jpg")
    assert len(published()) == 1


def test_multipart_without_name_field_takes_the_filename(app, client):
    response = client.post("/inference/image", data={"image": (io.BytesIO(JPEG), "dog.jpg")})
    assert stored(app, response.get_json()["uuid"])[0] == "dog.jpg"


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"name": "x"}, "exactly one 'image' file part"),
        ({"image": [(io.BytesIO(JPEG), "a.jpg"), (io.BytesIO(JPEG), "b.jpg")]}, "this body has 2"),
        ({"image": "not a file"}, "must be a file"),
        ({"image": (io.BytesIO(JPEG[:2000]), "cut.jpg")}, "truncated or damaged"),
        ({"image": (io.BytesIO(b""), "empty.jpg")}, "The image is empty"),
        ({"image": (io.BytesIO(JPEG), "x.jpg"), "name": "n" * 256}, "longer than 255"),
    ],
)
def test_multipart_refusals_are_422_problems(client, published, fields, words):
    response = client.post("/inference/image", data=fields, content_type="multipart/form-data")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert words in response.get_json()["detail"]
    assert published() == []


def test_multipart_with_too_many_parts_is_refused(client):
    fields = {f"extra{i}": "x" for i in range(20)} | {"image": (io.BytesIO(JPEG), "a.jpg")}
    response = client.post("/inference/image", data=fields)
    assert response.status_code == 422
    assert "more than 8 parts" in response.get_json()["detail"]


def test_multipart_without_boundary_is_a_400(client):
    response = client.post("/inference/image", data=b"--x\r\n", content_type="multipart/form-data")
    assert response.status_code == 400
    assert "multipart" in response.get_json()["detail"]


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "application/octet-stream"])
def test_raw_body_is_the_image_whatever_image_type_it_claims(app, client, content_type):
    response = client.post("/inference/image?name=elephant.jpg", data=JPEG, content_type=content_type)
    assert response.status_code == 202, response.get_json()
    name, image, url = stored(app, response.get_json()["uuid"])
    assert (name, image) == ("elephant.jpg", JPEG) and url.endswith(".jpg")  # the extension follows the bytes


def test_raw_body_name_from_header_and_query_wins(app, client):
    png = image_bytes(fmt="PNG")
    by_header = client.post("/inference/image", data=png, content_type="image/png", headers={"X-Image-Name": "h.png"})
    assert stored(app, by_header.get_json()["uuid"])[0] == "h.png"
    both = client.post(
        "/inference/image?name=q.png", data=png, content_type="image/png", headers={"X-Image-Name": "h.png"}
    )
    assert stored(app, both.get_json()["uuid"])[0] == "q.png"


@pytest.mark.parametrize(
    "body, content_type, status, words",
    [
        (b"", "image/jpeg", 422, "empty"),
        (b"<svg/>", "image/png", 415, "not a supported image format"),
        (image_bytes(fmt="ICO", size=(32, 32)), "image/png", 415, "not a supported image format"),
        (JPEG[:2000], "image/jpeg", 422, "truncated or damaged"),
        (b"<svg/>", "image/svg+xml", 415, "Content-Type 'image/svg+xml' is not taken"),
        (b"<a/>", "application/xml", 415, "Content-Type 'application/xml' is not taken"),
    ],
)
def test_raw_refusals_are_problems(client, published, body, content_type, status, words):
    response = client.post("/inference/image", data=body, content_type=content_type)
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert words in response.get_json()["detail"]
    assert published() == []


def test_seed_bodies_still_work_under_curl_default_content_type(client):
    body = f'{{"name": "x.jpg", "data": "{b64(JPEG)}"}}'
    for content_type in ("application/x-www-form-urlencoded", "application/json", "text/plain"):
        assert client.post("/inference/image", data=body, content_type=content_type).status_code == 202


@pytest.mark.parametrize("content_type", ["image/jpeg", "multipart/form-data; boundary=x"])
def test_binary_bodies_over_the_limit_are_413_having_read_at_most_the_limit(app, client, content_type):
    limit = app.config["MAX_CONTENT_LENGTH"]  # the request limit, which the proxy enforces too
    declared = CountingBody(100 * 1024 * 1024)
    response = post_stream(client, declared, 100 * 1024 * 1024, content_type)
    assert response.status_code == 413 and declared.read_bytes == 0
    chunked = CountingBody(100 * 1024 * 1024)
    response = post_stream(client, chunked, None, content_type)
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    assert chunked.read_bytes <= limit + 64 * 1024


def test_raw_image_one_byte_over_max_image_bytes_is_413_and_at_the_limit_is_checked(make_app):
    client = make_app(MAX_IMAGE_BYTES=len(JPEG)).test_client()
    assert client.post("/inference/image", data=JPEG, content_type="image/jpeg").status_code == 202
    over = client.post("/inference/image", data=JPEG + b"\0", content_type="image/jpeg")
    assert over.status_code == 413
    assert over.mimetype == "application/problem+json"


def test_multipart_image_over_max_image_bytes_is_413(make_app):
    client = make_app(MAX_IMAGE_BYTES=len(JPEG) - 1).test_client()
    response = client.post("/inference/image", data={"image": (io.BytesIO(JPEG), "a.jpg")})
    assert response.status_code == 413
    assert "larger than" in response.get_json()["detail"]


def test_multipart_parts_over_werkzeugs_spool_size_never_touch_the_disk(app, client, monkeypatch):
    import werkzeug.formparser

    def no_temp_files(*_args, **_kwargs):
        raise AssertionError("a part was spooled to a temporary file")

    monkeypatch.setattr(werkzeug.formparser, "SpooledTemporaryFile", no_temp_files)
    noise = np.random.default_rng(0).integers(0, 256, (400, 600, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    big = buffer.getvalue()
    # over Werkzeug's 500 KiB spool threshold
    assert 500 * 1024 < len(big) <= app.extensions["settings"].MAX_IMAGE_BYTES
    response = client.post("/inference/image", data={"image": (io.BytesIO(big), "noise.png")})
    assert response.status_code == 202, response.get_json()
    assert stored(app, response.get_json()["uuid"])[1] == big


def test_an_unknown_query_parameter_is_a_400_not_silently_dropped(client):
    response = client.post("/inference/image?nmae=x.jpg", data=JPEG, content_type="image/jpeg")
    assert response.status_code == 400
    assert "'nmae'" in response.get_json()["detail"]

"""Both image stores: a directory, and S3 through a real S3 API server (moto in server mode)."""

import uuid

import pytest

from jobs.imagestore import ImageNotFound, ImageStoreUnavailable, open_image_store


def test_directory_store_round_trip_and_missing_file(tmp_path):
    store = open_image_store((tmp_path / "images").as_uri())
    url = store.save("abcd.jpg", b"jpeg bytes")
    assert url.startswith("file://") and url.endswith("/ab/abcd.jpg")
    assert store.read(url) == b"jpeg bytes"
    with pytest.raises(ImageNotFound, match="not on this worker's disk"):
        store.read((tmp_path / "images" / "zz" / "gone.jpg").as_uri())


def test_directory_store_refuses_urls_outside_its_root(tmp_path):
    store = open_image_store((tmp_path / "images").as_uri())
    with pytest.raises(ImageNotFound, match="outside the image store"):
        store.read("file:///etc/passwd")


def test_unknown_scheme_is_refused_with_the_supported_ones():
    with pytest.raises(ImageStoreUnavailable, match="s3://bucket/prefix"):
        open_image_store("ftp://example/images")


def test_s3_store_round_trip_by_url(s3_endpoint):
    bucket = f"images-{uuid.uuid4().hex[:8]}"
    store = open_image_store(f"s3://{bucket}/uploads", s3_endpoint, s3_create_bucket=True)
    url = store.save("abcd.png", b"png bytes")
    assert url == f"s3://{bucket}/uploads/abcd.png"
    assert store.read(url) == b"png bytes"
    # A second process (a worker on another host) reads by URL alone.
    assert open_image_store(f"s3://{bucket}/uploads", s3_endpoint).read(url) == b"png bytes"


def test_s3_missing_object_is_image_not_found(s3_endpoint):
    bucket = f"images-{uuid.uuid4().hex[:8]}"
    store = open_image_store(f"s3://{bucket}", s3_endpoint, s3_create_bucket=True)
    with pytest.raises(ImageNotFound, match="no longer exists"):
        store.read(f"s3://{bucket}/gone.jpg")


def test_s3_missing_bucket_fails_clearly_unless_asked_to_create_it(s3_endpoint):
    bucket = f"absent-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ImageStoreUnavailable, match="S3_CREATE_BUCKET=1"):
        open_image_store(f"s3://{bucket}", s3_endpoint)
    open_image_store(f"s3://{bucket}", s3_endpoint, s3_create_bucket=True)
    open_image_store(f"s3://{bucket}", s3_endpoint)  # exists now


def test_s3_outage_is_unavailable_not_missing(s3_endpoint):
    """An unreachable S3 is a retryable error, never "image not found"."""
    import boto3
    from botocore.config import Config

    with pytest.raises(ImageStoreUnavailable, match="not accessible"):
        open_image_store("s3://any-bucket", "http://127.0.0.1:1")

    bucket = f"images-{uuid.uuid4().hex[:8]}"
    store = open_image_store(f"s3://{bucket}", s3_endpoint, s3_create_bucket=True)
    url = store.save("a.jpg", b"x")
    store.client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:1",  # nothing listens on port 1
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(ImageStoreUnavailable):
        store.save("b.jpg", b"y")
    with pytest.raises(ImageStoreUnavailable):
        store.read(url)


def test_directory_store_errors_name_the_image_not_the_server_path(tmp_path):
    """Their messages reach clients (a failed job's error), so no part of the store's root may show."""
    root = tmp_path / "private-volume" / "images"
    store = open_image_store(root.as_uri())
    (root / "zz").mkdir(parents=True)
    errors = []
    for url in [(root / "zz" / "gone.jpg").as_uri(), "file:///etc/passwd", (root / "zz").as_uri()]:
        with pytest.raises((ImageNotFound, ImageStoreUnavailable)) as caught:
            store.read(url)
        errors.append(caught.value)
    (root / "ab").write_bytes(b"a file where the shard directory belongs")
    with pytest.raises(ImageStoreUnavailable) as caught:
        store.save("abcd.jpg", b"jpeg bytes")
    errors.append(caught.value)

    assert [type(error) for error in errors] == [
        ImageNotFound,
        ImageNotFound,
        ImageStoreUnavailable,
        ImageStoreUnavailable,
    ]
    assert "gone.jpg" in str(errors[0]) and "abcd.jpg" in str(errors[3])
    for error in errors:
        assert not [part for part in root.resolve().parts[1:] if part in str(error)], str(error)

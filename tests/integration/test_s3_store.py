"""The full round trip with images in S3 (a real S3 API server), on MariaDB and RabbitMQ."""

import uuid

import boto3
from sqlalchemy import create_engine, text

from deploy.harness import app_for
from tests.conftest import SAMPLES
from tests.support.api import post, wait_for_result


def stored_url(database_url: str, prediction_uuid: str) -> str:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        url = connection.execute(
            text("SELECT image_url FROM predictions WHERE uuid = :u"), {"u": prediction_uuid}
        ).scalar_one()
    engine.dispose()
    return url


def test_round_trip_through_s3(s3_base_url, s3_service_env):
    response = post(s3_base_url, SAMPLES / "soccer_ball.jpg")
    assert response.status_code == 202
    prediction_uuid = response.json()["uuid"]
    assert wait_for_result(s3_base_url, prediction_uuid)["prediction"] == "soccer_ball"

    url = stored_url(s3_service_env["DATABASE_URL"], prediction_uuid)
    bucket = s3_service_env["IMAGE_STORE_URL"].split("/")[2]
    assert url == f"s3://{bucket}/uploads/{prediction_uuid}.jpg"
    s3 = boto3.client("s3", endpoint_url=s3_service_env["S3_ENDPOINT_URL"])
    stored = s3.get_object(Bucket=bucket, Key=f"uploads/{prediction_uuid}.jpg")["Body"].read()
    assert stored == (SAMPLES / "soccer_ball.jpg").read_bytes()


def test_object_gone_before_the_worker_reads_it_ends_failed(s3_base_url, s3_service_env):
    from jobs.database import db
    from jobs.queue import publish_job
    from jobs.records import Prediction

    bucket = s3_service_env["IMAGE_STORE_URL"].split("/")[2]
    prediction_uuid = str(uuid.uuid4())
    missing = f"s3://{bucket}/uploads/{prediction_uuid}.jpg"
    app = app_for(s3_service_env)
    with app.app_context():
        db.session.add(Prediction(uuid=prediction_uuid, name="gone.jpg", image_url=missing))
        db.session.commit()
        assert publish_job(prediction_uuid, missing)
    result = wait_for_result(s3_base_url, prediction_uuid)
    assert result["status"] == "failed" and "no longer exists" in result["error"]

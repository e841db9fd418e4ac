"""Nothing accepted is lost when a process dies: real workers killed, real servers stopped and restarted.

The broker and database outages run on private RabbitMQ and MariaDB servers
(tests/support/servers.py): the machine's shared ones are never stopped.
"""

import base64
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from deploy.harness import (
    AMQP_URL,
    app_for,
    create_database,
    deployment_env,
    drop_database,
    queue_length,
    running_service,
    start_beat,
    start_worker,
)
from tests.conftest import SAMPLES
from tests.support.job_rows import DRAIN_TIMEOUT, statuses, wait_until_finished
from tests.support.polling import until
from tests.support.servers import MariaDB
from tests.support.services import service_missing

IMAGE = SAMPLES / "elephant.jpg"


@pytest.fixture
def own_database():
    """A database of its own on the shared MariaDB, dropped after the test."""
    try:
        url = create_database("imgsvc_failures")
    except Exception as error:
        service_missing("MariaDB", error)
    yield url
    drop_database(url)


@pytest.fixture
def own_mariadb(tmp_path_factory):
    try:
        server = MariaDB(tmp_path_factory.mktemp("mariadb"))
    except Exception as error:
        service_missing("mariadb-install-db", error)
    try:
        server.start()
        yield server
    finally:
        server.remove()


def queue_jobs(env: dict, count: int) -> list[str]:
    """Jobs made as the web makes them (image stored, row committed, then published)."""
    from jobs.submit import submit_job

    with app_for(env).app_context():
        return [submit_job(IMAGE.name, IMAGE.read_bytes(), "jpg") for _ in range(count)]


def count_result_writes(database_url: str) -> None:
    """A trigger logs every UPDATE of a row, so a result written twice would show up as two lines."""
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("CREATE TABLE row_writes (uuid VARCHAR(36) NOT NULL, status VARCHAR(16) NOT NULL)"))
        connection.execute(
            text(
                "CREATE TRIGGER log_row_writes AFTER UPDATE ON predictions FOR EACH ROW "
                "INSERT INTO row_writes VALUES (NEW.uuid, NEW.status)"
            )
        )
    engine.dispose()


def row_writes(database_url: str) -> list[tuple]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT uuid, status FROM row_writes")).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def finished_at(database_url: str) -> dict:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT uuid, updated_at FROM predictions")).all()
    engine.dispose()
    return dict(rows)


def test_worker_killed_mid_batch_loses_nothing_and_each_result_is_written_once(own_database, new_queue, tmp_path):
    env = deployment_env(tmp_path, own_database, new_queue(), REPUBLISH_PENDING_AFTER="3600")
    count_result_writes(own_database)
    jobs = queue_jobs(env, 240)

    doomed = start_worker(env, tmp_path, "doomed", concurrency=1, own_group=True)
    try:
        until(
            lambda: "done" in statuses(own_database, jobs).values(),
            lambda: f"a first job done; the worker logged:\n{doomed.output()[-3000:]}",
            DRAIN_TIMEOUT,
            interval=0.05,
        )
    finally:
        doomed.kill_group()  # the main process and its pool child, mid-way through the backlog
    done_at_kill = list(statuses(own_database, jobs).values()).count("done")
    assert 0 < done_at_kill < len(jobs)
    print(f"\nkilled with {done_at_kill} of {len(jobs)} done")
    # Late re-deliveries of finished jobs, as after a crash between commit and ack.
    finished = [job for job, status in statuses(own_database, jobs).items() if status == "done"]
    assert len(queue_jobs_again(env, finished)) == len(finished)

    survivor = start_worker(env, tmp_path, "survivor", concurrency=1)
    try:
        assert set(wait_until_finished(own_database, jobs).values()) == {"done"}
        results = finished_at(own_database)
        for job in finished:  # every late re-delivery has reached the worker and been looked at
            survivor.wait_for(f"prediction {job} already done; redelivery ignored", timeout=DRAIN_TIMEOUT)
        assert queue_length(env["CELERY_QUEUE"]) == 0
    finally:
        survivor.stop()
    assert finished_at(own_database) == results, "a re-delivery rewrote a finished row"
    writes = row_writes(own_database)
    assert sorted(writes) == sorted((job, "done") for job in jobs), "each row is written exactly once"


def test_an_image_that_kills_its_worker_fails_after_the_delivery_limit_and_its_batch_completes(
    own_database, new_queue, tmp_path
):
    from jobs.submit import submit_job
    from tests.support.crashing_worker import CRASH_MARKER

    env = deployment_env(tmp_path, own_database, new_queue(), MAX_DELIVERIES="3", REPUBLISH_PENDING_AFTER="3600")
    count_result_writes(own_database)
    with app_for(env).app_context():  # all queued before the worker starts, so they arrive as one batch
        crasher = submit_job("crash.jpg", IMAGE.read_bytes() + CRASH_MARKER, "jpg")
        neighbours = [submit_job(IMAGE.name, IMAGE.read_bytes(), "jpg") for _ in range(7)]
    worker = start_worker(env, tmp_path, "crashing", concurrency=1, app="tests.support.crashing_worker:celery_app")
    try:
        final = wait_until_finished(own_database, [crasher, *neighbours], timeout=180)
    finally:
        worker.stop()
    assert final == {crasher: "failed", **dict.fromkeys(neighbours, "done")}, worker.output()[-3000:]
    with app_for(env).app_context():
        from jobs.database import db
        from jobs.records import Prediction

        assert "gave up after 3 deliveries" in db.session.get(Prediction, crasher).error
    assert sorted(row_writes(own_database)) == sorted([(crasher, "failed"), *((job, "done") for job in neighbours)])
    assert queue_length(env["CELERY_QUEUE"]) == 0
    lost_runs = worker.output().count("not committed (WorkerLostError")
    assert lost_runs == 3, "the batch of eight, then the crasher alone on each redelivery until the limit"


def test_an_image_that_kills_its_worker_in_a_bulk_message_fails_alone(own_database, new_queue, tmp_path):
    """A batch's jobs travel several to a message (jobs.broker.BULK_CHUNK): the crasher in the middle of
    one must take none of the others with it, before or after it in the message."""
    from kombu import Connection

    from config.settings import current_settings
    from jobs.database import db
    from jobs.queue import publish_jobs, queue_for
    from jobs.records import Prediction
    from jobs.submit import submit_job
    from tests.support.crashing_worker import CRASH_MARKER

    env = deployment_env(tmp_path, own_database, new_queue(), MAX_DELIVERIES="3", REPUBLISH_PENDING_AFTER="3600")
    count_result_writes(own_database)
    with app_for(env).app_context():
        jobs = [submit_job(IMAGE.name, IMAGE.read_bytes(), "jpg", bulk=True, client="bulk") for _ in range(3)]
        crasher = submit_job("crash.jpg", IMAGE.read_bytes() + CRASH_MARKER, "jpg", bulk=True, client="bulk")
        jobs += [crasher] + [
            submit_job(IMAGE.name, IMAGE.read_bytes(), "jpg", bulk=True, client="bulk") for _ in range(4)
        ]
        lane = queue_for(current_settings(), bulk=True, client="bulk")
        with Connection(AMQP_URL) as connection:  # as a batch publishes them: all eight in one message
            connection.default_channel.queue_purge(lane)
        assert (
            publish_jobs([(job, db.session.get(Prediction, job).image_url) for job in jobs], bulk=True, client="bulk")
            == 8
        )
    assert queue_length(lane) == 1
    worker = start_worker(env, tmp_path, "crashing", concurrency=1, app="tests.support.crashing_worker:celery_app")
    try:
        final = wait_until_finished(own_database, jobs, timeout=180)
    finally:
        worker.stop()
    neighbours = [job for job in jobs if job != crasher]
    assert final == {crasher: "failed", **dict.fromkeys(neighbours, "done")}, worker.output()[-3000:]
    assert sorted(row_writes(own_database)) == sorted([(crasher, "failed"), *((job, "done") for job in neighbours)])
    assert queue_length(lane) == 0


def queue_jobs_again(env: dict, uuids: list[str]) -> list[str]:
    """Publish existing jobs again, as the sweeper or a broker re-delivery would."""
    from jobs.database import db
    from jobs.queue import publish_job
    from jobs.records import Prediction

    app = app_for(env)
    with app.app_context():
        return [job for job in uuids if publish_job(job, db.session.get(Prediction, job).image_url)]


def post_image(base_url: str) -> tuple[int, str | None, float]:
    """Status, uuid and seconds of one POST."""
    body = {"name": IMAGE.name, "data": base64.b64encode(IMAGE.read_bytes()).decode()}
    started = time.monotonic()
    response = requests.post(f"{base_url}/inference/image", json=body, timeout=30)
    seconds = time.monotonic() - started
    return response.status_code, response.json().get("uuid"), seconds


def test_rabbitmq_restart_while_clients_post_loses_no_uuid(own_rabbitmq, own_database, tmp_path):
    env = deployment_env(
        tmp_path, own_database, "inference", CELERY_BROKER_URL=own_rabbitmq.url, REPUBLISH_PENDING_AFTER="4"
    )
    answers, outage = [], {}
    stop_posting = threading.Event()

    def client():
        while not stop_posting.is_set():
            answers.append((time.monotonic(), *post_image(base_url)))
            time.sleep(0.2)

    with running_service(env, tmp_path, worker_concurrency=1) as (base_url, _, worker):
        beat = start_beat(env, tmp_path)
        clients = [threading.Thread(target=client) for _ in range(2)]
        try:
            for thread in clients:
                thread.start()
            time.sleep(3)
            outage["from"] = time.monotonic()
            own_rabbitmq.stop()
            time.sleep(6)
            outage["to"] = time.monotonic()
            outage["restart_seconds"] = own_rabbitmq.start()
            time.sleep(3)
        finally:
            stop_posting.set()
            for thread in clients:
                thread.join()
        try:
            accepted = [job for _, status, job, _ in answers if status == 202]
            assert [status for _, status, _, _ in answers] == [202] * len(answers)
            during = [seconds for at, _, _, seconds in answers if outage["from"] <= at <= outage["to"]]
            assert during, "some POSTs were made while the broker was down"
            assert max(during) < 5, "a POST during the outage is answered quickly"
            assert set(wait_until_finished(own_database, accepted).values()) == {"done"}
            assert "republished" in worker.output(), "the sweeper published what the outage left pending"
        finally:
            beat.stop()
    print(
        f"\n{len(accepted)} accepted, {len(during)} during the outage (slowest {max(during):.2f}s); "
        f"broker restarted in {outage['restart_seconds']:.1f}s"
    )


def test_mariadb_restart_while_workers_run(own_mariadb, new_queue, tmp_path):
    database = create_database("imgsvc_outage", own_mariadb.url)
    env = deployment_env(tmp_path, database, new_queue())
    with running_service(env, tmp_path, worker_concurrency=1) as (base_url, _, _):
        accepted = [post_image(base_url)[1] for _ in range(40)]
        own_mariadb.stop()
        try:
            refused = [
                requests.post(
                    f"{base_url}/inference/image",
                    timeout=30,
                    json={"name": "x", "data": base64.b64encode(IMAGE.read_bytes()).decode()},
                )
                for _ in range(3)
            ]
            time.sleep(5)
        finally:
            restart_seconds = own_mariadb.start()
        for response in refused:
            assert response.status_code == 503
            assert response.headers["Retry-After"]
            assert response.headers["Content-Type"] == "application/problem+json"
            assert "database" in response.json()["detail"]
        assert set(wait_until_finished(database, accepted).values()) == {"done"}
        status, job, _ = post_image(base_url)
        assert status == 202
        assert wait_until_finished(database, [job]) == {job: "done"}
    print(f"\nMariaDB restarted in {restart_seconds:.1f}s")


def test_poison_jobs_fail_with_a_reason_and_do_not_block_the_real_worker(base_url, service_app, service_env):
    """An image too large to decode safely, and one deleted from the store, next to a good one."""
    from jobs.database import db
    from jobs.queue import publish_job
    from jobs.records import Prediction
    from tests.conftest import image_bytes

    store = service_app.extensions["image_store"]
    images = {
        "huge": image_bytes(mode="L", fmt="PNG", size=(20000, 20000)),
        "deleted": IMAGE.read_bytes(),
        "good": IMAGE.read_bytes(),
    }
    jobs = {kind: str(uuid.uuid4()) for kind in images}
    with service_app.app_context():
        urls = {kind: store.save(f"{jobs[kind]}.img", data) for kind, data in images.items()}
        Path(urls["deleted"].removeprefix("file://")).unlink()
        for kind, job in jobs.items():
            db.session.add(Prediction(uuid=job, name=kind, image_url=urls[kind]))
        db.session.commit()
        for kind, job in jobs.items():
            assert publish_job(job, urls[kind])
    wait_until_finished(service_env["DATABASE_URL"], jobs.values(), timeout=120)
    results = {kind: requests.get(f"{base_url}/predictions/{job}", timeout=10).json() for kind, job in jobs.items()}
    assert results["good"]["status"] == "done"
    assert results["huge"]["status"] == "failed" and "20000x20000 pixels" in results["huge"]["error"]
    assert results["deleted"]["status"] == "failed" and "not on this worker's disk" in results["deleted"]["error"]

"""The JSON log line, and the job uuid it carries."""

import json
import logging

import pytest

from config.logging import JobContextFilter, JsonFormatter, bind_job, unbind_job

JOB = "0b6f1c6e-8f2f-4c8e-9c1a-2f0e6b1f7a11"


def render(message, args=None, exc_info=None) -> dict:
    record = logging.LogRecord("tasks.classify", logging.INFO, __file__, 1, message, args, exc_info)
    JobContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


@pytest.fixture(autouse=True)
def no_bound_job():
    unbind_job()
    yield
    unbind_job()


def test_a_line_is_one_json_object_with_time_level_logger_and_message():
    line = render("prediction %s: %s", ("x", "tusker"))
    assert line["message"] == "prediction x: tusker"
    assert (line["level"], line["logger"]) == ("INFO", "tasks.classify")
    assert line["time"].endswith("+00:00") and "uuid" not in line


def test_lines_written_while_a_job_is_bound_carry_its_uuid():
    bind_job(JOB)
    assert render("stored image")["uuid"] == JOB
    unbind_job()
    assert "uuid" not in render("after the request")


def test_celery_task_lines_carry_the_task_id_which_is_the_job_uuid():
    line = render("Task %(name)s[%(id)s] received", {"name": "classify_image", "id": JOB})
    assert line["uuid"] == JOB and line["message"] == f"Task classify_image[{JOB}] received"


def test_exceptions_are_kept_inside_the_line():
    try:
        raise RuntimeError("broker down")
    except RuntimeError:
        import sys

        line = render("publish failed", exc_info=sys.exc_info())
    assert "RuntimeError: broker down" in line["exception"]


def test_a_failed_publish_is_logged_with_the_uuid_of_the_job(make_app, monkeypatch):
    from tests.conftest import UNREACHABLE_BROKER, b64, image_bytes

    client = make_app(UNREACHABLE_BROKER).test_client()
    seen = []
    handler = logging.Handler()
    handler.addFilter(JobContextFilter())
    handler.emit = seen.append
    logger = logging.getLogger("jobs.queue")
    monkeypatch.setattr(logger, "disabled", False)  # the migrations' fileConfig disables existing loggers
    logger.addHandler(handler)
    try:
        response = client.post("/inference/image", data=f'{{"data": "{b64(image_bytes())}"}}')
        after = client.get("/health")
    finally:
        logger.removeHandler(handler)
    job = response.get_json()["uuid"]
    assert [record.uuid for record in seen] == [job]
    assert after.status_code == 503  # the next request is not tagged with the previous job


def test_celery_processes_log_at_the_level_they_are_given():
    """Celery hands its --loglevel to the setup_logging signal as a number (WARNING is 30)."""
    from tasks.lifecycle import use_service_log_format

    try:
        use_service_log_format(loglevel=logging.WARNING)
        assert logging.getLogger().level == logging.WARNING
        use_service_log_format(loglevel="ERROR")
        assert logging.getLogger().level == logging.ERROR
    finally:
        use_service_log_format(loglevel=logging.INFO)


def test_every_procfile_process_takes_log_level():
    """Celery's processes by option; Gunicorn (gunicorn.conf.py), the waiter and the proxy read it themselves."""
    from config.settings import PROJECT_ROOT
    from deploy.supervise import read_procfile

    processes = read_procfile(PROJECT_ROOT / "Procfile")
    for name in ("worker", "beat", "webhooks", "flower"):
        assert "${LOG_LEVEL:-INFO}" in processes[name], name
    assert "logging_config(settings.LOG_LEVEL)" in (PROJECT_ROOT / "gunicorn.conf.py").read_text()
    assert "configure_logging(settings.LOG_LEVEL)" in (PROJECT_ROOT / "webapp" / "waiter.py").read_text()

"""Flower finds RabbitMQ's management API without it ever being on a command line."""

import pytest
from tornado.options import OptionParser

from config.settings import PROJECT_ROOT, load_settings
from tests.support.programs import procfile_command


@pytest.mark.parametrize(
    ("broker", "api"),
    [
        ("amqp://guest:guest@127.0.0.1:5672//", "http://guest:guest@127.0.0.1:15672/api/"),
        ("pyamqp://svc:p%40ss@rabbit.internal/prod", "http://svc:p%40ss@rabbit.internal:15672/api/"),
        ("amqps://svc:pw@rabbit:5671//", "https://svc:pw@rabbit:15671/api/"),
        ("amqp://rabbit//", "http://guest:guest@rabbit:15672/api/"),
        ("filesystem://", None),
    ],
)
def test_the_management_api_is_derived_from_the_broker_url(broker, api):
    assert load_settings({"CELERY_BROKER_URL": broker}).management_api == api


def test_flower_broker_api_overrides_the_derived_url():
    settings = load_settings(
        {"CELERY_BROKER_URL": "amqp://a:b@rabbit//", "FLOWER_BROKER_API": "http://x:y@mgmt:80/api/"}
    )
    assert settings.management_api == "http://x:y@mgmt:80/api/"


def test_flowerconfig_hands_the_api_to_flower(monkeypatch):
    """Read the way Flower reads it: tornado's parse_config_file on ./flowerconfig.py."""
    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://svc:secret@rabbit:5672//")
    monkeypatch.delenv("FLOWER_BROKER_API", raising=False)
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "ops:secret")
    options = OptionParser()
    options.define("broker_api", type=str, default=None)
    options.parse_config_file(str(PROJECT_ROOT / "flowerconfig.py"), final=False)
    assert options.broker_api == "http://svc:secret@rabbit:15672/api/"


def test_no_broker_api_login_on_the_procfile_command_line():
    assert "broker" not in procfile_command("flower")

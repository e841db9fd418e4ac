"""Settings: read once, each malformed value refused at load with a message naming it, all in .env.example."""

import pytest

from config.settings import SettingsError, load_settings


def refusal(env: dict) -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    return str(raised.value)


def test_an_int_setting_names_the_variable_its_value_and_what_it_expects():
    assert load_settings({"WAITER_PORT": "6001"}).WAITER_PORT == 6001
    assert refusal({"WAITER_PORT": "50o2"}) == "WAITER_PORT='50o2' is not valid: expected a whole number"
    assert "at least 1" in refusal({"BATCH_MAX_SIZE": "0"})
    assert "port number" in refusal({"PORT": "70000"})


@pytest.mark.parametrize(
    "raw, expected",
    [("1048576", 1048576), ("512KB", 512 * 1024), ("1MB", 1024**2), ("2MiB", 2 * 1024**2), ("3 m", 3 * 1024**2)],
)
def test_a_size_takes_bytes_or_a_unit(raw, expected):
    assert expected == load_settings({"MAX_IMAGE_BYTES": raw}).MAX_IMAGE_BYTES


def test_a_malformed_size_is_refused():
    message = refusal({"MAX_IMAGE_BYTES": "1.5MB"})
    assert message.startswith("MAX_IMAGE_BYTES='1.5MB' is not valid: expected a size in bytes")


@pytest.mark.parametrize("raw, expected", [("", False), ("0", False), ("off", False), ("1", True), ("TRUE", True)])
def test_a_flag_takes_the_usual_words(raw, expected):
    assert load_settings({"WEBHOOK_ALLOW_PRIVATE": raw}).WEBHOOK_ALLOW_PRIVATE is expected


def test_a_flag_that_is_neither_is_refused_rather_than_read_as_off():
    assert refusal({"S3_CREATE_BUCKET": "ja"}) == (
        "S3_CREATE_BUCKET='ja' is not valid: expected 1/true/yes/on or 0/false/no/off"
    )


def test_a_url_needs_a_scheme_and_the_right_one():
    assert load_settings({"WAITER_URL": "http://waiter:5002/"}).WAITER_URL == "http://waiter:5002"
    assert "WAITER_URL='waiter:5002'" in refusal({"WAITER_URL": "waiter:5002"})
    assert "expected a URL such as file/s3://" in refusal({"IMAGE_STORE_URL": "ftp://host/images"})
    assert "DATABASE_URL='predictions.sqlite'" in refusal({"DATABASE_URL": "predictions.sqlite"})


def test_a_float_and_a_choice_are_checked_too():
    assert "BATCH_MAX_WAIT='5ms'" in refusal({"BATCH_MAX_WAIT": "5ms"})
    assert load_settings({"LOG_LEVEL": "debug"}).LOG_LEVEL == "DEBUG"
    assert "expected one of DEBUG, INFO" in refusal({"LOG_LEVEL": "LOUD"})


def test_the_waiter_port_is_the_proxy_default_upstream():
    settings = load_settings({"WAITER_PORT": "6002"})
    assert settings.PROXY_WAITER_UPSTREAM == "127.0.0.1:6002"

"""Skipping a test whose shared service is not running, unless the run requires every service (CI)."""

import os

import pytest

SERVICES_REQUIRED = os.environ.get("REQUIRE_SERVICES") == "1"


def service_missing(what: str, error: Exception):
    message = f"{what} is not reachable ({error}); start it or unset REQUIRE_SERVICES to skip"
    if SERVICES_REQUIRED:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)

"""The alert rules, evaluated by Prometheus's own promtool on recorded series (deploy/prometheus/alerts.test.yml).

promtool comes from Debian's prometheus package (scripts/install-promtool.sh puts it in vendor/prometheus).
"""

import os
import shutil
import subprocess

import pytest

from config.settings import PROJECT_ROOT

RULES = PROJECT_ROOT / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def promtool():
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    vendored = PROJECT_ROOT / "vendor" / "prometheus" / "promtool"
    if not found and vendored.exists():
        found = str(vendored)
    if not found:
        message = "promtool missing: run scripts/install-promtool.sh"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def test_the_rules_file_is_valid(promtool):
    result = subprocess.run([promtool, "check", "rules", "alerts.yml"], cwd=RULES, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_when_it_should_and_not_otherwise(promtool):
    result = subprocess.run([promtool, "test", "rules", "alerts.test.yml"], cwd=RULES, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

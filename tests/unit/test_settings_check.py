"""A bad setting stops `make run` first, in one line naming it, before any migration or process."""

import subprocess
import sys

import pytest

from config.settings import PROJECT_ROOT
from tests.support.programs import clean_env, fake_program


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("WORKER_CONCURRENCY", "abc", "a whole number"),
        ("MAX_IMAGE_BYTES", "lots", "a size in bytes"),
        ("BATCH_MAX_WAIT", "soon", "a number"),
    ],
)
def test_config_check_names_the_variable_its_value_and_what_is_expected(tmp_path, name, value, expected):
    result = subprocess.run(
        [sys.executable, "-m", "config.check"],
        cwd=PROJECT_ROOT,
        env=clean_env(PYTHON_DOTENV_DISABLED="1", INSTANCE_PATH=str(tmp_path), **{name: value}),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"configuration error: {name}={value!r} is not valid: expected {expected}")


def test_make_run_stops_at_a_bad_setting_before_migrating_or_starting_anything(tmp_path):
    """A stand-in virtualenv records whether the migration or the supervisor ran."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake_program(
        venv / "bin" / "python",
        f'if [ "$*" = "-m deploy.supervise" ]; then touch {tmp_path}/started; else exec {sys.executable} "$@"; fi',
    )
    fake_program(venv / "bin" / "flask", f"touch {tmp_path}/migrated")
    (venv / ".installed").touch()
    result = subprocess.run(
        ["make", "--no-print-directory", "run", f"VENV={venv}", "SHARED_MODELS=/nonexistent"],
        cwd=PROJECT_ROOT,
        env=clean_env(
            PYTHON_DOTENV_DISABLED="1",
            INSTANCE_PATH=str(tmp_path / "instance"),
            KERAS_HOME=str(tmp_path / "keras"),
            WORKER_CONCURRENCY="abc",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "configuration error: WORKER_CONCURRENCY='abc' is not valid: expected a whole number" in result.stderr
    assert len([line for line in result.stderr.splitlines() if "WORKER_CONCURRENCY" in line]) == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "migrated").exists() and not (tmp_path / "started").exists()

"""Flower never starts open: it refuses without a login (flowerconfig.py), which it reads from the
environment, never from its command line; `make run` generates one and prints it, copyable.

Flower answers /metrics without its login, so it is also reachable from this host only.
"""

import os
import re
import shlex
import subprocess
import sys

import requests
import yaml

from deploy.harness import free_port
from tests.support.polling import until
from tests.support.programs import PROJECT_ROOT, clean_env, fake_program, procfile_command


def flower_command(port: int) -> list[str]:
    """The Procfile's flower line, run without a shell (its ${...} defaults filled in)."""
    command = procfile_command("flower").replace("${FLOWER_PORT:-5555}", str(port))
    command = command.replace("${LOG_LEVEL:-INFO}", "WARNING")
    assert "$" not in command, command
    arguments = shlex.split(command)
    return [sys.executable, "-m", *arguments[arguments.index("celery") :]]


def flower_env(tmp_path, **env) -> dict:
    return clean_env(INSTANCE_PATH=str(tmp_path), CELERY_BROKER_URL="memory://", PYTHON_DOTENV_DISABLED="1", **env)


def test_flower_refuses_to_start_without_credentials(tmp_path):
    result = subprocess.run(
        flower_command(free_port()), cwd=PROJECT_ROOT, env=flower_env(tmp_path), capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH is not set: expected user:password" in result.stderr


def test_flower_login_goes_through_the_environment_not_the_command_line(tmp_path):
    """`ps` shows a command line to every local user; Flower reads FLOWER_BASIC_AUTH itself."""
    assert "basic-auth" not in procfile_command("flower")
    assert "FLOWER_BASIC_AUTH" not in procfile_command("flower")
    port = free_port()
    flower = subprocess.Popen(
        flower_command(port),
        cwd=PROJECT_ROOT,
        env=flower_env(tmp_path, FLOWER_BASIC_AUTH="ops:s3cret"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"

        def anonymous_status():
            try:
                return requests.get(url, timeout=2).status_code
            except requests.ConnectionError:
                assert flower.poll() is None, "Flower did not start"
                return None

        assert until(anonymous_status, "Flower started", 60, interval=0.2) == 401
        assert requests.get(url, auth=("ops", "s3cret"), timeout=5).status_code == 200
    finally:
        flower.terminate()
        flower.wait(timeout=30)


def test_procfile_binds_flower_to_loopback():
    arguments = shlex.split(procfile_command("flower"))
    assert [argument for argument in arguments if argument.startswith("--address")] == ["--address=127.0.0.1"]


def test_docker_compose_publishes_flower_on_loopback_only():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    ports = compose["services"]["flower"]["ports"]
    assert ports and all(port.startswith("127.0.0.1:") for port in ports), ports


def make_run(tmp_path, **env) -> tuple[str, str]:
    """`make run` with a stand-in virtualenv whose supervisor only records the Flower login it was given."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake_program(
        venv / "bin" / "python",
        f'if [ "$*" = "-m deploy.supervise" ]; then printf %s "$FLOWER_BASIC_AUTH" > {tmp_path}/supervise-auth; '
        f'else exec {sys.executable} "$@"; fi',
    )
    fake_program(venv / "bin" / "flask", "exit 0")
    (venv / ".installed").touch()
    os.utime(venv / ".installed", (2**31, 2**31))  # newer than requirements.txt: no install
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "run",
            f"VENV={venv}",
            "SHARED_MODELS=/nonexistent",
            f"KERAS_HOME={tmp_path / 'keras'}",
        ],
        cwd=PROJECT_ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, (tmp_path / "supervise-auth").read_text()


def test_make_run_generates_and_prints_credentials_when_none_are_set(tmp_path):
    output, auth = make_run(tmp_path)
    user, _, password = auth.partition(":")
    assert user and len(password) >= 16
    # On a line of its own, with nothing after it: a double click copies exactly the login.
    assert re.search(rf"^Flower login: +{re.escape(auth)}$", output, re.MULTILINE), output


def test_make_run_uses_the_credentials_it_is_given(tmp_path):
    _, auth = make_run(tmp_path, FLOWER_BASIC_AUTH="ops:s3cret")
    assert auth == "ops:s3cret"


def test_docker_compose_refuses_to_start_flower_without_credentials():
    compose = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "FLOWER_BASIC_AUTH: ${FLOWER_BASIC_AUTH:?" in compose

"""Flower never starts open: the Procfile refuses without credentials, and `make run` generates them.

Flower answers /metrics without its login, so it is also reachable from this host only.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def fake_program(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def clean_env(**extra) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLOWER_", "MAKE"))}
    return {**env, **extra}


def procfile_command(name: str) -> str:
    [command] = [
        line.split(":", 1)[1]
        for line in (PROJECT_ROOT / "Procfile").read_text().splitlines()
        if line.startswith(f"{name}:")
    ]
    return command


def run_flower_line(tmp_path, **env):
    """The Procfile's flower command through the shell, as honcho runs it, with celery faked."""
    fake_program(tmp_path / "celery", f'echo "$@" > {tmp_path}/celery-args')
    env = clean_env(PATH=f"{tmp_path}:{os.environ['PATH']}", **env)
    return subprocess.run(["sh", "-c", procfile_command("flower")], env=env, capture_output=True, text=True)


def test_procfile_refuses_to_start_flower_without_credentials(tmp_path):
    result = run_flower_line(tmp_path)
    assert result.returncode != 0
    assert "set FLOWER_BASIC_AUTH" in result.stderr
    assert not (tmp_path / "celery-args").exists(), "flower must not have been started"


def test_procfile_passes_the_credentials_to_flower(tmp_path):
    assert run_flower_line(tmp_path, FLOWER_BASIC_AUTH="ops:s3cret").returncode == 0
    assert "--basic-auth=ops:s3cret" in (tmp_path / "celery-args").read_text()


def test_procfile_binds_flower_to_loopback(tmp_path):
    assert run_flower_line(tmp_path, FLOWER_BASIC_AUTH="ops:s3cret").returncode == 0
    arguments = shlex.split((tmp_path / "celery-args").read_text())
    assert [argument for argument in arguments if argument.startswith("--address")] == ["--address=127.0.0.1"]


def test_docker_compose_publishes_flower_on_loopback_only():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    ports = compose["services"]["flower"]["ports"]
    assert ports and all(port.startswith("127.0.0.1:") for port in ports), ports


def make_run(tmp_path, **env) -> tuple[str, str]:
    """`make run` with a stand-in virtualenv whose honcho only records the Flower login it was given."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    fake_program(venv / "bin" / "flask", "exit 0")
    fake_program(venv / "bin" / "honcho", f'printf %s "$FLOWER_BASIC_AUTH" > {tmp_path}/honcho-auth')
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
    return result.stdout, (tmp_path / "honcho-auth").read_text()


def test_make_run_generates_and_prints_credentials_when_none_are_set(tmp_path):
    output, auth = make_run(tmp_path)
    user, _, password = auth.partition(":")
    assert user and len(password) >= 16
    assert re.search(rf"basic auth {re.escape(auth)}\b", output)


def test_make_run_uses_the_credentials_it_is_given(tmp_path):
    _, auth = make_run(tmp_path, FLOWER_BASIC_AUTH="ops:s3cret")
    assert auth == "ops:s3cret"


def test_docker_compose_refuses_to_start_flower_without_credentials():
    compose = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "FLOWER_BASIC_AUTH: ${FLOWER_BASIC_AUTH:?" in compose

"""The Procfile is the one list of processes: the harness runs its lines, compose runs the same commands."""

import re
import shlex
import sys

import yaml

from config.settings import PROJECT_ROOT, load_settings
from deploy.harness import PROCFILE, procfile_command
from deploy.supervise import read_procfile

# Options a container sets its own way (listening on every interface, fixed in-container ports and paths).
CONTAINER_OPTIONS = {"--bind", "--host", "--port", "--address", "--schedule", "--basic-auth"}


def procfile() -> dict[str, str]:
    return read_procfile(PROCFILE)


def compose_commands() -> dict[str, str]:
    services = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    return {name: service["command"] for name, service in services.items() if "command" in service}


def shape(command: str) -> tuple[list[str], dict[str, str]]:
    """(positional words, options) of a command with ``${NAME:-default}`` at its default, ``env -u`` dropped."""
    while re.search(r"\$\{[A-Z_]+:[-?][^${}]*\}", command):
        command = re.sub(r"\$\{[A-Z_]+:[-?]([^${}]*)\}", r"\1", command)
    words = shlex.split(command)
    if words[0] == "env":
        words = words[3:]
    positional, options = [], {}
    while words:
        word = words.pop(0)
        if not word.startswith("--"):
            positional.append(word)
        elif "=" in word:
            options.update([word.split("=", 1)])
        else:
            options[word] = words.pop(0) if words and not words[0].startswith("--") else ""
    return positional, {name: value for name, value in options.items() if name not in CONTAINER_OPTIONS}


def test_compose_runs_each_procfile_process_with_the_same_options():
    compose = compose_commands()
    for name, command in procfile().items():
        if name == "proxy":
            continue  # compose runs the nginx image on the same template (tests/unit/test_proxy.py)
        assert shape(compose[name]) == shape(command), name


def test_the_procfile_defaults_are_the_settings_defaults():
    defaults = load_settings({})
    for name, default in re.findall(r"\$\{([A-Z_]+):-([^${}]*)\}", PROCFILE.read_text()):
        if hasattr(defaults, name) and name != "INSTANCE_PATH":
            assert str(getattr(defaults, name)) == default, name


def test_the_harness_runs_the_procfile_line_expanded_from_its_environment(tmp_path):
    env = {"INSTANCE_PATH": str(tmp_path), "WEBHOOK_CONCURRENCY": "3"}
    assert procfile_command("webhooks", env, "--hostname", "h@%h") == [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks.webhook_worker:celery_app",
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        "3",
        "--hostname",
        "webhooks@%h",
        "--loglevel",
        "INFO",
        "--hostname",
        "h@%h",
    ]
    web = procfile_command("web", env)
    assert web[web.index("--bind") + 1] == f"unix:{tmp_path}/web.sock"
    assert procfile_command("waiter", env) == [sys.executable, "-m", "webapp.waiter"]

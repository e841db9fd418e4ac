"""The proxy's configuration: rendered as make run and docker-compose render it, and accepted by real nginx."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from config.settings import PROJECT_ROOT, load_settings
from deploy.proxy import PLACEHOLDER, PLAIN, TEMPLATES, render, template_values

API_TEMPLATE = (TEMPLATES / "api.conf.template").read_text()


def compose_services() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]


def compose_default(value: str) -> str:
    """``${NAME:-default}`` → ``default``, as compose resolves it with NAME unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def values_for(env: dict) -> dict[str, str]:
    return template_values(load_settings(env))


def test_defaults_fill_every_placeholder(tmp_path):
    values = values_for({"INSTANCE_PATH": str(tmp_path)})
    assert values["PROXY_LISTEN"] == "127.0.0.1:5000"
    assert values["PROXY_UPSTREAM"] == f"unix:{tmp_path.resolve() / 'web.sock'}"
    assert values["PROXY_HEADER_TIMEOUT"] == "10" and values["PROXY_CONNECTIONS_PER_CLIENT"] == "32"
    assert int(values["PROXY_READ_TIMEOUT"]) >= 40, "a long poll waits up to 30 s"
    for template in TEMPLATES.glob("*.template"):
        assert not PLACEHOLDER.search(render(template.read_text(), values))


def test_settings_come_from_the_environment(tmp_path):
    values = values_for(
        {
            "INSTANCE_PATH": str(tmp_path),
            "PORT": "8080",
            "PROXY_BIND": "::",
            "WEB_BIND": "127.0.0.1:9000",
            "PROXY_HEADER_TIMEOUT": "5",
        }
    )
    assert values["PROXY_LISTEN"] == "[::]:8080"
    assert values["PROXY_UPSTREAM"] == "127.0.0.1:9000"
    assert values["PROXY_HEADER_TIMEOUT"] == "5"


def test_a_malformed_setting_stops_the_proxy_at_start(tmp_path):
    with pytest.raises(ValueError):
        values_for({"INSTANCE_PATH": str(tmp_path), "PROXY_BODY_TIMEOUT": "10 seconds"})


def test_an_unknown_placeholder_is_an_error():
    with pytest.raises(KeyError):
        render("listen ${PROXY_NOWHERE};", {})


@pytest.mark.parametrize("max_image_bytes", ["1048576", "5000000"])
def test_the_body_limit_is_the_apps(make_app, tmp_path, max_image_bytes):
    app = make_app(MAX_IMAGE_BYTES=int(max_image_bytes))
    values = values_for({"INSTANCE_PATH": str(tmp_path), "MAX_IMAGE_BYTES": max_image_bytes})
    assert int(values["PROXY_MAX_BODY_BYTES"]) == app.config["MAX_CONTENT_LENGTH"]


def test_nginx_accepts_the_rendered_configuration(tmp_path):
    """``nginx -t`` on the files the launcher writes (the same templates, as make run renders them)."""
    values = values_for({"INSTANCE_PATH": str(tmp_path)})
    for name in ("main", "api"):
        (tmp_path / f"{name}.conf").write_text(render((TEMPLATES / f"{name}.conf.template").read_text(), values))
    nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    assert nginx, "nginx is missing: scripts/install-system-deps.sh installs it"
    result = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "main.conf"), "-e", "stderr"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_compose_renders_the_same_template_with_the_same_defaults():
    proxy = compose_services()["proxy"]
    environment = proxy["environment"]
    placeholders = set(PLACEHOLDER.findall(API_TEMPLATE))
    assert all(name.startswith("PROXY_") for name in placeholders), "the image's envsubst filter is ^PROXY_"
    assert placeholders <= environment.keys(), "envsubst leaves a placeholder without a value as it is"
    assert "./deploy/nginx/api.conf.template:/etc/nginx/templates/default.conf.template:ro" in proxy["volumes"]
    defaults = load_settings({})
    for name in PLAIN:
        assert compose_default(environment[name]) == str(getattr(defaults, name))
    # Compose's web runs with the default MAX_IMAGE_BYTES.
    assert environment["PROXY_MAX_BODY_BYTES"] == values_for({})["PROXY_MAX_BODY_BYTES"]
    assert environment["PROXY_BATCH_MAX_BODY_BYTES"] == values_for({})["PROXY_BATCH_MAX_BODY_BYTES"]
    assert environment["PROXY_UPSTREAM"] == "web:5000"


def test_only_the_proxy_publishes_the_api_port():
    services = compose_services()
    assert services["proxy"]["ports"] == ["${PORT:-5000}:5000"]
    assert "ports" not in services["web"]
    assert "--bind 0.0.0.0:5000" in services["web"]["command"]
    assert services["web"]["environment"]["FORWARDED_ALLOW_IPS"] == "*"


def test_procfile_puts_the_proxy_in_front():
    processes = dict(line.split(": ", 1) for line in (PROJECT_ROOT / "Procfile").read_text().splitlines() if line)
    assert next(iter(processes)) == "proxy", "the way in comes first"
    assert processes["proxy"] == "python -m deploy.proxy"
    assert "--bind ${WEB_BIND:-unix:${INSTANCE_PATH:-instance}/web.sock}" in processes["web"]
    assert "--access-log" not in processes["web"], "the proxy logs each request"


@pytest.mark.parametrize(
    "level, nginx_level", [("DEBUG", "info"), ("INFO", "warn"), ("warning", "warn"), ("ERROR", "error")]
)
def test_log_level_sets_the_proxys_error_log(tmp_path, level, nginx_level):
    values = template_values(load_settings({"INSTANCE_PATH": str(tmp_path), "LOG_LEVEL": level}))
    assert values["PROXY_ERROR_LOG_LEVEL"] == nginx_level
    main = render((PROJECT_ROOT / "deploy" / "nginx" / "main.conf.template").read_text(), values)
    assert f"error_log stderr {nginx_level};" in main


def test_gunicorn_makes_no_control_socket_shared_by_every_instance():
    """Its default is one fixed path in $HOME; gunicorn.conf.py turns it off (a known Gunicorn setting)."""
    from gunicorn.config import Config

    assert "control_socket_disable" in Config().settings
    assert "\ncontrol_socket_disable = True\n" in (PROJECT_ROOT / "gunicorn.conf.py").read_text()

"""``python -m deploy.proxy``: nginx in front of Gunicorn, in the foreground (the Procfile's ``proxy``).

nginx reads each request whole before Gunicorn's threads see it, so slow or idle clients cannot
hold them. This renders ``deploy/nginx/*.conf.template`` from the environment into
``<INSTANCE_PATH>/proxy`` and execs nginx with everything it writes there, so it needs neither root
nor system folders. docker-compose.yml renders the same ``api.conf.template`` with the nginx image's
envsubst, which replaces the same ``${NAME}`` placeholders.
"""

import grp
import os
import pwd
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from dotenv import load_dotenv

from config.settings import PROJECT_ROOT, load_settings

TEMPLATES = Path(__file__).resolve().parent / "nginx"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# Seconds, and requests in progress per client address.
DEFAULTS = {
    "PROXY_HEADER_TIMEOUT": 10,
    "PROXY_BODY_TIMEOUT": 10,
    "PROXY_SEND_TIMEOUT": 10,
    "PROXY_KEEPALIVE_TIMEOUT": 10,
    "PROXY_READ_TIMEOUT": 60,
    "PROXY_CONNECTIONS_PER_CLIENT": 32,
}


def web_bind(env: Mapping) -> str:
    """Gunicorn's address, as the Procfile's ``web`` binds it: ``WEB_BIND``, else a socket in the instance folder."""
    return env.get("WEB_BIND") or f"unix:{load_settings(env).INSTANCE_PATH / 'web.sock'}"


def template_values(env: Mapping) -> dict[str, str]:
    """Every placeholder of the templates, from ``env``; a malformed number stops the proxy at start."""
    settings = load_settings(env)
    values = {name: str(int(env.get(name) or default)) for name, default in DEFAULTS.items()}
    bind, port = env.get("PROXY_BIND") or "127.0.0.1", int(env.get("PORT") or 5000)
    upstream = web_bind(env)
    if upstream.startswith("unix:"):
        upstream = f"unix:{Path(upstream[5:]).resolve()}"
    return {
        **values,
        "PROXY_LISTEN": f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}",
        "PROXY_UPSTREAM": upstream,
        "PROXY_WAITER_UPSTREAM": env.get("PROXY_WAITER_UPSTREAM") or f"127.0.0.1:{int(env.get('WAITER_PORT') or 5002)}",
        "PROXY_MAX_BODY_BYTES": str(settings.max_request_bytes),
        "PROXY_BATCH_MAX_BODY_BYTES": str(settings.BATCH_MAX_BYTES),
        "PROXY_USER": _user_directive(settings.INSTANCE_PATH),
    }


def _user_directive(instance_dir: Path) -> str:
    """Started as root, nginx would run its workers as nobody, who cannot reach the socket and folders
    in the instance folder: run them as the folder's owner instead. Otherwise nginx keeps its user."""
    if os.geteuid() != 0:
        return ""
    owner = instance_dir.stat()
    return f"user {pwd.getpwuid(owner.st_uid).pw_name} {grp.getgrgid(owner.st_gid).gr_name};"


def render(template: str, values: Mapping[str, str]) -> str:
    """``${NAME}`` replaced by its value, as envsubst does; an unknown name raises KeyError."""
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def main() -> None:
    load_dotenv(PROJECT_ROOT / ".env", override=False)
    prefix = load_settings(os.environ).INSTANCE_PATH / "proxy"
    prefix.mkdir(parents=True, exist_ok=True)
    values = template_values(os.environ)
    for name in ("main", "api"):
        (prefix / f"{name}.conf").write_text(render((TEMPLATES / f"{name}.conf.template").read_text(), values))
    nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if nginx is None:
        sys.exit("nginx is not installed; scripts/install-system-deps.sh installs it")
    os.execv(nginx, [nginx, "-p", f"{prefix}/", "-c", str(prefix / "main.conf"), "-e", "stderr", "-g", "daemon off;"])


if __name__ == "__main__":
    main()

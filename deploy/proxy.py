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

from config.settings import Settings, load_settings

TEMPLATES = Path(__file__).resolve().parent / "nginx"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# Seconds, and requests in progress per client address: rendered as they are set.
PLAIN = (
    "PROXY_HEADER_TIMEOUT",
    "PROXY_BODY_TIMEOUT",
    "PROXY_SEND_TIMEOUT",
    "PROXY_KEEPALIVE_TIMEOUT",
    "PROXY_READ_TIMEOUT",
    "PROXY_CONNECTIONS_PER_CLIENT",
)
# LOG_LEVEL in nginx's words; its "info" would add a line for every client that closes early.
NGINX_LOG_LEVELS = {"DEBUG": "info", "INFO": "warn", "WARNING": "warn", "ERROR": "error", "CRITICAL": "crit"}


def template_values(settings: Settings) -> dict[str, str]:
    """Every placeholder of the templates, from ``settings``."""
    bind, upstream = settings.PROXY_BIND, settings.WEB_BIND
    if upstream.startswith("unix:"):
        upstream = f"unix:{Path(upstream[5:]).resolve()}"
    return {
        **{name: str(getattr(settings, name)) for name in PLAIN},
        "PROXY_LISTEN": f"[{bind}]:{settings.PORT}" if ":" in bind else f"{bind}:{settings.PORT}",
        "PROXY_UPSTREAM": upstream,
        "PROXY_WAITER_UPSTREAM": settings.PROXY_WAITER_UPSTREAM,
        "PROXY_MAX_BODY_BYTES": str(settings.max_request_bytes),
        "PROXY_BATCH_MAX_BODY_BYTES": str(settings.BATCH_MAX_BYTES),
        "PROXY_USER": _user_directive(settings.INSTANCE_PATH),
        "PROXY_ERROR_LOG_LEVEL": NGINX_LOG_LEVELS[settings.LOG_LEVEL],
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
    settings = load_settings()
    prefix = settings.INSTANCE_PATH / "proxy"
    prefix.mkdir(parents=True, exist_ok=True)
    values = template_values(settings)
    for name in ("main", "api"):
        (prefix / f"{name}.conf").write_text(render((TEMPLATES / f"{name}.conf.template").read_text(), values))
    nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if nginx is None:
        sys.exit("nginx is not installed; scripts/install-system-deps.sh installs it")
    os.execv(nginx, [nginx, "-p", f"{prefix}/", "-c", str(prefix / "main.conf"), "-e", "stderr", "-g", "daemon off;"])


if __name__ == "__main__":
    main()

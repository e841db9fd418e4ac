#!/bin/sh
# Installs the Debian packages the service needs, only when they are missing, so `make` stays a no-op
# on a machine that has them: the MySQL client headers requirements.txt builds against, nginx,
# the proxy in front of Gunicorn (deploy/proxy.py), and iproute2 (`ip`), with which the multi-host
# test makes its hosts (deploy/netns.py).
set -eu
PACKAGES=""
pkg-config --exists mysqlclient 2>/dev/null || PACKAGES="default-libmysqlclient-dev pkg-config gcc"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || PACKAGES="$PACKAGES nginx"
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || PACKAGES="$PACKAGES iproute2"
if [ -z "$PACKAGES" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Install these packages (or your system's equivalents), then run make again:$PACKAGES" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing$PACKAGES with apt-get..."
$SUDO apt-get update -q
# shellcheck disable=SC2086  # one word per package
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $PACKAGES

#!/bin/sh
# Installs the Debian packages the project needs, only when they are missing, so `make` stays a
# no-op on a machine that has them: the MySQL client headers that requirements.txt builds against,
# and iproute2 (`ip`), which the multi-host test uses to make its hosts (deploy/netns.py).
set -eu
packages=""
pkg-config --exists mysqlclient 2>/dev/null || packages="default-libmysqlclient-dev pkg-config gcc"
command -v ip >/dev/null 2>&1 || packages="$packages iproute2"
if [ -z "$packages" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Install these packages (or your system's equivalents), then run make again: $packages" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing with apt-get: $packages"
$SUDO apt-get update -q
# shellcheck disable=SC2086  # one word per package
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $packages

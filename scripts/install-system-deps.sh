#!/bin/sh
# Installs the Debian packages that requirements.txt builds against (MySQL client headers),
# only when they are missing, so `make` stays a no-op on a machine that has them.
set -eu
if pkg-config --exists mysqlclient 2>/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Install the MySQL client headers (e.g. libmysqlclient-dev) and pkg-config, then run make again." >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing the MySQL client headers with apt-get..."
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q default-libmysqlclient-dev pkg-config gcc

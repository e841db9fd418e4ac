#!/bin/sh
# Puts promtool (Prometheus's rule checker, for tests/unit/test_alert_rules.py) at $1/promtool, taken
# out of Debian's prometheus package without installing it: installing would start a Prometheus
# daemon on port 9090. A no-op when promtool is on PATH or already there.
set -eu
DEST="${1:-vendor/prometheus}"
command -v promtool >/dev/null 2>&1 && exit 0
[ -x "$DEST/promtool" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool missing: install Prometheus's promtool and put it on PATH" >&2
  exit 1
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && apt-get download -q prometheus 2>/dev/null || { apt-get update -q && apt-get download -q prometheus; })
dpkg-deb -x "$WORK"/prometheus_*.deb "$WORK/root"
mkdir -p "$DEST"
cp "$WORK/root/usr/bin/promtool" "$DEST/promtool"
echo "promtool $("$DEST/promtool" --version 2>&1 | head -1) in $DEST"

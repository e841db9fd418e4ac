#!/bin/sh
# Puts Swagger UI's files for /docs into vendor/swagger-ui (git-ignored): the pinned
# swagger-ui-dist tarball from the npm registry, checked against the integrity hash below,
# of which only the files the app serves are unpacked (no demo page, no OAuth2 redirect).
set -eu
VERSION=5.35.0
INTEGRITY=sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==
FILES="swagger-ui.css swagger-ui-bundle.js favicon-32x32.png LICENSE NOTICE"
DEST=${1:-$(dirname "$0")/../vendor/swagger-ui}

command -v npm >/dev/null 2>&1 || { echo "npm is needed to fetch Swagger UI (apt-get install npm)." >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tarball="$work/swagger-ui-dist-$VERSION.tgz"
actual=sha512-$(node -e 'const fs = require("fs"), crypto = require("crypto");
  process.stdout.write(crypto.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tarball")
if [ "$actual" != "$INTEGRITY" ]; then
  echo "swagger-ui-dist@$VERSION: integrity $actual, expected $INTEGRITY; not installed." >&2
  exit 1
fi
mkdir "$work/unpacked"
tar -xzf "$tarball" -C "$work/unpacked" --strip-components=1 $(for f in $FILES; do echo "package/$f"; done)
echo "swagger-ui-dist@$VERSION $INTEGRITY" > "$work/unpacked/VERSION"
rm -rf "$DEST" && mkdir -p "$(dirname "$DEST")" && mv "$work/unpacked" "$DEST"
echo "Swagger UI $VERSION installed in $DEST"

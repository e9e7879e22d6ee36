#!/usr/bin/env bash
# Make sure the speedscope npm package (its published file-format schema and its web
# app) is in .cache/speedscope: tests/test_export.py validates `stethoscope export`
# against both. A no-op when the pinned version is already there; node and npm come
# from Debian's packages when they are missing (ensure-debian-package.sh).
set -euo pipefail

VERSION=1.25.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${STETHOSCOPE_SPEEDSCOPE_DIR:-$ROOT/.cache/speedscope}  # override only to test this script
PACKAGE=$PREFIX/node_modules/speedscope

installed_version() {
    # The version in the installed package.json, or nothing.
    sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' \
        "$PACKAGE/package.json" 2>/dev/null | head -n 1
}

if [ "$(installed_version)" = "$VERSION" ] \
        && [ -f "$PACKAGE/dist/release/index.html" ] \
        && [ -f "$PACKAGE/dist/release/file-format-schema.json" ]; then
    echo "speedscope: $VERSION already in $PREFIX"
    exit 0
fi

bash "$ROOT/scripts/ensure-debian-package.sh" npm nodejs npm

echo "speedscope: installing speedscope@$VERSION into $PREFIX"
mkdir -p "$PREFIX"
# --ignore-scripts: only the package's files are needed, nothing is built or run.
timeout 600 npm install --prefix "$PREFIX" --no-save --no-audit --no-fund \
    --ignore-scripts "speedscope@$VERSION" </dev/null

for needed in dist/release/index.html dist/release/file-format-schema.json; do
    if [ ! -f "$PACKAGE/$needed" ]; then
        echo "error: speedscope@$VERSION was installed but $PACKAGE/$needed is missing" >&2
        exit 1
    fi
done
echo "speedscope: $(installed_version) in $PREFIX"

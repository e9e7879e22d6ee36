#!/usr/bin/env bash
# Make sure the speedscope npm package (its published file-format schema and its web
# app) is in .cache/speedscope: tests/test_export.py validates `stethoscope export`
# against both. A no-op when the pinned version is already there; installs node and
# npm with apt-get when they are missing, as ensure-chromium.sh does for chromium.
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

if ! command -v npm >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: npm is missing and apt-get is not available; install node and npm" >&2
        exit 1
    fi
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo -n)   # never prompt: CI has no stdin
        else
            echo "error: npm is missing; run as root or: apt-get install -y nodejs npm" >&2
            exit 1
        fi
    fi
    echo "speedscope: npm missing, installing Debian's nodejs and npm packages"
    ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q
    ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q nodejs npm </dev/null
fi

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

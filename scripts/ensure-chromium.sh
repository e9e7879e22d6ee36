#!/usr/bin/env bash
# Make sure Debian's chromium is installed at /usr/bin/chromium (the browser tests
# drive it through Playwright's Python package; `playwright install` cannot download
# browsers here). A no-op when it is already there.
set -euo pipefail

CHROMIUM=${STETHOSCOPE_CHROMIUM_CHECK:-/usr/bin/chromium}  # override only to test this script

if [ -x "$CHROMIUM" ]; then
    echo "chromium: $CHROMIUM already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $CHROMIUM is missing and apt-get is not available;" \
         "install Debian's chromium package yourself" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)   # never prompt: CI has no stdin
    else
        echo "error: $CHROMIUM is missing; run as root or install chromium:" \
             "apt-get install -y chromium" >&2
        exit 1
    fi
fi

echo "chromium: $CHROMIUM missing, installing Debian's chromium package"
${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q
${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium </dev/null

if [ ! -x "$CHROMIUM" ]; then
    echo "error: apt-get installed chromium but $CHROMIUM does not exist" >&2
    exit 1
fi
"$CHROMIUM" --version || true

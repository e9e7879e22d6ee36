#!/usr/bin/env bash
# ensure-debian-package.sh COMMAND PACKAGE...
# Make sure COMMAND (a name on PATH or an absolute path) exists; if it does not,
# install Debian's PACKAGEs with apt-get (as root, or through `sudo -n`: CI has no
# stdin, so it never prompts). The test dependencies that are not Python packages
# come this way: chromium (browser tests), tmux (terminal view), node and npm
# (speedscope, which checks the exports). A no-op when COMMAND is there.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 COMMAND PACKAGE..." >&2
    exit 2
fi
COMMAND=$1
shift

present() { command -v "$COMMAND" >/dev/null 2>&1; }

if present; then
    echo "$COMMAND: $(command -v "$COMMAND") already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $COMMAND is missing and apt-get is not available;" \
         "install Debian's $* package(s) yourself" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "error: $COMMAND is missing; run as root or: apt-get install -y $*" >&2
        exit 1
    fi
fi

echo "$COMMAND: missing, installing Debian's $* package(s)"
${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q
${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" </dev/null

if ! present; then
    echo "error: apt-get installed $* but $COMMAND does not exist" >&2
    exit 1
fi

#!/usr/bin/env bash
# Make sure tmux is installed at /usr/bin/tmux: the terminal view's tests run
# `stethoscope top` and `stethoscope run --tui` in a real terminal, a tmux pane, and
# read the screen back with capture-pane. A no-op when it is already there.
set -euo pipefail

TMUX_BIN=${STETHOSCOPE_TMUX_CHECK:-/usr/bin/tmux}  # override only to test this script

if [ -x "$TMUX_BIN" ]; then
    echo "tmux: $TMUX_BIN already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $TMUX_BIN is missing and apt-get is not available;" \
         "install tmux yourself" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)   # never prompt: CI has no stdin
    else
        echo "error: $TMUX_BIN is missing; run as root or install tmux:" \
             "apt-get install -y tmux" >&2
        exit 1
    fi
fi

echo "tmux: $TMUX_BIN missing, installing Debian's tmux package"
${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q
${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q tmux </dev/null

if [ ! -x "$TMUX_BIN" ]; then
    echo "error: apt-get installed tmux but $TMUX_BIN does not exist" >&2
    exit 1
fi
"$TMUX_BIN" -V

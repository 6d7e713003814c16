#!/bin/sh
# Make Debian's chromium available for the ws_stat dashboard test (a headless
# browser loads the page during traffic and screenshots it).
#
# Idempotent: nothing is installed when chromium is already there.
# --no-install-recommends keeps the desktop extras out; the browser is only
# ever run by the test, headless, on loopback.
#
# Exit status: 0 chromium is available; 1 it is not and cannot be installed.
set -eu

if command -v chromium >/dev/null 2>&1; then
    echo "install-chromium: $(chromium --version 2>/dev/null | head -1) already installed"
    exit 0
fi
sh "$(dirname "$0")/apt-install.sh" install-chromium chromium
command -v chromium >/dev/null 2>&1 || { echo "install-chromium: no chromium after install" >&2; exit 1; }
echo "install-chromium: $(chromium --version 2>/dev/null | head -1)"

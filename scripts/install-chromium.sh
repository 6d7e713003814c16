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
if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: chromium is not installed and this is not root." >&2
    echo "install-chromium: run 'sudo scripts/install-chromium.sh' (apt-get install chromium)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# another apt run (a parallel install) holds the lock for a while: wait for it
apt-get -o DPkg::Lock::Timeout=600 update -q || { echo "install-chromium: apt-get update failed" >&2; exit 1; }
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium || {
    echo "install-chromium: apt-get install chromium failed" >&2
    exit 1
}
command -v chromium >/dev/null 2>&1 || { echo "install-chromium: no chromium after install" >&2; exit 1; }
echo "install-chromium: $(chromium --version 2>/dev/null | head -1)"

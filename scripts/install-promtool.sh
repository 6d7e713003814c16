#!/bin/sh
# Make promtool (Debian's prometheus package) available for the stats tests
# (`promtool check metrics` on the ws_stat page), and leave no prometheus
# server running.
#
# Idempotent: nothing is installed when promtool is already there.  As
# install-nginx.sh does, a policy-rc.d that forbids service starts is put in
# place for the duration of the install (when none exists), so the package's
# maintainer scripts do not start a prometheus daemon on :9090; and
# --no-install-recommends keeps the exporters it recommends out.
#
# Exit status: 0 promtool is available; 1 it is not and cannot be installed.
set -eu

POLICY=/usr/sbin/policy-rc.d

if command -v promtool >/dev/null 2>&1; then
    echo "install-promtool: $(promtool --version 2>&1 | head -1) already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-promtool: promtool is not installed and this is not root." >&2
    echo "install-promtool: run 'sudo scripts/install-promtool.sh' (apt-get install prometheus)" >&2
    exit 1
fi

created_policy=no
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# written by ngxws scripts/install-promtool.sh: no service starts during install\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    created_policy=yes
fi
cleanup() {
    if [ "$created_policy" = yes ]; then
        rm -f "$POLICY"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -q || { echo "install-promtool: apt-get update failed" >&2; exit 1; }
apt-get install -y -q --no-install-recommends prometheus || {
    echo "install-promtool: apt-get install prometheus failed" >&2
    exit 1
}
command -v promtool >/dev/null 2>&1 || { echo "install-promtool: no promtool after install" >&2; exit 1; }
echo "install-promtool: $(promtool --version 2>&1 | head -1) (no prometheus service started)"

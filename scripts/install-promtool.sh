#!/bin/sh
# Make promtool (Debian's prometheus package) available for the stats tests
# (`promtool check metrics` on the ws_stat page), and leave no prometheus
# server running.
#
# Idempotent: nothing is installed when promtool is already there.
# apt-install.sh forbids service starts during the install, so the package's
# maintainer scripts do not start a prometheus daemon on :9090, and keeps
# the exporters it recommends out.
#
# Exit status: 0 promtool is available; 1 it is not and cannot be installed.
set -eu

if command -v promtool >/dev/null 2>&1; then
    echo "install-promtool: $(promtool --version 2>&1 | head -1) already installed"
    exit 0
fi
sh "$(dirname "$0")/apt-install.sh" install-promtool prometheus
command -v promtool >/dev/null 2>&1 || { echo "install-promtool: no promtool after install" >&2; exit 1; }
echo "install-promtool: $(promtool --version 2>&1 | head -1) (no prometheus service started)"

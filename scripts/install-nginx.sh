#!/bin/sh
# Make Debian's nginx available for `make test` and `make bench`, and leave it NOT running.
#
# Idempotent: when an nginx binary is already there, nothing is installed.
# Otherwise (root only, apt-install.sh: no service starts during the install,
# so the package does not start nginx on port 80) nginx-light is installed
# (or nginx if that fails), and any
# nginx service the package started anyway is stopped by the pid in its pid
# file.  Other nginx processes (e.g. a running benchmark's) are never touched.
#
# Exit status: 0 nginx is available; 1 it is not and cannot be installed here
# (not root, or apt failed).
set -eu

PID_FILE=/run/nginx.pid

find_nginx() {
    command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

stop_service_nginx() {
    # The packaged service writes its master's pid here; stop exactly that process.
    [ -s "$PID_FILE" ] || return 0
    pid=$(tr -dc '0-9' <"$PID_FILE")
    [ -n "$pid" ] || return 0
    case "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" in
    */nginx | */nginx" (deleted)") ;;
    *) return 0 ;;
    esac
    echo "install-nginx: stopping the nginx service the package started (pid $pid)"
    kill -QUIT "$pid" 2>/dev/null || true
    i=0
    while [ -d "/proc/$pid" ] && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if [ -d "/proc/$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
}

nginx_bin=$(find_nginx)
if [ -n "$nginx_bin" ]; then
    echo "install-nginx: $("$nginx_bin" -v 2>&1) already installed at $nginx_bin"
    exit 0
fi

here=$(dirname "$0")
if ! sh "$here/apt-install.sh" install-nginx nginx-light; then
    echo "install-nginx: nginx-light failed, trying nginx" >&2
    sh "$here/apt-install.sh" install-nginx nginx
fi

stop_service_nginx

nginx_bin=$(find_nginx)
if [ -z "$nginx_bin" ]; then
    echo "install-nginx: apt finished but no nginx binary was found" >&2
    exit 1
fi
echo "install-nginx: installed $("$nginx_bin" -v 2>&1) at $nginx_bin (not running)"

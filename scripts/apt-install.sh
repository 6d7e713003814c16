#!/bin/sh
# apt-install.sh TAG PACKAGE...: install Debian packages for the tests and
# benchmarks without letting any of them start a service (a policy-rc.d that
# forbids starts is in place for the duration of the install, when none
# exists), with no recommended extras, waiting for another apt run's lock.
# Used by install-nginx.sh, install-promtool.sh and install-chromium.sh; TAG
# prefixes the messages.
#
# Exit status: 0 installed; 1 not root, or apt failed.
set -eu

tag=$1
shift
POLICY=/usr/sbin/policy-rc.d

if [ "$(id -u)" -ne 0 ]; then
    echo "$tag: $* not installed and this is not root: run 'sudo $0 $tag $*'" >&2
    exit 1
fi

created_policy=no
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# written by ngxws scripts/apt-install.sh: no service starts during install\nexit 101\n' >"$POLICY"
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
apt-get -o DPkg::Lock::Timeout=600 update -q || { echo "$tag: apt-get update failed" >&2; exit 1; }
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@" || {
    echo "$tag: apt-get install $* failed" >&2
    exit 1
}

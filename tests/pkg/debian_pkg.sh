#!/bin/sh
# The Debian package, end to end (Debian 12, as root): build it with
# `dpkg-buildpackage -us -uc -b` from a copy of the source tree, check it with lintian (no
# errors), install it, check what it installed (the iwfd user, the unit disabled, the
# conffile), run `iwfd --version` from it, remove it, purge it and check nothing is left.
# It installs debhelper, lintian and fakeroot when missing (apt-get). About 35 s on the
# shared 2-core machine (the package build 23 s), plus about a minute the first time for
# apt. meson runs it as test `debian_package` (alone: it installs a package and creates a
# user on the machine) only under CI ($CI set) or with IWFD_TEST_DEB=1; elsewhere that test
# is skipped, because two runs at once on one machine would fight over dpkg, and run by
# hand it is the documented command (docs/install.md). Exit 0 when every check passed, 77
# when skipped.
# usage: tests/pkg/debian_pkg.sh [KEEP_DIR]
# check() evals its first argument when it runs: single quotes are meant.
# shellcheck disable=SC2016
set -eu
if [ -n "${IWFD_PKG_FROM_MESON:-}" ] && [ -z "${CI:-}" ] && [ -z "${IWFD_TEST_DEB:-}" ]; then
	echo "skipped: not under CI (set IWFD_TEST_DEB=1, or run tests/pkg/debian_pkg.sh)"; exit 77
fi
if [ "$(id -u)" != 0 ]; then echo "skipped: needs root (it installs the package)"; exit 77; fi
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"; }
top=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d /tmp/iwfd-deb.XXXXXX)}
fail=0
check() { if eval "$1"; then echo "ok   $2"; else echo "FAIL $2"; fail=1; fi; }

need=""
for p in debhelper lintian fakeroot dpkg-dev build-essential; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
	echo "installing$need"
	# shellcheck disable=SC2086
	apt_get install -y -qq --no-install-recommends $need >/dev/null
fi
if dpkg-query -W -f='${Status}' iwfd 2>/dev/null | grep -q 'installed'; then
	echo "iwfd is installed already on this machine: not touching it"; exit 1
fi

# A copy of the tree as it is (committed or not), without build directories.
mkdir -p "$work/src"
(cd "$top" && git ls-files -co --exclude-standard | grep -v '^build' | tar -cf - -T -) | tar -xf - -C "$work/src"
t0=$(date +%s)
(cd "$work/src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; echo "FAIL dpkg-buildpackage"; exit 1; }
echo "ok   dpkg-buildpackage -us -uc -b ($(( $(date +%s) - t0 )) s)"
deb=$(ls "$work"/iwfd_*.deb)
lintian --tag-display-limit 0 "$deb" >"$work/lintian.log" 2>&1 || true
check '! grep -q "^E:" "$work/lintian.log"' "lintian: no errors ($(grep -c '^W:' "$work/lintian.log" || true) warnings)"
grep '^[EW]:' "$work/lintian.log" || true

check 'dpkg -c "$deb" | grep "./usr/sbin/iwfd$" >/dev/null' "the package holds /usr/sbin/iwfd"
check 'apt_get install -y -qq "$deb" >"$work/install.log" 2>&1' "apt-get install ./iwfd_*.deb"
check '/usr/sbin/iwfd --version | grep -q "^iwfd "' "iwfd --version from the package: $(/usr/sbin/iwfd --version 2>&1)"
check 'getent passwd iwfd >/dev/null' "the system user iwfd exists"
check '[ -f /etc/iwfd/iwfd.json ] && dpkg-query --showformat="\${Conffiles}" -W iwfd | grep -q /etc/iwfd/iwfd.json' "/etc/iwfd/iwfd.json is a conffile"
check '[ -f /lib/systemd/system/iwfd.service ]' "the unit is installed"
if [ -d /run/systemd/system ]; then
	check '! systemctl is-enabled iwfd >/dev/null 2>&1' "the unit is not enabled"
	check '! systemctl is-active iwfd >/dev/null 2>&1' "the unit is not running"
else
	check '! ls /etc/systemd/system/*.wants/iwfd.service >/dev/null 2>&1' "the unit is not enabled (no symlink)"
fi
check 'man -w iwfd >/dev/null 2>&1 && man -w iwfd.json >/dev/null 2>&1 || ! command -v man >/dev/null' "man iwfd, man iwfd.json"
check 'apt_get remove -y -qq iwfd >/dev/null 2>&1' "apt-get remove"
check '[ ! -e /usr/sbin/iwfd ] && [ -f /etc/iwfd/iwfd.json ]' "removed: binary gone, conffile kept"
check 'apt_get purge -y -qq iwfd >/dev/null 2>&1' "apt-get purge"
check '! dpkg-query -W iwfd >/dev/null 2>&1 || dpkg-query -W -f="\${Status}" iwfd | grep -q "not-installed"' "purged: dpkg knows nothing of it"
check '[ ! -e /etc/iwfd ] && [ ! -e /var/lib/iwfd ] && [ ! -e /lib/systemd/system/iwfd.service ]' "purged: no files left"
check '! getent passwd iwfd >/dev/null' "purged: the iwfd user is gone"
[ -n "${1:-}" ] || rm -rf "$work"
echo "$([ $fail = 0 ] && echo passed || echo FAILED) ($(( $(date +%s) - t0 )) s)"
exit $fail

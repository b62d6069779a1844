#!/bin/sh
# `meson install` produces the documented layout (docs/install.md): sbin/iwfd, the hooks in
# lib/iwfd, the example configuration, the systemd unit (accepted by systemd-analyze verify
# when it is there), sysusers.d, bin/iwf-cwmp, the man pages (rendered by man -l without warnings).
# usage: install_layout.sh BUILD_DIR
# The checks are eval'd strings (expanded when run): SC2016/SC2034 are meant.
# shellcheck disable=SC2016,SC2034
set -u
build=$1
dest=$(mktemp -d /tmp/iwfd-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail=0
check() { if eval "$1"; then echo "ok   $2"; else echo "FAIL $2"; fail=1; fi; }
if ! DESTDIR="$dest" meson install -C "$build" --no-rebuild --quiet >"$dest.log" 2>&1; then
	cat "$dest.log"; rm -f "$dest.log"; echo "FAIL meson install"; exit 1
fi
rm -f "$dest.log"
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
root=$dest$prefix
check '[ -x "$root/sbin/iwfd" ]' "sbin/iwfd"
check '[ -x "$root/bin/iwfctl" ]' "bin/iwfctl"
check '"$root/bin/iwfctl" --help | grep -q "^Usage: iwfctl"' "the installed iwfctl runs"
check '"$root/sbin/iwfd" --version | grep -q "^iwfd "' "the installed iwfd runs"
check '[ -x "$root/bin/iwf-cwmp" ] && "$root/bin/iwf-cwmp" --help | grep -q "^usage: iwf-cwmp"' "bin/iwf-cwmp (TR-069 agent) runs"
for f in pcp_servers_hook.sh udhcpc-hook; do
	check '[ -x "$root/lib/iwfd/$f" ]' "lib/iwfd/$f (executable)"
done
check '[ -f "$root/lib/iwfd/dhclient-exit-hook" ]' "lib/iwfd/dhclient-exit-hook"
check '! grep -q "@[a-z]*@" "$root/lib/iwfd/udhcpc-hook" "$root/lib/iwfd/dhclient-exit-hook"' "hooks: paths substituted"
conf=$(find "$dest" -path '*/iwfd/iwfd.json' | head -1)
check '[ -n "$conf" ] && python3 -m json.tool "$conf" >/dev/null' "etc/iwfd/iwfd.json (valid JSON)"
unit=$(find "$dest" -name iwfd.service | head -1)
check '[ -n "$unit" ]' "the systemd unit"
check '[ -f "$root/lib/sysusers.d/iwfd.conf" ]' "sysusers.d/iwfd.conf"
for m in man8/iwfd.8 man8/iwfctl.8 man5/iwfd.json.5 man8/iwf-cwmp.8; do
	check '[ -f "$root/share/man/$m" ]' "share/man/$m"
	if command -v man >/dev/null; then
		check '[ -z "$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$root/share/man/$m" 2>&1 >/dev/null)" ] && [ "$(MANWIDTH=80 man -l "$root/share/man/$m" 2>/dev/null | wc -l)" -gt 50 ]' "man -l $m renders, no warnings"
	fi
done
# The unit as systemd reads it (the binary path pointed at the installed copy, the man
# pages found in DESTDIR).
if [ -n "$unit" ] && command -v systemd-analyze >/dev/null; then
	mkdir -p "$dest/verify"
	sed "s|^ExecStart=[^ ]*iwfd|ExecStart=$root/sbin/iwfd|" "$unit" >"$dest/verify/iwfd.service"
	check 'MANPATH="$root/share/man" systemd-analyze verify "$dest/verify/iwfd.service"' "systemd-analyze verify iwfd.service"
	check 'grep -q "^Type=notify" "$unit" && grep -q "^ProtectSystem=strict" "$unit" && grep -q "^SystemCallFilter=@system-service" "$unit" && grep -q "^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK" "$unit"' "unit: Type=notify and the hardening asked for"
fi
exit $fail

#!/bin/sh
# pcp_servers_hook.sh - write iwfd's PCP server hand-over file from a DHCP client hook
# (docs/pcp.md, "Servers from DHCP"). POSIX sh + awk (busybox is enough).
#
#   pcp_servers_hook.sh v4   HEX   [FILE]   DHCPv4 option 158 payload (RFC 7291 §4)
#   pcp_servers_hook.sh v6   HEX   [FILE]   DHCPv6 option 86 payload (RFC 7291 §3)
#   pcp_servers_hook.sh list "A B" [FILE]   addresses already in text (dhclient -6 with
#                                            "array of ip6-address")
#
# HEX: bytes as contiguous pairs ("04c0000201", busybox udhcpc's optNNN) or separated by
# ':' ("4:c0:0:2:1", dhclient's form for a "string" option). Empty: no PCP server offered
# (iwfd falls back to its configured servers / the default router).
# FILE defaults to $IWFD_PCP_SERVERS_FILE, else /run/iwfd/pcp-servers. Written to a
# temporary file and renamed, so iwfd never reads half a file. A malformed option leaves
# the file alone and exits 1.
set -uf
kind=${1:-}
data=${2:-}
file=${3:-${IWFD_PCP_SERVERS_FILE:-/run/iwfd/pcp-servers}}
case "$kind" in v4|v6|list) ;; *) echo "usage: $0 v4|v6|list DATA [FILE]" >&2; exit 2 ;; esac

tmp="$file.tmp.$$"
mkdir -p "$(dirname "$file")" || exit 1
if [ "$kind" = list ]; then
	# one address per line; iwfd validates each line itself (split on purpose; set -f)
	# shellcheck disable=SC2086
	printf '%s\n' $data > "$tmp" || exit 1
else
	printf '%s\n' "$data" | awk -v kind="$kind" '
	function hexval(s,   i, v, d) {
		v = 0
		for (i = 1; i <= length(s); i++) {
			d = index("0123456789abcdef", tolower(substr(s, i, 1)))
			if (d == 0) bad = 1
			v = v * 16 + d - 1
		}
		return v
	}
	{
		n = 0; bad = 0
		s = $0
		gsub(/[ \t\r]/, "", s)
		if (s == "") exit 0
		if (index(s, ":") > 0) {
			k = split(s, parts, ":")
			for (i = 1; i <= k; i++) {
				if (length(parts[i]) < 1 || length(parts[i]) > 2) bad = 1
				b[n++] = hexval(parts[i])
			}
		} else {
			if (length(s) % 2) bad = 1
			for (i = 1; i < length(s); i += 2) b[n++] = hexval(substr(s, i, 2))
		}
		if (bad) exit 1
		if (kind == "v4") {
			# one or more (List-Length, List-Length/4 IPv4 addresses): one list per PCP server
			i = 0
			while (i < n) {
				len = b[i++]
				if (len == 0 || len % 4 || i + len > n) exit 1
				for (j = 0; j < len; j += 4)
					printf "%d.%d.%d.%d\n", b[i+j], b[i+j+1], b[i+j+2], b[i+j+3]
				i += len
			}
		} else {
			# 16-octet IPv6 addresses (IPv4-mapped for IPv4 servers)
			if (n == 0 || n % 16) exit 1
			for (i = 0; i < n; i += 16) {
				out = ""
				for (j = 0; j < 16; j += 2)
					out = out (j ? ":" : "") sprintf("%x", b[i+j] * 256 + b[i+j+1])
				print out
			}
		}
	}' > "$tmp" || { rm -f "$tmp"; exit 1; }
fi
mv -f "$tmp" "$file"

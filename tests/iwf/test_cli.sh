#!/bin/sh
# The command line contract: --help, --version, and clear errors for bad flags.
iwfd=$1
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
out=$("$iwfd" --help); rc=$?
check '[ $rc -eq 0 ]' "--help exits 0"
for flag in --config --lan-if --lan-addr --http-port --pcp-server --state --no-state --igd --foreground --log-level --nat --wan-if --pcp-servers-file --upnp-ipv6 --help --version; do
  check 'echo "$out" | grep -q -- "$flag"' "--help mentions $flag"
done
check '"$iwfd" --version | grep -Eq "^iwfd [0-9]+\.[0-9]+"' "--version prints the version"
"$iwfd" --igd 3 --foreground 2>/tmp/iwfd-cli.$$; rc=$?
check '[ $rc -eq 2 ] && grep -q -- "--igd" /tmp/iwfd-cli.$$' "--igd 3 is refused with exit 2"
"$iwfd" --http-port 70000 2>/tmp/iwfd-cli.$$; rc=$?
check '[ $rc -eq 2 ]' "--http-port 70000 is refused"
"$iwfd" --bogus 2>/tmp/iwfd-cli.$$; rc=$?
check '[ $rc -eq 2 ]' "unknown flag is refused"
"$iwfd" --foreground --lan-if lo --pcp-server 256.1.1.1 2>/tmp/iwfd-cli.$$; rc=$?
check '[ $rc -eq 2 ] && grep -q "256.1.1.1" /tmp/iwfd-cli.$$' "a bad PCP server address is named"
"$iwfd" --foreground --pcp-server 192.0.2.1 2>/tmp/iwfd-cli.$$; rc=$?
check '[ $rc -eq 2 ] && grep -q "LAN interface" /tmp/iwfd-cli.$$' "missing LAN interface is named"
"$iwfd" --foreground --pcp-server 127.0.0.1 --config /nonexistent.json 2>/tmp/iwfd-cli.$$; rc=$?
check '[ $rc -ne 0 ] && grep -q "nonexistent" /tmp/iwfd-cli.$$' "unreadable config is named"
"$iwfd" --foreground --lan-if lo --pcp-server 127.0.0.1 --nat nftables 2>/tmp/iwfd-cli.$$; rc=$?
check '[ $rc -eq 2 ] && grep -q "WAN interface" /tmp/iwfd-cli.$$' "--nat nftables without --wan-if is refused"
"$iwfd" --nat iptables 2>/tmp/iwfd-cli.$$; rc=$?
check '[ $rc -eq 2 ]' "--nat iptables is refused"
"$iwfd" --foreground --lan-if lo --pcp-server 192.0.2.1 --nat nat64 2>/tmp/iwfd-cli.$$; rc=$?
check '[ $rc -eq 2 ] && grep -q "nat64" /tmp/iwfd-cli.$$ && grep -q "192.0.2.1" /tmp/iwfd-cli.$$' "--nat nat64 with an IPv4 PCP server is refused, the server named"
"$iwfd" --foreground --lan-if lo --nat nat64 2>/tmp/iwfd-cli.$$; rc=$?
check '[ $rc -eq 2 ] && grep -q "nat64" /tmp/iwfd-cli.$$' "--nat nat64 without a PCP server is refused"
check 'echo "$out" | grep -q -- "nat64"' "--help mentions --nat nat64"
check 'echo "$out" | grep -q -- "default /var/lib/iwfd/state"' "--help names the default state file"
rm -f /tmp/iwfd-cli.$$
exit $fail

#!/usr/bin/python3
"""nat64_forward.py - a pcpsim hook (`--hook`) that makes pcpsim the PCP server of a real
Linux stateful NAT64: tayga (stateless, RFC 7915) with NAT44 in nftables behind it (together
RFC 6146's stateful NAT64 as Linux builds it).

On every MAP add/delete (argv[1]) pcpsim passes the mapping in PCPSIM_* variables.  An
inbound PCP mapping on such a NAT64 is a DNAT on its IPv4 side, in front of tayga:

    external address:port  ->  the IPv4 address tayga maps the internal IPv6 address to : port

and tayga translates the rest of the way (to the internal IPv6 address, port kept).  The
IPv4 address is found in tayga's own configuration: its `map V4/LEN V6/LEN` lines (static,
one to one: the host bits are shared).  An IPv4 internal address (no NAT64 on the way) is
used as it is.

Configuration (environment, inherited from pcpsim):
  PCPSIM_NAT64_TAYGA_CONF  tayga.conf of the NAT64 (required for IPv6 internal addresses)
  PCPSIM_NAT64_EXT_IF      the NAT64's external (IPv4) interface: DNAT only what arrives there
  PCPSIM_NAT64_TABLE       nftables table (family ip) to keep the maps in; default pcpsim_nat64

Everything lives in one table `ip PCPSIM_NAT64_TABLE` with a map per protocol
(external address . port : internal IPv4 . port); it is created on the first add.  Exit 0 on
success (a delete of an absent element too), 1 with a message on stderr otherwise.
Standard library only; needs nft and CAP_NET_ADMIN in the NAT64's network namespace.
"""
import ipaddress
import os
import subprocess
import sys

NFT = "/usr/sbin/nft"
MAPS = {"6": ("fwd_tcp", "tcp"), "17": ("fwd_udp", "udp")}


def tayga_maps(path):
    """[(IPv4Network, IPv6Network)] from tayga.conf's map lines."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            w = line.split("#", 1)[0].split()
            if len(w) == 3 and w[0] == "map":
                v4 = ipaddress.ip_network(w[1] if "/" in w[1] else w[1] + "/32")
                v6 = ipaddress.ip_network(w[2] if "/" in w[2] else w[2] + "/128")
                if 32 - v4.prefixlen != 128 - v6.prefixlen:
                    raise ValueError(f"{path}: {line.strip()}: host bits differ")
                out.append((v4, v6))
    return out


def ipv4_of(internal, conf):
    """The IPv4 address the NAT64 delivers to for internal (IPv6 via tayga's map, or IPv4)."""
    ip = ipaddress.ip_address(internal)
    if ip.version == 4:
        return ip
    if not conf:
        raise ValueError("an IPv6 internal address needs PCPSIM_NAT64_TAYGA_CONF")
    for v4, v6 in tayga_maps(conf):
        if ip in v6:
            return v4.network_address + (int(ip) - int(v6.network_address))
    raise ValueError(f"{internal}: no map line of {conf} holds it (tayga would not deliver)")


def nft(script):
    p = subprocess.run([NFT, "-f", "-"], input=script, capture_output=True, text=True, timeout=10)
    return p.returncode, p.stderr.strip()


def ensure_table(table, ext_if):
    if subprocess.run([NFT, "list", "table", "ip", table], capture_output=True).returncode == 0:
        return
    iif = f'iifname "{ext_if}" ' if ext_if else ""
    rc, err = nft(
        f"table ip {table} {{\n"
        "  map fwd_tcp { type ipv4_addr . inet_service : ipv4_addr . inet_service; }\n"
        "  map fwd_udp { type ipv4_addr . inet_service : ipv4_addr . inet_service; }\n"
        "  chain prerouting {\n"
        "    type nat hook prerouting priority -100; policy accept;\n"
        f"    {iif}meta l4proto tcp dnat ip to ip daddr . tcp dport map @fwd_tcp\n"
        f"    {iif}meta l4proto udp dnat ip to ip daddr . udp dport map @fwd_udp\n"
        "  }\n}\n")
    if rc != 0:
        raise RuntimeError(f"cannot create table ip {table}: {err}")


def main(argv):
    event = argv[1] if len(argv) > 1 else ""
    env = os.environ
    if env.get("PCPSIM_KIND") != "map" or env.get("PCPSIM_PROTOCOL") not in MAPS:
        return 0                      # PEER, or a protocol without ports: nothing to forward
    table = env.get("PCPSIM_NAT64_TABLE", "pcpsim_nat64")
    name = MAPS[env["PCPSIM_PROTOCOL"]][0]
    ext = ipaddress.ip_address(env["PCPSIM_EXTERNAL_ADDR"])
    key = f"{ext} . {int(env['PCPSIM_EXTERNAL_PORT'])}"
    try:
        if event == "add":
            v4 = ipv4_of(env["PCPSIM_INTERNAL_ADDR"], env.get("PCPSIM_NAT64_TAYGA_CONF"))
            ensure_table(table, env.get("PCPSIM_NAT64_EXT_IF", ""))
            rc, err = nft(f"add element ip {table} {name} {{ {key} : {v4} . "
                          f"{int(env['PCPSIM_INTERNAL_PORT'])} }}\n")
            if rc != 0:
                raise RuntimeError(err)
            print(f"nat64_forward: {env['PCPSIM_PROTOCOL']} {key} -> {v4} "
                  f"(= {env['PCPSIM_INTERNAL_ADDR']}) port {env['PCPSIM_INTERNAL_PORT']}",
                  file=sys.stderr, flush=True)
        elif event == "delete":
            rc, err = nft(f"delete element ip {table} {name} {{ {key} }}\n")
            if rc != 0 and "No such file" not in err and "does not exist" not in err:
                raise RuntimeError(err)
            print(f"nat64_forward: {env['PCPSIM_PROTOCOL']} {key} removed "
                  f"({env.get('PCPSIM_REASON', '')})", file=sys.stderr, flush=True)
        else:
            raise ValueError(f"event must be add or delete, not {event!r}")
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        print(f"nat64_forward: {event}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

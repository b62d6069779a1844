#!/usr/bin/python3
"""Send PCP ANNOUNCE responses (RFC 6887 §14.1.3: version 2, R=1, opcode 0, result SUCCESS,
an Epoch) the way a restarted server does, or the way a LAN host can fake one.

  announce.py v4 --src ADDR --dst ADDR [--dst ADDR ...] [--count N] [--epoch E|alternate]
      IPv4 from any source address (a raw socket writes the IP header itself: a LAN host
      spoofing the PCP server's address), source port 5351, to port 5350 of each --dst
      (unicast, or 224.0.0.1).
  announce.py v6 --iface IF [--src LL|auto] [--dst ff02::1] [--count N] [--epoch E|alternate]
      IPv6 from the interface's own link-local address (auto: the first one it has), port
      5351, to ff02::1 (or --dst) on that interface, as a restarted server multicasts it.

--epoch alternate sends 0, 5000000, 0, ... so that every datagram fails the RFC 6887 §8.5
Epoch check of the one before.  Prints one line per datagram sent.  Stdlib only.
"""
import argparse
import socket
import struct
import sys
import time

SERVER_PORT, CLIENT_PORT = 5351, 5350


def announce(epoch):
    # version, R|opcode, reserved, result; lifetime; epoch; 12 reserved bytes (§7.2)
    return struct.pack("!BBBBII12x", 2, 0x80, 0, 0, 0, epoch)


def epochs(spec, count):
    for i in range(count):
        yield (0 if i % 2 == 0 else 5000000) if spec == "alternate" else int(spec)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def send_v4(src, dsts, payload):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # IP_HDRINCL implied
    for dst in dsts:
        udp_len = 8 + len(payload)
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, udp_len)
        udp = struct.pack("!HHHH", SERVER_PORT, CLIENT_PORT, udp_len, 0) + payload
        udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xffff) + udp[8:]
        ttl = 1 if dst.startswith("224.") else 64
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0, ttl, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        s.sendto(ip + udp, (dst, 0))
        print(f"sent ANNOUNCE {src}:{SERVER_PORT} > {dst}:{CLIENT_PORT}", flush=True)
    s.close()


def link_local(iface):
    with open("/proc/net/if_inet6") as f:
        for line in f:
            hexaddr, _idx, _plen, scope, _flags, name = line.split()
            if name == iface and scope == "20":
                return socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hexaddr))
    sys.exit(f"announce.py: {iface} has no link-local address")


def send_v6(iface, src, dsts, payload):
    scope = socket.if_nametoindex(iface)
    if src == "auto":
        src = link_local(iface)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, scope)
    s.bind((src, SERVER_PORT, 0, scope))
    for dst in dsts:
        s.sendto(payload, (dst, CLIENT_PORT, 0, scope))
        print(f"sent ANNOUNCE [{src}%{iface}]:{SERVER_PORT} > [{dst}]:{CLIENT_PORT}", flush=True)
    s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("family", choices=("v4", "v6"))
    ap.add_argument("--src", default="auto")
    ap.add_argument("--dst", action="append")
    ap.add_argument("--iface")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--epoch", default="0")
    ap.add_argument("--gap", type=float, default=0.05, help="seconds between rounds")
    a = ap.parse_args()
    for i, e in enumerate(epochs(a.epoch, a.count)):
        if i:
            time.sleep(a.gap)
        if a.family == "v4":
            send_v4(a.src, a.dst or ["224.0.0.1"], announce(e))
        else:
            send_v6(a.iface, a.src, a.dst or ["ff02::1"], announce(e))


if __name__ == "__main__":
    main()

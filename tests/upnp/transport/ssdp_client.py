#!/usr/bin/python3
"""ssdp_client.py - SSDP peer for the tests, run inside a namespace with `ip netns exec`.

  ssdp_client.py search DEST SECONDS MSG   send MSG (Python escapes allowed: \\r\\n) to
                                           DEST (host:port), print each reply as JSON lines
  ssdp_client.py burst DEST COUNT SECONDS MSG   send MSG COUNT times at once, then collect
  ssdp_client.py listen IFADDR SECONDS     join 239.255.255.250 on IFADDR, print NOTIFYs
Each output line: {"t": seconds since start, "from": "a.b.c.d", "start": first line,
"headers": {lower-case name: value}}.
"""
import json
import socket
import struct
import sys
import time


def parse(data):
    text = data.decode("latin-1")
    lines = text.split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        if not ln:
            break
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs


def collect(s, seconds, t0):
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, src = s.recvfrom(4096)
        except socket.timeout:
            break
        start, hdrs = parse(data)
        print(json.dumps({"t": round(time.monotonic() - t0, 3), "from": src[0],
                          "start": start, "headers": hdrs}), flush=True)


def main():
    mode = sys.argv[1]
    if mode in ("search", "burst"):
        host, port = sys.argv[2].rsplit(":", 1)
        count = int(sys.argv[3]) if mode == "burst" else 1
        rest = sys.argv[4:] if mode == "burst" else sys.argv[3:]
        seconds = float(rest[0])
        msg = rest[1].encode().decode("unicode_escape").encode("latin-1")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        s.bind(("0.0.0.0", 0))
        t0 = time.monotonic()
        for _ in range(count):
            s.sendto(msg, (host, int(port)))
        collect(s, seconds, t0)
    elif mode == "listen":
        ifaddr, seconds = sys.argv[2], float(sys.argv[3])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 1900))
        mreq = struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton(ifaddr))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        print(json.dumps({"ready": True}), flush=True)
        collect(s, seconds, time.monotonic())
    else:
        sys.exit(2)


main()

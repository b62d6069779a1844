#!/usr/bin/python3
"""A lossy, slow UDP relay: the stand-in for `tc netem` (this kernel has no netem qdisc).

  lossy_relay.py --listen ADDR:PORT --upstream ADDR:PORT [--loss PCT] [--delay-ms MS]
                 [--seed N] [--stats FILE]

Runs in the router namespace between iwfd and the carrier's PCP server.  Every datagram, in
either direction, is dropped with probability --loss percent, else forwarded --delay-ms later
(each datagram on its own timer, so order is kept).  Datagrams from the client side go
upstream from one socket per client (so the carrier's answers find their way back) bound to
the listen address: with --listen on the router's WAN address, the PCP client address iwfd
writes in its header (the source address of its socket) is the same address the carrier sees
as the packet's source, so RFC 6887's ADDRESS_MISMATCH check still passes.

Prints "relay ready" when listening; writes counters (JSON) to --stats after every datagram.
SIGTERM ends it.
"""
import argparse
import heapq
import json
import os
import random
import select
import signal
import socket
import sys
import time


def hostport(s):
    h, _, p = s.rpartition(":")
    return h, int(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--loss", type=float, default=30.0)
    ap.add_argument("--delay-ms", type=float, default=200.0)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--stats")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    lhost, lport = hostport(a.listen)
    upstream = hostport(a.upstream)
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind((lhost, lport))
    backs = {}      # client addr -> socket towards upstream
    owner = {}      # back socket fd -> client addr
    queue = []      # (due, seq, sock, data, dest)
    seq = 0
    st = {"up_in": 0, "down_in": 0, "dropped": 0, "delayed": 0, "up_dropped": 0, "down_dropped": 0}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def write_stats():
        if a.stats:
            tmp = a.stats + ".tmp"
            with open(tmp, "w") as f:
                json.dump(st, f)
            os.replace(tmp, a.stats)

    def consider(sock, data, dest, direction):
        nonlocal seq
        st[direction + "_in"] += 1
        if rnd.random() * 100 < a.loss:
            st["dropped"] += 1
            st[direction + "_dropped"] += 1
        else:
            st["delayed"] += 1
            seq += 1
            heapq.heappush(queue, (time.monotonic() + a.delay_ms / 1000.0, seq, sock, data, dest))
        write_stats()

    write_stats()
    print(f"relay ready {lhost}:{lport} -> {upstream[0]}:{upstream[1]} loss {a.loss}% "
          f"delay {a.delay_ms} ms", flush=True)
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
        socks = [front] + list(backs.values())
        r, _, _ = select.select(socks, [], [], timeout)
        for s in r:
            try:
                data, src = s.recvfrom(65535)
            except OSError:
                continue    # e.g. ICMP port unreachable from a stopped carrier
            if s is front:
                b = backs.get(src)
                if b is None:
                    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    b.bind((lhost, 0))
                    backs[src] = b
                    owner[b.fileno()] = src
                consider(b, data, upstream, "up")
            else:
                consider(front, data, owner[s.fileno()], "down")
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, sock, data, dest = heapq.heappop(queue)
            try:
                sock.sendto(data, dest)
            except OSError:
                pass


if __name__ == "__main__":
    main()

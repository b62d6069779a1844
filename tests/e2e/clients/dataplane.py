#!/usr/bin/python3
"""Data-path probe for the e2e scenarios: does a packet from the Internet side reach the LAN host?

  dataplane.py listen tcp|udp PORT [--timeout S] [--ipv6]
      wait for one TCP connection (answers "pong") or one UDP datagram; prints
      "got PAYLOAD from ADDR:PORT" (IPv6: "[ADDR]:PORT") and exits 0, or "timeout" and exits
      1.  --ipv6: listen on [::] (an IPv6-only host).
  dataplane.py send tcp|udp HOST PORT PAYLOAD [--timeout S]
      TCP: connect, send, expect "pong" back ("reply pong", exit 0; "failed: ..." exit 1).
      UDP: send the datagram three times, 0.2 s apart (exit 0; UDP cannot know more).
"""
import argparse
import socket
import sys
import time


def listen(proto, port, timeout, ipv6=False):
    fam_type = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, fam_type)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::" if ipv6 else "0.0.0.0", port))
    s.settimeout(timeout)
    if proto == "tcp":
        s.listen(4)
    print(f"listening {proto} {port}", flush=True)
    try:
        if proto == "tcp":
            c, peer = s.accept()
            c.settimeout(timeout)
            data = c.recv(1024)
            c.sendall(b"pong")
            c.close()
        else:
            data, peer = s.recvfrom(2048)
    except socket.timeout:
        print("timeout", flush=True)
        return 1
    host = f"[{peer[0]}]" if ":" in peer[0] else peer[0]
    print(f"got {data.decode(errors='replace')} from {host}:{peer[1]}", flush=True)
    return 0


def send(proto, host, port, payload, timeout):
    if proto == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(3):
                s.sendto(payload.encode(), (host, port))
                time.sleep(0.2)
        print("sent", flush=True)
        return 0
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(payload.encode())
            reply = s.recv(16)
    except OSError as e:
        print(f"failed: {e}", flush=True)
        return 1
    print(f"reply {reply.decode(errors='replace')}", flush=True)
    return 0 if reply == b"pong" else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    l = sub.add_parser("listen")
    l.add_argument("proto", choices=("tcp", "udp"))
    l.add_argument("port", type=int)
    l.add_argument("--timeout", type=float, default=10)
    l.add_argument("--ipv6", action="store_true")
    s = sub.add_parser("send")
    s.add_argument("proto", choices=("tcp", "udp"))
    s.add_argument("host")
    s.add_argument("port", type=int)
    s.add_argument("payload")
    s.add_argument("--timeout", type=float, default=3)
    a = ap.parse_args()
    if a.cmd == "listen":
        return listen(a.proto, a.port, a.timeout, a.ipv6)
    return send(a.proto, a.host, a.port, a.payload, a.timeout)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Memory and fairness bounds of http.c under two attacks, through upnpt_harness on loopback.

  pipeline  one client with a 4 KiB receive buffer pipelines GET /rootDesc.xml as fast as it
            can and never reads. http.c must stop parsing while its answers are unsent (the
            harness's peak RSS grows by less than 8 MiB; it grew by hundreds of MiB before),
            must close it after one idle period (a peer that never reads does not re-arm the
            timer), and another host is served meanwhile.
  linger    one host opens ~200 connections/s, each asks GET with "Connection: close" and
            never reads nor closes: every answered connection lingers 1 s. Lingering ones count
            against their host (and are the first to go when room is needed), so another host
            gets 200, not 503.

Loopback addresses stand for LAN hosts: 127.0.0.1 attacks, 127.0.0.2 is the other host.
usage: test_http_bounds.py HARNESS
"""
import os
import resource
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upnpt import Harness, check, finish, raw, status_of  # noqa: E402

exe = sys.argv[1]
GET = b"GET /rootDesc.xml HTTP/1.1\r\nHost: x\r\n\r\n"
IDLE_MS = 3000


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def other_host_get(port):
    out, _ = raw(port, b"GET /rootDesc.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 timeout=5, host="127.0.0.2")
    return status_of(out)


try:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
except (ValueError, OSError):
    pass

# --- pipeline: a client that never reads
h = Harness(exe, "--port", 0, "--idle-ms", IDLE_MS)
try:
    P = h.port
    rss0 = vm(h.p.pid, "VmRSS")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", P))
    s.setblocking(False)
    blob = GET * 256
    start = time.monotonic()
    sent = 0
    closed_at = None
    served = []
    next_probe = start + 0.5
    while time.monotonic() - start < 8:
        try:
            sent += s.send(blob)
        except BlockingIOError:
            time.sleep(0.005)
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic() - start
            break
        if time.monotonic() >= next_probe:
            served.append(other_host_get(P))
            next_probe = time.monotonic() + 0.5
    s.close()
    peak = vm(h.p.pid, "VmHWM")
    grew = (peak - rss0) / 1024
    print("pipeline: %d bytes of requests sent, server %s, harness VmRSS %d kB -> VmHWM %d kB"
          % (sent, "closed it after %.1f s" % closed_at if closed_at else "never closed it",
             rss0, peak))
    check(grew < 8, "a never-reading pipelining client: peak memory +%.1f MiB (bound 8 MiB)" % grew)
    check(closed_at is not None and closed_at < IDLE_MS / 1000 + 3,
          "its connection is closed after about one idle period, not kept alive by its "
          "own requests (closed after %s s, idle period %.1f s)" % (closed_at, IDLE_MS / 1000))
    check(served and all(st == 200 for st in served),
          "another host is served meanwhile: %r" % served)
    check(h.alive(), "harness alive")
finally:
    rc = h.stop()
check(rc == 0, "harness exited cleanly (rc %s)" % rc)

# --- linger: connections answered with "Connection: close" that the peer never closes
h = Harness(exe, "--port", 0)
try:
    P = h.port
    held = []
    stop = threading.Event()

    def flood():
        nxt = time.monotonic()
        while not stop.is_set():
            try:
                c = socket.create_connection(("127.0.0.1", P), timeout=2)
                c.sendall(b"GET /rootDesc.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                held.append(c)
            except OSError:
                pass
            nxt += 0.005          # ~200 connections/s
            time.sleep(max(0, nxt - time.monotonic()))

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    time.sleep(1.5)
    got = []
    end = time.monotonic() + 3
    while time.monotonic() < end:
        got.append(other_host_get(P))
        time.sleep(0.1)
    stop.set()
    t.join()
    ok = sum(1 for st in got if st == 200)
    print("linger: %d flood connections held open; the other host got %r" % (len(held), got))
    for c in held:
        c.close()
    check(len(held) > 300, "the flood opened %d connections (wanted > 300)" % len(held))
    check(ok == len(got) and got, "another host is served during a flood of lingering "
          "connections: %d of %d answered 200" % (ok, len(got)))
    check(h.alive(), "harness alive")
finally:
    rc = h.stop()
check(rc == 0, "harness exited cleanly (rc %s)" % rc)
finish()

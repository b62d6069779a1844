#!/usr/bin/python3
"""HTTP server of upnp/ (http.c) over real loopback sockets, through upnpt_harness.

usage: test_http.py HARNESS
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upnpt import Conn, Harness, check, finish, raw, status_of  # noqa: E402

exe = sys.argv[1]
IDLE_MS = 1500
h = Harness(exe, "--port", 0, "--max-conn", 6, "--max-header", 1024, "--max-body", 2048,
            "--idle-ms", IDLE_MS)
P = h.port


def stats():
    """http.c's counters (the harness's GET /stats), asked from 127.0.0.9 so that the limits
    held by 127.0.0.1 below do not refuse the question; its own connection is counted."""
    o = socket.socket()
    o.bind(("127.0.0.9", 0))
    o.settimeout(5)
    o.connect(("127.0.0.1", P))
    o.sendall(b"GET /stats HTTP/1.1\r\nConnection: close\r\n\r\n")
    out = b""
    while True:
        d = o.recv(65536)
        if not d:
            break
        out += d
    o.close()
    body = out.partition(b"\r\n\r\n")[2].decode()
    return {k: int(v) for k, v in (line.split() for line in body.splitlines() if line)}


def moved(before, after, want, what):
    """want: {counter: exact growth}; every other refusal counter must not move."""
    for k in ("refused_limit", "refused_per_host", "refused_not_lan", "bad_request",
              "header_too_big", "body_too_big", "timeout_request", "timeout_idle"):
        d = after[k] - before[k]
        check(d == want.get(k, 0), "%s: counter %s grew by %d, expected %d" % (what, k, d, want.get(k, 0)))


try:
    # --- standard headers and keep-alive: two requests on one connection
    c = Conn(P)
    c.send(b"GET /rootDesc.xml HTTP/1.1\r\nHost: a\r\n\r\n")
    r1 = c.response()
    check(r1 is not None and r1[0] == 200, "keep-alive: first request 200")
    hd = r1[1] if r1 else {}
    for name in ("date", "server", "content-length", "connection", "content-type"):
        check(name in hd, "response has %s" % name)
    check(hd.get("content-type") == 'text/xml; charset="utf-8"', "XML Content-Type exact")
    check(hd.get("connection") == "keep-alive", "HTTP/1.1 response says keep-alive")
    check(hd.get("date", "").endswith(" GMT"), "Date is an IMF-fixdate")
    check(r1 is not None and int(hd.get("content-length", -1)) == len(r1[2]),
          "Content-Length matches body")
    c.send(b"GET /nothing-here HTTP/1.1\r\nHost: a\r\n\r\n")
    r2 = c.response()
    check(r2 is not None and r2[0] == 404, "keep-alive: second request on same connection 404")
    c.close()

    # --- pipelining: a deferred response blocks the later one
    c = Conn(P)
    t0 = time.monotonic()
    c.send(b"GET /defer?400 HTTP/1.1\r\nHost: a\r\n\r\nGET /rootDesc.xml HTTP/1.1\r\nHost: a\r\n\r\n")
    r1 = c.response()
    r2 = c.response()
    check(r1 is not None and r1[0] == 200 and r1[2] == b"deferred\n",
          "pipelined: deferred answer comes first")
    check(r2 is not None and r2[0] == 200 and r2[2].startswith(b"<?xml"),
          "pipelined: second answer after it")
    check(time.monotonic() - t0 >= 0.35, "deferred response really was deferred")
    c.close()

    # --- HTTP/1.0 closes after the response
    out, closed = raw(P, b"GET /rootDesc.xml HTTP/1.0\r\n\r\n")
    check(status_of(out) == 200 and closed and b"Connection: close" in out,
          "HTTP/1.0: 200, Connection: close, closed")
    out, closed = raw(P, b"GET /rootDesc.xml HTTP/1.1\r\nConnection: close\r\n\r\n")
    check(status_of(out) == 200 and closed, "Connection: close honoured")

    # --- HEAD: headers with the GET's Content-Length, no body
    c = Conn(P)
    c.send(b"HEAD /rootDesc.xml HTTP/1.1\r\nHost: a\r\n\r\n")
    r = c.response(head=True)
    check(r is not None and r[0] == 200 and int(r[1]["content-length"]) > 100,
          "HEAD: 200 with Content-Length")
    c.send(b"GET /nothing HTTP/1.1\r\n\r\n")
    r = c.response()
    check(r is not None and r[0] == 404, "HEAD sent no body (next response parses)")
    c.close()

    # --- malformed requests (and the counter each one moves)
    s0 = stats()
    cases = [
        (b"garbage\r\n\r\n", 400, "garbage"),
        (b"\x00\x01\x02\x03\r\n\r\n", 400, "binary garbage"),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400, "header without colon"),
        (b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400,
         "duplicate Content-Length"),
        (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "negative Content-Length"),
        (b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad chunk size"),
        (b"GET / HTTP/9.9\r\n\r\n", 505, "HTTP/9.9"),
        (b"FROB / HTTP/1.1\r\n\r\n", 501, "unknown method"),
        (b"PUT /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 501, "PUT"),
        (b"M-SEARCH * HTTP/1.1\r\n\r\n", 501, "M-SEARCH over TCP"),
        (b"POST /echo HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413, "huge Content-Length"),
        (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n", 431, "URL over header limit"),
        (b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"p" * 1100 + b"\r\n\r\n", 431, "header over limit"),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(40)) + b"\r\n", 431,
         "too many headers"),
    ]
    for data, want, what in cases:
        out, closed = raw(P, data, timeout=3)
        check(status_of(out) == want and closed,
              "%s -> %d and close (got %s)" % (what, want, status_of(out)))
    s1 = stats()
    moved(s0, s1, {"bad_request": 10, "body_too_big": 1, "header_too_big": 3}, "malformed requests")
    check(s1["accepted"] - s0["accepted"] == len(cases) + 1,
          "every connection counted as accepted (the cases and the stats question)")

    # 413 is decided from Content-Length before the body is read
    c = Conn(P)
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4096\r\n\r\n")
    r = c.response(timeout=2)
    check(r is not None and r[0] == 413, "413 before any body byte is sent")
    c.close()

    # chunked bodies: accepted up to the cap, 413 beyond
    body = b"x" * 1500
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 500]), body[i:i + 500])
                       for i in range(0, len(body), 500)) + b"0\r\n\r\n"
    c = Conn(P)
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    r = c.response()
    check(r is not None and r[0] == 200 and r[2] == body, "chunked body echoed")
    c.close()
    big = b"y" * 3000
    out, closed = raw(P, b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
                      b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big))
    check(status_of(out) == 413 and closed, "chunked body over cap -> 413")

    # Expect: 100-continue gets an interim 100, then the real answer
    c = Conn(P)
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    c.s.settimeout(2)
    first = c.s.recv(100)
    check(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), "Expect: 100-continue -> 100")
    c.send(b"abc")
    r = c.response()
    check(r is not None and r[0] == 200 and r[2] == b"abc", "then 200 with the body")
    c.close()

    # --- idle timeout: an idle connection and a slowloris are both closed
    s0 = stats()
    c = Conn(P)
    t0 = time.monotonic()
    check(c.closed_within(IDLE_MS / 1000 + 2), "idle connection closed")
    check(time.monotonic() - t0 >= IDLE_MS / 1000 - 0.2, "...not before the idle timeout")
    c = Conn(P)
    t0 = time.monotonic()
    slow_closed = False
    for ch in b"GET /rootDesc.xml HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"z" * 100:
        try:
            c.send(bytes([ch]))
        except OSError:
            slow_closed = True
            break
        time.sleep(0.1)
        if time.monotonic() - t0 > IDLE_MS / 1000 + 3:
            break
    slow_closed = slow_closed or c.closed_within(1)
    check(slow_closed and time.monotonic() - t0 < IDLE_MS / 1000 + 3,
          "slowloris (a byte every 100 ms) closed within the request deadline")
    c.close()
    moved(s0, stats(), {"timeout_idle": 1, "timeout_request": 1}, "idle and slowloris")

    # --- max connections: beyond the limit, 503 and close; capacity comes back. Per host: a
    # quarter of 6, at least 4; the rest of the 6 from other loopback addresses.
    s0 = stats()
    held = [Conn(P) for _ in range(4)]
    time.sleep(0.2)
    out, closed = raw(P, b"GET /rootDesc.xml HTTP/1.1\r\n\r\n", timeout=3)
    check(status_of(out) == 503 and closed, "a host's fifth connection -> 503 + close")
    s1 = stats()
    moved(s0, s1, {"refused_per_host": 1}, "per-host limit")
    for src in ("127.0.0.2", "127.0.0.3"):
        o = socket.socket()
        o.bind((src, 0))
        o.settimeout(5)
        o.connect(("127.0.0.1", P))
        held.append(Conn.__new__(Conn))
        held[-1].s, held[-1].buf = o, b""
    time.sleep(0.2)
    o = socket.socket()
    o.bind(("127.0.0.4", 0))
    o.settimeout(3)
    o.connect(("127.0.0.1", P))
    o.sendall(b"GET /rootDesc.xml HTTP/1.1\r\n\r\n")
    got = b""
    try:
        while True:
            d = o.recv(4096)
            if not d:
                break
            got += d
    except OSError:
        pass
    o.close()
    check(status_of(got) == 503, "another host's connection over the total limit -> 503")
    for c in held:
        c.close()
    time.sleep(0.3)
    moved(s1, stats(), {"refused_limit": 1}, "connection limit")
    out, closed = raw(P, b"GET /rootDesc.xml HTTP/1.1\r\nConnection: close\r\n\r\n")
    check(status_of(out) == 200, "after closing, connections are accepted again")

    # --- client disconnects while its response is pending (FIN, and RST)
    c = Conn(P)
    c.send(b"GET /pending HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.2)
    c.close()
    c = Conn(P)
    c.send(b"GET /pending HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.2)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()  # RST
    time.sleep(0.3)
    c = Conn(P)
    c.send(b"GET /release HTTP/1.1\r\nHost: a\r\n\r\n")
    r = c.response()
    check(r is not None and r[0] == 200 and r[2] == b"released=2\n",
          "responses to departed clients answered without harm")
    c.send(b"GET /rootDesc.xml HTTP/1.1\r\nHost: a\r\n\r\n")
    r = c.response()
    check(r is not None and r[0] == 200, "server still serving afterwards")
    c.close()
    check(h.alive(), "harness alive at the end")
finally:
    rc = h.stop()
check(rc == 0, "harness exited cleanly (rc %s)" % rc)
finish()

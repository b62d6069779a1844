#!/usr/bin/python3
"""Broken HTTP against http.c: each request gets the status we expect, then the connection
closes (for errors) and the server keeps serving. Limits used: 1024 header bytes, 2048 body
bytes (harness options).

usage: test_http_malformed.py HARNESS
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upnpt import Harness, check, finish, raw, status_of  # noqa: E402

exe = sys.argv[1]
OK_REQ = b"GET /rootDesc.xml HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


def req(start=b"GET /rootDesc.xml HTTP/1.1", headers=(b"Host: a",), body=b""):
    return start + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


CASES = []


def case(name, data, status, closes=True):
    CASES.append((name, data, status, closes))


# --- request line
for m in (b"FROB", b"BREW", b"GETX", b"SEARCHX", b"DESCRIBE", b"PRI"):
    case("unknown method " + m.decode(), req(m + b" / HTTP/1.1"), 501)
for m in (b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"PATCH", b"PROPFIND", b"MKCOL", b"LOCK",
          b"NOTIFY", b"M-SEARCH", b"PURGE", b"LINK"):
    case("unsupported method " + m.decode(), req(m + b" /x HTTP/1.1", (b"Content-Length: 0",)),
         501)
case("CONNECT", req(b"CONNECT a:443 HTTP/1.1"), 501)
case("lower-case method", req(b"get / HTTP/1.1"), 400)
case("no target", req(b"GET HTTP/1.1"), 400)
case("no version", b"GET /\r\n\r\n", 400)
case("two spaces (tolerated by the parser)", req(b"GET  /nope HTTP/1.1"), 404, closes=False)
case("space in target", req(b"GET /a b HTTP/1.1"), 400)
case("control char in target", req(b"GET /a\x01b HTTP/1.1"), 400)
case("DEL in target", req(b"GET /a\x7fb HTTP/1.1"), 400)
case("HTTP/2.0", req(b"GET / HTTP/2.0"), 505)
case("HTTP/3.1", req(b"GET / HTTP/3.1"), 505)
case("HTTP/1.x", req(b"GET / HTTP/1.x"), 400)
case("http/1.1 lower", req(b"GET / http/1.1"), 400)
case("HTTPS/1.1", req(b"GET / HTTPS/1.1"), 400)
case("version garbage", req(b"GET / HTTP/"), 400)
case("TLS hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(32)), 400)
case("binary zeros", b"\x00" * 64, 400)
case("only CRLFs then garbage", b"\r\n\r\n\x01\x02", 400)
case("lone LF request line", b"GET / HTTP/1.1\nHost: a\n\n", 404, closes=False)
case("high bytes", bytes(range(128, 256)), 400)
case("SSDP datagram over TCP", b'M-SEARCH * HTTP/1.1\r\nMAN: "ssdp:discover"\r\nST: ssdp:all\r\n\r\n', 501)

# --- header syntax
case("header without colon", req(headers=(b"Host a",)), 400)
case("space before colon", req(headers=(b"Host : a",)), 400)
case("space inside name", req(headers=(b"X Y: z",)), 400)
case("control char in name", req(headers=(b"X\x01: z",)), 400)
case("NUL in value", req(headers=(b"X: a\x00b",)), 400)
case("CR without LF in value", req(headers=(b"X: a\rb",)), 400)
case("empty name", req(headers=(b": v",)), 400)

# --- Content-Length / Transfer-Encoding
case("Content-Length letters", req(b"POST /echo HTTP/1.1", (b"Content-Length: abc",)), 400)
case("Content-Length negative", req(b"POST /echo HTTP/1.1", (b"Content-Length: -5",)), 400)
case("Content-Length two numbers", req(b"POST /echo HTTP/1.1", (b"Content-Length: 1 2",)), 400)
case("Content-Length twice", req(b"POST /echo HTTP/1.1", (b"Content-Length: 1",
                                                         b"Content-Length: 1"), b"a"), 400)
case("Content-Length overflow", req(b"POST /echo HTTP/1.1",
                                    (b"Content-Length: 99999999999999999999999",)), 400)
case("Content-Length huge", req(b"POST /echo HTTP/1.1", (b"Content-Length: 4294967296",)), 413)
case("Content-Length over cap", req(b"POST /echo HTTP/1.1", (b"Content-Length: 2049",)), 413)
case("Content-Length and chunked", req(b"POST /echo HTTP/1.1", (b"Content-Length: 3",
                                       b"Transfer-Encoding: chunked"), b"0\r\n\r\n"), 400)
case("chunk size not hex", req(b"POST /echo HTTP/1.1", (b"Transfer-Encoding: chunked",),
                               b"xyz\r\nabc\r\n0\r\n\r\n"), 400)
case("chunk size overflow", req(b"POST /echo HTTP/1.1", (b"Transfer-Encoding: chunked",),
                                b"fffffffffffffffffff\r\n"), 400)
case("chunk data without CRLF", req(b"POST /echo HTTP/1.1", (b"Transfer-Encoding: chunked",),
                                    b"3\r\nabcX\r\n0\r\n\r\n"), 400)
case("chunked over cap", req(b"POST /echo HTTP/1.1", (b"Transfer-Encoding: chunked",),
                             b"801\r\n" + b"a" * 2049 + b"\r\n0\r\n\r\n"), 413)
case("chunks summing over cap", req(b"POST /echo HTTP/1.1", (b"Transfer-Encoding: chunked",),
                                    (b"400\r\n" + b"a" * 1024 + b"\r\n") * 3 + b"0\r\n\r\n"), 413)
case("chunked not last coding", req(b"POST /echo HTTP/1.1",
                                    (b"Transfer-Encoding: chunked, gzip",), b"0\r\n\r\n"), 400)

# --- limits
case("URL over header limit", req(b"GET /" + b"u" * 1100 + b" HTTP/1.1"), 431)
case("one header over limit", req(headers=(b"X: " + b"v" * 1100,)), 431)
case("headers summing over limit", req(headers=tuple(b"X%d: %s" % (i, b"v" * 100)
                                                     for i in range(12))), 431)
case("33 headers", req(headers=tuple(b"H%d: v" % i for i in range(33))), 431)
case("32 headers is fine", req(headers=tuple(b"H%d: v" % i for i in range(32))), 200,
     closes=False)
case("long header name", req(headers=(b"X" * 1100 + b": v",)), 431)

# --- well-formed requests the handler answers (routing statuses come from it)
case("unknown path", req(b"GET /nope HTTP/1.1"), 404, closes=False)
case("absolute-form target", req(b"GET http://a/rootDesc.xml HTTP/1.1"), 404, closes=False)
case("obs-fold header", req(headers=(b"Host: a", b"X: a", b" folded")), 200, closes=False)
case("no Host header", req(headers=()), 200, closes=False)
case("HTTP/1.0 without Host", b"GET /rootDesc.xml HTTP/1.0\r\n\r\n", 200)
case("POST without body", req(b"POST /echo HTTP/1.1", (b"Content-Length: 0",)), 200,
     closes=False)
case("body at the cap", req(b"POST /echo HTTP/1.1", (b"Content-Length: 2048",), b"b" * 2048),
     200, closes=False)
case("chunked with trailer", req(b"POST /echo HTTP/1.1", (b"Transfer-Encoding: chunked",),
                                 b"1\r\na\r\n0\r\nX-Trailer: 1\r\n\r\n"), 200, closes=False)
case("chunk extension", req(b"POST /echo HTTP/1.1", (b"Transfer-Encoding: chunked",),
                            b"1;ext=1\r\na\r\n0\r\n\r\n"), 200, closes=False)
case("Connection: close", req(headers=(b"Connection: close",)), 200)
case("HTTP/1.0 keep-alive still closes", b"GET /rootDesc.xml HTTP/1.0\r\n"
     b"Connection: keep-alive\r\n\r\n", 200)
case("Upgrade request answered, then closed", req(headers=(b"Connection: Upgrade",
                                                           b"Upgrade: websocket")), 200)
case("SUBSCRIBE routed to GENA (no CALLBACK)", req(b"SUBSCRIBE /evt HTTP/1.1",
                                                   (b"NT: upnp:event",)), 412, closes=False)
case("UNSUBSCRIBE routed to GENA (no SID)", req(b"UNSUBSCRIBE /evt HTTP/1.1"), 412,
     closes=False)

h = Harness(exe, "--port", 0, "--max-header", 1024, "--max-body", 2048, "--idle-ms", 1500)
try:
    for name, data, want, closes in CASES:
        out, closed = raw(h.port, data, timeout=2.5)
        got = status_of(out)
        ok = got == want and (closed or not closes)
        check(ok, "%s -> %d%s (got %s%s)" % (name, want, " + close" if closes else "", got,
                                           ", closed" if closed else ""))
    out, _ = raw(h.port, OK_REQ)
    check(status_of(out) == 200, "still serving after %d broken requests" % len(CASES))
    check(h.alive(), "harness alive")
finally:
    rc = h.stop()
check(rc == 0, "harness exited cleanly")
finish()

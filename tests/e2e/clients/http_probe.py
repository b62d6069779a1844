#!/usr/bin/python3
"""One raw HTTP/1.1 request, for the e2e scenarios: what iwfd's HTTP server answers.

  http_probe.py METHOD URL [--big-header BYTES] [--body TEXT] [--hold N]

Sends the request on a new connection (Connection: close) and prints
  STATUS n
  HEADER Name: value        one line per response header
  BODY n bytes
and then the body when it is text of at most 4000 bytes. --big-header adds an X-Big header
of that many bytes (iwfd answers 431 past its header limit). --hold opens N connections
first that send nothing and stay open until the answer came (past a host's share of iwfd's
connections the request is refused: 503). Exit 0 when an answer came, 1 when the connection
closed without one.
"""
import socket
import sys
import urllib.parse


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    method, url, rest = argv[1], argv[2], argv[3:]
    big, body, hold = 0, "", 0
    while rest:
        a = rest.pop(0)
        if a == "--big-header":
            big = int(rest.pop(0))
        elif a == "--body":
            body = rest.pop(0)
        elif a == "--hold":
            hold = int(rest.pop(0))
    u = urllib.parse.urlsplit(url)
    held = []
    for _ in range(hold):
        try:
            held.append(socket.create_connection((u.hostname, u.port or 80), timeout=10))
        except OSError:
            pass
    if hold:
        print("HELD %d connections" % len(held))
    target = u.path + ("?" + u.query if u.query else "")
    req = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (method, target, u.netloc)
    if big:
        req += "X-Big: " + "b" * big + "\r\n"
    if body or method == "POST":
        req += "Content-Length: %d\r\n" % len(body.encode())
    req = req.encode() + b"\r\n" + body.encode()
    s = socket.create_connection((u.hostname, u.port or 80), timeout=10)
    try:
        s.sendall(req)
    except OSError:
        pass          # an early answer (431) and close may cut our sending short
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    s.close()
    for h in held:
        h.close()
    if not data:
        print("no answer: closed")
        return 1
    head, _, payload = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    print("STATUS " + lines[0].split(" ")[1])
    for line in lines[1:]:
        print("HEADER " + line)
    print("BODY %d bytes" % len(payload))
    if len(payload) <= 4000:
        try:
            print(payload.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

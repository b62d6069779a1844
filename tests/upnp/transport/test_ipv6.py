#!/usr/bin/python3
"""UPnP over IPv6 in upnp/'s transport half (issue 15, UDA 1.1 Annex A), in network
namespaces this test creates and removes:

  [lan host] eth0 fd77:1::2/64, 2001:db8:99::2/64, fe80::..   --- lan0 fd77:1::1/64, fe80::.. [router]
  [wan host] eth0 fd77:2::2/64                                 --- wan0 fd77:2::1/64          [router]

The router runs upnpt_harness with --ssdp-if lan0 --ipv6 1 (IPv4 beside it, as iwfd needs).
Checked: NOTIFY on [ff02::c]:1900 with a link-local LOCATION in brackets; M-SEARCH to ff02::c
from a link-local and from a ULA source, and unicast, answered with the matching bracketed
LOCATION; no answer to the WAN host nor to a LAN source outside lan0's prefixes; the
description over IPv6 (ULA and link-local); HTTP from outside the prefixes closed unanswered,
from the WAN refused; GENA SUBSCRIBE over IPv6 with an IPv6 callback gets its NOTIFY (ULA and
link-local), another host's callback 412; a host's connection share and a source's SSDP
budget hold over IPv6; a prefix added while running is served; and
without --ipv6 nothing is sent over IPv6.
usage: test_ipv6.py HARNESS
       test_ipv6.py --client MODE ARGS...   (run inside a namespace by the test itself)
"""
import http.server
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

SELF = os.path.abspath(__file__)
GROUP6 = "ff02::c"


# ------------------------------------------------------------------ client side (in a netns)

def parse(data):
    lines = data.decode("latin-1").split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        if not ln:
            break
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs


def collect(s, seconds):
    end = time.monotonic() + seconds
    out = []
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
        out.append({"from": src[0], "start": start, "headers": hdrs})
    return out


def client(mode, args):
    if mode == "search":
        # search IFNAME DEST PORT SOURCE SECONDS ST
        ifname, dest, port, source, seconds, st = args
        ifindex = socket.if_nametoindex(ifname)
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        s.bind((source if source != "-" else "::", 0, 0, ifindex if source.startswith("fe80") else 0))
        msg = ("M-SEARCH * HTTP/1.1\r\nHOST: [FF02::C]:1900\r\nMAN: \"ssdp:discover\"\r\n"
               "MX: 1\r\nST: %s\r\n\r\n" % st).encode()
        scope = ifindex if dest.startswith("ff02") or dest.startswith("fe80") else 0
        s.sendto(msg, (dest, int(port), 0, scope))
        print(json.dumps(collect(s, float(seconds))))
    elif mode == "burst":
        # burst DEST PORT SOURCE COUNT: COUNT unicast ssdp:all searches at once, count answers
        dest, port, source, count = args
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind((source, 0))
        msg = (b"M-SEARCH * HTTP/1.1\r\nHOST: [FF02::C]:1900\r\nMAN: \"ssdp:discover\"\r\n"
               b"ST: ssdp:all\r\n\r\n")
        for _ in range(int(count)):
            s.sendto(msg, (dest, int(port)))
        print(json.dumps(len(collect(s, 2.0))))
    elif mode == "conns":
        # conns HOST PORT SOURCE N: N idle connections from SOURCE; what the last one is told
        host, port, source, n = args
        socks = []
        for _ in range(int(n)):
            c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            c.settimeout(5)
            c.bind((source, 0))
            c.connect((host, int(port)))
            socks.append(c)
        try:
            socks[-1].settimeout(2)
            data = socks[-1].recv(4096).decode("latin-1")
        except OSError as e:
            data = type(e).__name__
        print(json.dumps({"last": data}))
    elif mode == "listen":
        # listen IFNAME SECONDS: NOTIFYs to [ff02::c]:1900
        ifname, seconds = args
        ifindex = socket.if_nametoindex(ifname)
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", 1900))
        mreq = socket.inet_pton(socket.AF_INET6, GROUP6) + struct.pack("@I", ifindex)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        print(json.dumps({"ready": True}), flush=True)
        print(json.dumps(collect(s, float(seconds))), flush=True)
    elif mode == "get":
        # get HOST PORT SOURCE IFNAME PATH: status and body length, or the error
        host, port, source, ifname, path = args
        scope = socket.if_nametoindex(ifname) if host.startswith("fe80") else 0
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            if source != "-":
                s.bind((source, 0))
            s.connect((host, int(port), 0, scope))
            hosthdr = "[%s]:%s" % (host, port)
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                       % (path, hosthdr)).encode())
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
            print(json.dumps({"data": data.decode("latin-1")}))
        except OSError as e:
            print(json.dumps({"error": type(e).__name__}))
    elif mode == "gena":
        # gena HOST PORT IFNAME CALLBACK_HOST CB_PORT: SUBSCRIBE, then wait for a NOTIFY on
        # [::]:CB_PORT (5 s); prints the SUBSCRIBE status and what arrived.
        host, port, ifname, cb_host, cb_port = args
        scope = socket.if_nametoindex(ifname) if host.startswith("fe80") else 0
        got = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_NOTIFY(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n).decode()
                got.append({"seq": self.headers.get("SEQ"), "sid": self.headers.get("SID"),
                            "host": self.headers.get("Host"), "peer": self.client_address[0],
                            "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        class S(http.server.HTTPServer):
            address_family = socket.AF_INET6

        srv = S(("::", int(cb_port)), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        # one evented variable for the harness's service, so there is something to send
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect((host, int(port), 0, scope))
        s.sendall(("POST /set HTTP/1.1\r\nHost: [%s]:%s\r\nContent-Length: 20\r\n\r\n"
                   "ConnectionStatus=Up\n" % (host, port)).encode())
        s.recv(4096)
        s.close()
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect((host, int(port), 0, scope))
        s.sendall(("SUBSCRIBE /evt HTTP/1.1\r\nHOST: [%s]:%s\r\nCALLBACK: <http://[%s]:%s/cb>\r\n"
                   "NT: upnp:event\r\nTIMEOUT: Second-300\r\nContent-Length: 0\r\n\r\n"
                   % (host, port, cb_host, cb_port)).encode())
        resp = s.recv(4096).decode("latin-1")
        s.close()
        status = int(resp.split()[1]) if resp.startswith("HTTP/") else 0
        end = time.monotonic() + (5 if status == 200 else 1.5)
        while not got and time.monotonic() < end:
            time.sleep(0.05)
        srv.shutdown()
        print(json.dumps({"status": status, "notify": got}))
    else:
        sys.exit(2)


if len(sys.argv) > 1 and sys.argv[1] == "--client":
    client(sys.argv[2], sys.argv[3:])
    sys.exit(0)

# ------------------------------------------------------------------ the test

sys.path.insert(0, os.path.dirname(SELF))
from upnpt import Harness, check, finish  # noqa: E402

exe = sys.argv[1]
tag = "up6%d" % (os.getpid() % 100000)
R, L, W = tag + "r", tag + "l", tag + "w"


def sh(*args, check_rc=True):
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check_rc and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stdout.decode()))
    return r.stdout.decode()


def setup():
    for n in (R, L, W):
        sh("ip", "netns", "add", n)
        # No duplicate address detection: addresses usable at once (no tentative phase).
        sh("ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
           "net.ipv6.conf.default.accept_dad=0")
        sh("ip", "-n", n, "link", "set", "lo", "up")
    sh("ip", "link", "add", "lan0", "netns", R, "type", "veth", "peer", "name", "eth0", "netns", L)
    sh("ip", "link", "add", "wan0", "netns", R, "type", "veth", "peer", "name", "eth0", "netns", W)
    for ns, dev, addrs in ((R, "lan0", ("10.77.1.1/24", "fd77:1::1/64")),
                           (R, "wan0", ("10.77.2.1/24", "fd77:2::1/64")),
                           (L, "eth0", ("10.77.1.2/24", "fd77:1::2/64", "2001:db8:99::2/64")),
                           (W, "eth0", ("10.77.2.2/24", "fd77:2::2/64"))):
        for a in addrs:
            sh("ip", "-n", ns, "addr", "add", a, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
    # The router reaches the off-prefix LAN source (so that its TCP handshake completes and
    # the refusal is http.c's doing); the WAN host routes to the LAN prefix via the router.
    sh("ip", "-n", R, "-6", "route", "add", "2001:db8:99::/64", "dev", "lan0")
    sh("ip", "-n", W, "-6", "route", "add", "fd77:1::/64", "via", "fd77:2::1")


def teardown():
    for n in (R, L, W):
        sh("ip", "netns", "del", n, check_rc=False)


def linklocal(ns, dev):
    out = sh("ip", "-n", ns, "-6", "-o", "addr", "show", "dev", dev, "scope", "link")
    for tok in out.split():
        if tok.startswith("fe80"):
            return tok.split("/")[0]
    raise RuntimeError("no link-local address on %s/%s" % (ns, dev))


def wait_linklocal(ns, dev):
    for _ in range(50):
        try:
            return linklocal(ns, dev)
        except RuntimeError:
            time.sleep(0.1)
    return linklocal(ns, dev)


def run_client(ns, *args, timeout=30):
    out = sh("ip", "netns", "exec", ns, "/usr/bin/python3", SELF, "--client",
             *[str(a) for a in args])
    return json.loads(out.strip().splitlines()[-1])


def search(ns, dest, port, source, st="upnp:rootdevice", seconds=2.5):
    return run_client(ns, "search", "eth0", dest, port, source, seconds, st)


def listen_start(ns, seconds):
    p = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", SELF, "--client",
                          "listen", "eth0", str(seconds)], stdout=subprocess.PIPE)
    p.stdout.readline()  # {"ready": true}
    return p


def listen_result(p):
    out, _ = p.communicate(timeout=60)
    return json.loads(out.decode().strip().splitlines()[-1])


setup()
h = None
try:
    r_ll = wait_linklocal(R, "lan0")
    l_ll = wait_linklocal(L, "eth0")

    # --- opt-in: without --ipv6 nothing leaves over IPv6
    lst = listen_start(L, 1.5)
    h = Harness(exe, "--port", 0, "--ssdp-if", "lan0", "--location-host", "10.77.1.1", netns=R)
    notes = listen_result(lst)
    check(notes == [], "without --ipv6: no NOTIFY on ff02::c (got %d)" % len(notes))
    res = search(L, GROUP6, 1900, "-", seconds=1.5)
    check(res == [], "without --ipv6: no answer to an IPv6 M-SEARCH")
    g = run_client(L, "get", "fd77:1::1", h.port, "-", "eth0", "/rootDesc.xml")
    check("error" in g, "without --ipv6: no HTTP over IPv6 (%s)" % g)
    h.stop()

    # --- start-up NOTIFY ssdp:alive on [ff02::c]:1900, LOCATION link-local in brackets
    lst = listen_start(L, 2.5)
    h = Harness(exe, "--port", 0, "--ssdp-if", "lan0", "--location-host", "10.77.1.1",
                "--ipv6", 1, netns=R)
    loc_ll = "http://[%s]:%d/rootDesc.xml" % (r_ll, h.port)
    loc_ula = "http://[fd77:1::1]:%d/rootDesc.xml" % h.port
    notes = listen_result(lst)
    alive = [n for n in notes if n["headers"].get("nts") == "ssdp:alive"]
    check(len({n["headers"].get("nt") for n in alive}) == 10,
          "ssdp:alive over IPv6 for all 10 targets (got %d NOTIFYs)" % len(alive))
    check(all(n["headers"].get("location") == loc_ll for n in alive),
          "NOTIFY LOCATION is the link-local URL %s (%s)" %
          (loc_ll, {n["headers"].get("location") for n in alive}))
    check(all(n["headers"].get("host") == "[FF02::C]:1900" for n in alive),
          "NOTIFY HOST is [FF02::C]:1900")
    check(all(n["from"].startswith("fe80") for n in alive), "NOTIFYs come from the link-local address")

    # --- M-SEARCH to ff02::c from the link-local address: link-local LOCATION
    res = search(L, GROUP6, 1900, l_ll)
    check(len(res) == 1 and res[0]["start"].startswith("HTTP/1.1 200"),
          "M-SEARCH from %s to ff02::c answered (%d)" % (l_ll, len(res)))
    check(all(r["headers"].get("location") == loc_ll for r in res),
          "... with LOCATION %s (%s)" % (loc_ll, [r["headers"].get("location") for r in res]))
    check(all(r["headers"].get("st") == "upnp:rootdevice" for r in res), "... ST upnp:rootdevice")
    # from the ULA address: the ULA LOCATION
    res = search(L, GROUP6, 1900, "fd77:1::2")
    check(len(res) == 1 and res[0]["headers"].get("location") == loc_ula,
          "M-SEARCH from fd77:1::2 to ff02::c: LOCATION %s (%s)" %
          (loc_ula, [r["headers"].get("location") for r in res]))
    # unicast to the router's ULA
    res = search(L, "fd77:1::1", 1900, "fd77:1::2", st="ssdp:all")
    check(len(res) == 10 and all(r["headers"].get("location") == loc_ula for r in res),
          "unicast ssdp:all to [fd77:1::1]:1900: 10 answers with LOCATION %s (%d)" % (loc_ula, len(res)))
    # a LAN source outside lan0's prefixes, and the WAN: no answer
    res = search(L, GROUP6, 1900, "2001:db8:99::2", seconds=1.5)
    check(res == [], "M-SEARCH from 2001:db8:99::2 (not on lan0's prefixes): no answer")
    res = search(W, "fd77:1::1", 1900, "-", seconds=1.5)
    check(res == [], "unicast M-SEARCH from the WAN host: no answer")

    # --- the description over IPv6
    for host in ("fd77:1::1", r_ll):
        g = run_client(L, "get", host, h.port, "-", "eth0", "/rootDesc.xml")
        data = g.get("data", "")
        check(data.startswith("HTTP/1.1 200") and "InternetGatewayDevice" in data,
              "GET /rootDesc.xml over [%s]: 200 (%s)" % (host, g.get("error", data[:40])))
    g = run_client(L, "get", "fd77:1::1", h.port, "2001:db8:99::2", "eth0", "/rootDesc.xml")
    check(g.get("data") == "" or "error" in g,
          "HTTP from 2001:db8:99::2 (off-prefix): closed without an answer (%s)" % g)
    g = run_client(W, "get", "fd77:1::1", h.port, "-", "eth0", "/rootDesc.xml")
    check("error" in g, "HTTP from the WAN host to the LAN ULA: no listener (%s)" % g)
    check(h.alive(), "harness alive")

    # --- GENA over IPv6
    g = run_client(L, "gena", "fd77:1::1", h.port, "eth0", "fd77:1::2", 47001)
    n = g["notify"]
    check(g["status"] == 200, "SUBSCRIBE over IPv6, CALLBACK [fd77:1::2]: 200 (%s)" % g["status"])
    check(len(n) == 1 and n[0]["seq"] == "0" and n[0]["host"] == "[fd77:1::2]:47001",
          "initial NOTIFY delivered to [fd77:1::2]:47001, SEQ 0 (%s)" % n)
    g = run_client(L, "gena", r_ll, h.port, "eth0", l_ll, 47002)
    n = g["notify"]
    check(g["status"] == 200 and len(n) == 1 and n[0]["peer"].startswith("fe80"),
          "SUBSCRIBE over link-local, CALLBACK [%s]: NOTIFY delivered (%s)" % (l_ll, g))
    g = run_client(L, "gena", "fd77:1::1", h.port, "eth0", "fd77:1::3", 47003)
    check(g["status"] == 412 and g["notify"] == [],
          "CALLBACK naming another IPv6 host: 412, nothing sent (%s)" % g["status"])

    # --- the IPv4 limits hold for IPv6 peers: a host's quarter of the connections (16 of
    # 64), a source's SSDP reply bucket (60 answers at once)
    g = run_client(L, "conns", "fd77:1::1", h.port, "fd77:1::2", 17)
    check(g["last"].startswith("HTTP/1.1 503"),
          "17th idle connection of one IPv6 host: 503 (%s)" % g["last"][:40])
    time.sleep(0.5)
    n = run_client(L, "burst", "fd77:1::1", 1900, "fd77:1::2", 40)
    check(10 <= n <= 60, "40 ssdp:all searches from one IPv6 source at once: 10..60 answers (%d)" % n)

    # --- a LAN prefix added while running (DHCPv6-PD after a WAN reconnect): served
    sh("ip", "-n", R, "addr", "add", "fd77:5::1/64", "dev", "lan0")
    sh("ip", "-n", L, "addr", "add", "fd77:5::2/64", "dev", "eth0")
    g = run_client(L, "get", "fd77:5::1", h.port, "fd77:5::2", "eth0", "/rootDesc.xml")
    check(g.get("data", "").startswith("HTTP/1.1 200"),
          "HTTP from fd77:5::2 in a prefix added after the start: 200 (%s)" % g)
    res = search(L, GROUP6, 1900, "fd77:5::2")
    check(len(res) == 1 and res[0]["headers"].get("location") ==
          "http://[fd77:5::1]:%d/rootDesc.xml" % h.port,
          "M-SEARCH from fd77:5::2: answered, LOCATION in the new prefix (%s)" %
          [r["headers"].get("location") for r in res])
    check(h.alive(), "harness alive at the end")
finally:
    if h is not None:
        rc = h.stop()
        check(rc in (0, -15), "harness exits cleanly (%s)" % rc)
    teardown()
finish()

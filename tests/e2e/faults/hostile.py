#!/usr/bin/python3
"""Hostile LAN host: floods and malformed input against iwfd, with verdicts.

  hostile.py ssdp-flood --duration S          M-SEARCH (valid, malformed, oversized) to the
                                              SSDP group and to the router, as fast as possible
  hostile.py ssdp-flood ... --rotate N --pps R  the same valid M-SEARCH from N addresses of this
                                              host in turn, R per second each (per-source
                                              buckets must not be reset by rotating sources)
  hostile.py msearch --router ADDR [--within S]
                                              one ordinary M-SEARCH must be answered (discovery
                                              still works for this host)
  hostile.py pipeline --url U --duration S    one connection with a 4 KiB receive buffer
                                              pipelines GET of the largest SCPD and never reads
  hostile.py connflood --url U --rate R --duration S
                                              R connections/s, each a GET with "Connection:
                                              close", never read nor closed (they linger)
  hostile.py served --url U --pid P --duration S --mem-bound-mib M
                                              meanwhile, from another host: every GET of the
                                              root description answers 200 and M-SEARCH is
                                              answered; iwfd's VmHWM stays within M MiB of its
                                              VmRSS at the start (not under ASan)
  hostile.py wan --router ADDR --http-port N [--source ADDR] [--eport P]
                                              from the WAN side (or an address off the LAN
                                              subnet): GET rootDesc.xml, a SOAP AddPortMapping
                                              and M-SEARCHes to the router's LAN address get no
                                              answer at all
  hostile.py http --url U --pid P --corpus DIR [--connections 1000] [--slowloris 100]
                  [--mem-bound-mib 16]
      phases, each followed by a liveness probe (GetStatusInfo must answer 200):
        concurrent  N connections opened at once, each sends GET rootDesc.xml; every one must
                    end with an HTTP answer (200, or 503 over iwfd's connection limit) or a
                    close by the server -- none left hanging
        giant       bodies/headers far beyond the limits: Content-Length 1 GiB, a 2 MiB
                    chunked body, a 256 KiB header, a 64 KiB URI -> 4xx/5xx or close
        garbage     binary noise, NULs, bare LFs, unknown methods, HTTP/0.9, pipelines
        corpus      every request of tests/upnp/corpus-soap/ POSTed to its service's control
                    URL: an HTTP answer each; for a bad_* request to its own service the UPnP
                    errorCode must be the one the corpus expects
        gena        SUBSCRIBE with callbacks to other hosts -> 412 (CallStranger); 50 own
                    subscriptions -> 200 while there is room, then 503; all cancelled again
        slowloris   M connections dribbling a header one byte per second: iwfd must close
                    every one it accepted (its limit is one idle period, 30 s, per request)
      then: open descriptors back to the baseline (no leak), and memory bounded: VmHWM at the
      end at most --mem-bound-mib above VmRSS at the start (not checked under ASan, whose
      allocator keeps freed memory in quarantine).

Exit 0 when every verdict holds, 1 otherwise (each failure printed).
"""
import argparse
import asyncio
import os
import random
import re
import resource
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import igd as IGD  # noqa: E402

FAILURES = []


def out(msg):
    print(msg, flush=True)


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
        out(f"  FAIL: {msg}")
    return cond


# ----------------------------------------------------------------------------------- SSDP

def cmd_ssdp_flood(a):
    if a.rotate:
        return ssdp_rotate(a)
    socks = []
    for src in [None] + (a.extra_sources or []):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        if src:
            # several LAN addresses on this host: per-source limits do not hold them back
            os.system(f"ip addr add {src}/32 dev eth0 2>/dev/null")
            s.bind((src, 0))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
        s.setblocking(False)
        socks.append(s)
    rnd = random.Random(1)
    good = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
            b"MX: 5\r\nST: ssdp:all\r\n\r\n")
    variants = [
        good,
        good.replace(b"MX: 5", b"MX: 999999999999"),
        good.replace(b"ssdp:all", b"urn:schemas-upnp-org:device:InternetGatewayDevice:1"),
        good.replace(b"ssdp:all", b"x" * 1000),
        b"M-SEARCH * HTTP/1.1\r\n" + b"X: " + b"y" * 1400 + b"\r\n\r\n",
        b"NOTIFY * HTTP/1.1\r\nNTS: ssdp:alive\r\n\r\n",
        b"\x00" * 64,
        b"M-SEARCH * HTTP/1.1\r\nMAN: ssdp:discover\r\n",          # no end of header
        bytes(rnd.getrandbits(8) for _ in range(1400)),
        b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: -1\r\nST: \r\n\r\n",
    ]
    dests = [("239.255.255.250", 1900), (a.router, 1900)]
    end = time.monotonic() + a.duration
    sent = replies = 0
    out("flooding")
    def drain():
        n = 0
        for s in socks:
            while True:
                try:
                    s.recv(2048)
                    n += 1
                except BlockingIOError:
                    break
        return n

    while time.monotonic() < end:
        for s in socks:
            for d in dests:
                for v in variants:
                    try:
                        s.sendto(v, d)
                        sent += 1
                    except BlockingIOError:
                        time.sleep(0.001)
        replies += drain()
    time.sleep(1)
    replies += drain()
    out(f"ssdp flood: {sent} datagrams sent, {replies} replies received "
        f"({replies / max(a.duration, 1):.0f}/s: iwfd rate-limits its answers)")
    out("VERDICT PASS: flood sent")


def ssdp_rotate(a):
    """a.rotate addresses of this host, each sending a valid M-SEARCH a.pps times a second, in
    turn (so a small table of recent sources keeps evicting them)."""
    net = a.router.rsplit(".", 1)[0]
    socks = []
    for i in range(a.rotate):
        src = f"{net}.{100 + i}"
        os.system(f"ip addr add {src}/32 dev eth0 2>/dev/null")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        s.bind((src, 0))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
        s.setblocking(False)
        socks.append(s)
    # the very search an ordinary control point makes: one answer (one token) each, so the
    # flood competes with it for every token
    msg = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
           b"MX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n")
    dests = [("239.255.255.250", 1900), (a.router, 1900)]
    gap = 1.0 / (a.pps * len(socks))
    sent = replies = 0
    out(f"flooding from {len(socks)} rotating sources, {a.pps}/s each")
    start = time.monotonic()
    nxt = start
    k = 0
    while time.monotonic() - start < a.duration:
        s = socks[k % len(socks)]
        try:
            s.sendto(msg, dests[k // len(socks) % 2])
            sent += 1
        except BlockingIOError:
            pass
        k += 1
        nxt += gap
        if k % 25 == 0:
            for r in socks:
                while True:
                    try:
                        r.recv(2048)
                        replies += 1
                    except BlockingIOError:
                        break
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    out(f"ssdp rotating flood: {sent} M-SEARCHes ({sent / a.duration:.0f}/s) from "
        f"{len(socks)} sources, {replies} replies received")
    out("VERDICT PASS: flood sent")


def cmd_msearch(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    msg = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
           b"MX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n")
    end = time.monotonic() + a.within
    tries = 0
    while time.monotonic() < end:
        s.sendto(msg, ("239.255.255.250", 1900))
        tries += 1
        t_end = time.monotonic() + 2
        while time.monotonic() < t_end:
            try:
                data, src = s.recvfrom(2048)
            except socket.timeout:
                continue
            if data.startswith(b"HTTP/1.1 200") and b"LOCATION:" in data.upper():
                loc = re.search(rb"(?i)location:\s*(\S+)", data).group(1).decode()
                out(f"answered by {src[0]} after {tries} M-SEARCH(es): {loc}")
                out("VERDICT PASS: discovery works")
                return
    out(f"VERDICT FAIL: no M-SEARCH answer in {a.within}s ({tries} tries)")
    sys.exit(1)


# ----------------------------------------------------------------------------------- HTTP

def url_parts(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port, u.path


def cmd_pipeline(a):
    """A client that pipelines and never reads (4 KiB receive buffer)."""
    host, port, _ = url_parts(a.url)
    req = f"GET /scpd/WANIPConn.xml HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() * 256
    end = time.monotonic() + a.duration
    conns = sent = closed = 0
    out("pipelining")
    while time.monotonic() < end:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            s.connect((host, port))
        except OSError:
            time.sleep(0.2)
            continue
        conns += 1
        s.setblocking(False)
        while time.monotonic() < end:
            try:
                sent += s.send(req)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                closed += 1      # iwfd closed it (idle period): open the next one
                break
        s.close()
    out(f"pipeline: {conns} connection(s), {sent} request bytes sent, {closed} closed by iwfd")
    out("VERDICT PASS: pipeline sent")


def cmd_connflood(a):
    """a.rate connections a second from this host that ask once and never close."""
    host, port, path = url_parts(a.url)
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)), hard))
    except (ValueError, OSError):
        pass
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    held = []
    start = time.monotonic()
    nxt = start
    out("connection flood")
    while time.monotonic() - start < a.duration:
        try:
            c = socket.create_connection((host, port), timeout=2)
            c.sendall(req)
            held.append(c)
        except OSError:
            pass
        nxt += 1.0 / a.rate
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    out(f"connflood: {len(held)} connections opened in {a.duration:.0f} s, never closed")
    for c in held:
        c.close()
    out("VERDICT PASS: flood sent")


def msearch_once(timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    msg = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
           b"MX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n")
    s.sendto(msg, ("239.255.255.250", 1900))
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            try:
                data, _ = s.recvfrom(2048)
            except socket.timeout:
                continue
            if data.startswith(b"HTTP/1.1 200"):
                return True
        return False
    finally:
        s.close()


def cmd_served(a):
    """Another LAN host during the attacks: HTTP 200 and SSDP answers; memory bounded."""
    host, port, path = url_parts(a.url)
    sanitized = is_sanitized(a.pid)
    before = IGD.proc_mem(a.pid)
    out(f"baseline iwfd {a.pid}: {before}" + (" (sanitizer build)" if sanitized else ""))
    time.sleep(a.settle)
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    gets, searches = {}, [0, 0]
    end = time.monotonic() + a.duration
    next_search = 0
    while time.monotonic() < end:
        st, how, _ = asyncio.run(exchange(host, port, req, timeout=5))
        k = st if st else how
        gets[k] = gets.get(k, 0) + 1
        if time.monotonic() >= next_search:
            searches[0] += 1
            # one M-SEARCH, and at most one retry (UDP may lose one)
            searches[1] += msearch_once() or msearch_once()
            next_search = time.monotonic() + 2
        time.sleep(0.2)
    after = IGD.proc_mem(a.pid)
    growth = (after["VmHWM"] - before["VmRSS"]) / 1024
    out(f"GET {path}: {gets}; M-SEARCH answered {searches[1]} of {searches[0]}")
    out(f"memory: VmRSS {before['VmRSS']} kB before, VmHWM {after['VmHWM']} kB after "
        f"(peak {growth:.1f} MiB above the start); fds {before['fds']} -> {after['fds']}")
    check(set(gets) == {200}, f"another host's GETs during the attacks: {gets}, every one must be 200")
    check(searches[0] > 0 and searches[1] == searches[0],
          f"another host's M-SEARCH answered {searches[1]} of {searches[0]} times")
    if sanitized:
        out("memory bound not checked: sanitizer build")
    else:
        check(growth < a.mem_bound_mib, f"peak memory {growth:.1f} MiB above the start, bound "
              f"{a.mem_bound_mib} MiB")
    if FAILURES:
        out(f"VERDICT FAIL: " + " | ".join(FAILURES))
        sys.exit(1)
    out("VERDICT PASS: another host served, memory bounded")


def cmd_wan(a):
    """From outside the LAN: no HTTP answer, no SSDP answer, nothing the IGD does."""
    src = (a.source, 0) if a.source else None
    hp = f"{a.router}:{a.http_port}"
    body = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
            '<u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">'
            f'<NewRemoteHost></NewRemoteHost><NewExternalPort>{a.eport}</NewExternalPort>'
            f'<NewProtocol>TCP</NewProtocol><NewInternalPort>{a.eport}</NewInternalPort>'
            f'<NewInternalClient>{a.router.rsplit(".", 1)[0]}.11</NewInternalClient>'
            '<NewEnabled>1</NewEnabled><NewPortMappingDescription>wan</NewPortMappingDescription>'
            '<NewLeaseDuration>0</NewLeaseDuration></u:AddPortMapping></s:Body></s:Envelope>')
    reqs = {
        "GET /rootDesc.xml": f"GET /rootDesc.xml HTTP/1.1\r\nHost: {hp}\r\n\r\n".encode(),
        "SOAP AddPortMapping": (
            f"POST /ctl/WANIPConn HTTP/1.1\r\nHost: {hp}\r\nContent-Type: text/xml\r\n"
            f"SOAPAction: \"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping\"\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode(),
    }
    for name, data in reqs.items():
        got, how = b"", "?"
        try:
            c = socket.create_connection((a.router, a.http_port), timeout=3, source_address=src)
            c.sendall(data)
            c.settimeout(3)
            try:
                while True:
                    d = c.recv(65536)
                    if not d:
                        how = "closed without an answer"
                        break
                    got += d
            except socket.timeout:
                how = "no answer in 3 s"
            except ConnectionResetError:
                how = "reset"
            c.close()
        except ConnectionRefusedError:
            how = "connection refused (no listener for it)"
        except OSError as e:
            how = f"no connection ({e})"
        st = status_of(got)
        out(f"  {name} from {a.source or 'this host'}: {how}" + (f", HTTP {st}" if st else ""))
        check(not got, f"{name}: iwfd answered from outside the LAN: {got[:80]!r}")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if src:
        s.bind(src)
    s.settimeout(0.5)
    msg = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
           b"MX: 1\r\nST: ssdp:all\r\n\r\n")
    for d in ((a.router, 1900), ("239.255.255.250", 1900)):
        try:
            s.sendto(msg, d)
        except OSError as e:
            out(f"  M-SEARCH to {d[0]}: not sent ({e})")
    answers = []
    end = time.monotonic() + 3
    while time.monotonic() < end:
        try:
            data, who = s.recvfrom(2048)
            answers.append((who, data[:60]))
        except socket.timeout:
            pass
    out(f"  M-SEARCH (unicast and multicast): {len(answers)} answers in 3 s")
    check(not answers, f"SSDP answered outside the LAN: {answers[:3]}")
    if FAILURES:
        out("VERDICT FAIL: " + " | ".join(FAILURES))
        sys.exit(1)
    out("VERDICT PASS: nothing answered outside the LAN")


def is_sanitized(pid):
    try:
        with open(f"/proc/{pid}/maps") as f:
            if "asan" in f.read():
                return True
        with open(f"/proc/{pid}/exe", "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


async def exchange(host, port, data, timeout=10.0, read_limit=1 << 20, drip=None):
    """Send data, read until the server closes or a full response (Content-Length) arrived.
    -> (status or None, 'answered'|'closed'|'reset'|'hung', bytes read)."""
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        return None, f"connect-failed {type(e).__name__}", b""
    buf = b""
    try:
        if drip:
            for b in data:
                w.write(bytes([b]))
                await w.drain()
                await asyncio.sleep(drip)
        else:
            w.write(data)
            await w.drain()
    except (ConnectionError, OSError):
        pass            # the server may close while we are still sending (413, 503 ...)
    end = time.monotonic() + timeout
    try:
        while len(buf) < read_limit:
            left = end - time.monotonic()
            if left <= 0:
                w.close()
                return status_of(buf), "hung", buf
            chunk = await asyncio.wait_for(r.read(65536), left)
            if not chunk:
                break
            buf += chunk
            if complete(buf):
                break
    except asyncio.TimeoutError:
        w.close()
        return status_of(buf), "hung", buf
    except (ConnectionError, OSError):
        w.close()
        return status_of(buf), ("answered" if status_of(buf) else "reset"), buf
    w.close()
    st = status_of(buf)
    return st, ("answered" if st else "closed"), buf


def status_of(buf):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
    return int(m.group(1)) if m else None


def complete(buf):
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    return bool(m) and len(body) >= int(m.group(1))


class Target:
    def __init__(self, url, pid):
        self.url = url
        self.pid = pid
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.desc = u.hostname, u.port, u.path
        self.igd = IGD.Igd(url)

    def alive(self, what):
        code, f, took = self.igd.call("GetStatusInfo", timeout=10)
        ok = check(code == 0, f"after {what}: GetStatusInfo -> {code} {f}")
        if ok:
            out(f"  alive after {what}: GetStatusInfo 200 ({f.get('NewConnectionStatus')})")
        check(os.path.exists(f"/proc/{self.pid}"), f"after {what}: iwfd process {self.pid} is gone")
        return ok

    def mem(self):
        return IGD.proc_mem(self.pid)


async def phase_concurrent(t, n):
    req = (f"GET {t.desc} HTTP/1.1\r\nHost: {t.host}:{t.port}\r\n\r\n").encode()
    res = await asyncio.gather(*(exchange(t.host, t.port, req, timeout=30) for _ in range(n)))
    tally = {}
    for st, how, _ in res:
        k = f"{how}:{st}" if st else how
        tally[k] = tally.get(k, 0) + 1
    out(f"  {n} concurrent GETs: {tally}")
    check(not any(how == "hung" for _, how, _ in res), "some connections got neither an answer "
          "nor a close within 30 s")
    check(all(st in (None, 200, 503) for st, _, _ in res), "unexpected status among "
          f"{sorted(set(st for st, _, _ in res if st))}")
    check(tally.get("answered:200", 0) >= 1, "not a single GET was served")


async def phase_giant(t):
    ctl = t.igd.services[t.igd.wan]["control"]
    hp = f"{t.host}:{t.port}"
    cases = {
        "content-length 1 GiB (2 MiB sent)": (
            f"POST {ctl} HTTP/1.1\r\nHost: {hp}\r\nContent-Type: text/xml\r\n"
            f"SOAPAction: \"{t.igd.wan}#GetStatusInfo\"\r\nContent-Length: 1073741824\r\n\r\n"
        ).encode() + b"<" * (2 << 20),
        "chunked 2 MiB": (
            f"POST {ctl} HTTP/1.1\r\nHost: {hp}\r\nTransfer-Encoding: chunked\r\n"
            f"SOAPAction: \"{t.igd.wan}#GetStatusInfo\"\r\n\r\n").encode()
        + b"".join(b"10000\r\n" + b"a" * 0x10000 + b"\r\n" for _ in range(32)) + b"0\r\n\r\n",
        "256 KiB header": (f"GET {t.desc} HTTP/1.1\r\nHost: {hp}\r\nX-Big: ").encode()
        + b"b" * (256 << 10) + b"\r\n\r\n",
        "64 KiB URI": (f"GET /{'u' * 65536} HTTP/1.1\r\nHost: {hp}\r\n\r\n").encode(),
        "10000 headers": (f"GET {t.desc} HTTP/1.1\r\nHost: {hp}\r\n").encode()
        + b"".join(b"X-%d: v\r\n" % i for i in range(10000)) + b"\r\n",
        "content-length overflow": (f"POST {ctl} HTTP/1.1\r\nHost: {hp}\r\n"
                                    "Content-Length: 99999999999999999999999\r\n\r\nx").encode(),
        "negative content-length": (f"POST {ctl} HTTP/1.1\r\nHost: {hp}\r\n"
                                    "Content-Length: -5\r\n\r\nx").encode(),
        "SUBSCRIBE 1 MiB callback": (f"SUBSCRIBE {t.igd.services[t.igd.wan]['event']} HTTP/1.1\r\n"
                                     f"Host: {hp}\r\nNT: upnp:event\r\nCALLBACK: <http://"
                                     ).encode() + b"c" * (1 << 20) + b">\r\n\r\n",
    }
    for name, data in cases.items():
        st, how, _ = await exchange(t.host, t.port, data, timeout=15)
        out(f"  {name}: {how} {st or ''}")
        check(how != "hung", f"giant '{name}': no answer and no close within 15 s")
        check(st is None or 400 <= st < 600, f"giant '{name}': status {st}, expected a refusal")


async def phase_garbage(t):
    rnd = random.Random(7)
    hp = f"{t.host}:{t.port}"
    cases = [bytes(rnd.getrandbits(8) for _ in range(n)) for n in (1, 17, 512, 4096, 20000)]
    cases += [
        b"\x00" * 1000,
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET /\r\n\r\n",
        b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 50,                 # pipeline
        (f"GET {t.desc} HTTP/1.1\r\nHost: {hp}\r\n\r\n").encode() * 20,
        b"SUBSCRIBE / HTTP/1.1\r\nCALLBACK: <http://127.0.0.1:1/>\r\nNT: upnp:event\r\n\r\n",
        b"UNSUBSCRIBE / HTTP/1.1\r\nSID: uuid:" + b"f" * 5000 + b"\r\n\r\n",
        b"\r\n" * 5000,
    ]
    # concurrently: an incomplete request is (rightly) held until iwfd's 30 s idle timeout
    tally = {}
    res = await asyncio.gather(*(exchange(t.host, t.port, d, timeout=40) for d in cases))
    for data, (st, how, _) in zip(cases, res):
        k = f"{how}:{st}" if st else how
        tally[k] = tally.get(k, 0) + 1
        check(how != "hung", f"garbage {data[:40]!r}...: neither answer nor close within 40 s")
    out(f"  garbage ({len(cases)} inputs): {tally}")


def corpus_case(path):
    with open(path, "rb") as f:
        raw = f.read()
    head, _, body = raw.partition(b"\n\n")
    hdr = {}
    for line in head.decode().splitlines():
        k, _, v = line.partition(":")
        hdr[k.strip().upper()] = v.strip()
    return hdr, body


SERVICE_TYPES = {"IP1": "urn:schemas-upnp-org:service:WANIPConnection:1",
                 "IP2": "urn:schemas-upnp-org:service:WANIPConnection:2",
                 "PPP1": "urn:schemas-upnp-org:service:WANPPPConnection:1",
                 "CIC1": "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1",
                 "L3F1": "urn:schemas-upnp-org:service:Layer3Forwarding:1"}


async def phase_corpus(t, corpus):
    files = sorted(f for f in os.listdir(corpus) if f.endswith(".req"))
    hp = f"{t.host}:{t.port}"
    tally, mism, checked = {}, [], 0
    sem = asyncio.Semaphore(8)   # iwfd serves one LAN host at most 16 connections at a time

    async def one(name):
        nonlocal checked
        hdr, body = corpus_case(os.path.join(corpus, name))
        st_name = SERVICE_TYPES.get(hdr.get("X-SERVICE", ""), "")
        own = st_name in t.igd.services
        ctl = t.igd.services[st_name if own else t.igd.wan]["control"]
        extra = f"SOAPAction: {hdr['SOAPACTION']}\r\n" if "SOAPACTION" in hdr else ""
        req = (f"POST {ctl} HTTP/1.1\r\nHost: {hp}\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"
               f"{extra}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
        async with sem:
            for _ in range(10):
                st, how, buf = await exchange(t.host, t.port, req, timeout=15)
                if st != 503:
                    break
                await asyncio.sleep(0.5)   # over iwfd's connection limit (a refusal): again
        k = f"{how}:{st}" if st else how
        tally[k] = tally.get(k, 0) + 1
        check(st is not None, f"corpus {name}: no HTTP answer ({how})")
        want = int(hdr.get("X-EXPECT", "0") or 0)
        if own and name.startswith("bad_") and want:
            checked += 1
            m = re.search(rb"<errorCode>(\d+)</errorCode>", buf)
            got = int(m.group(1)) if m else None
            if got != want:
                mism.append(f"{name}: errorCode {got}, corpus expects {want} (HTTP {st})")

    await asyncio.gather(*(one(n) for n in files))
    out(f"  corpus: {len(files)} requests: {tally}; {checked} bad_* checked against their "
        f"expected UPnP error")
    for m in mism[:20]:
        out(f"    mismatch {m}")
    check(not mism, f"{len(mism)} corpus requests answered another UPnP error than expected")
    check(checked >= 50, f"only {checked} corpus requests could be checked")


async def phase_gena(t, n):
    """SUBSCRIBE abuse: callbacks to other hosts must be refused (412, CVE-2020-12695
    CallStranger); n subscriptions with our own callback must each be answered (200 while
    iwfd has room, then 503), then all are cancelled again."""
    ev = t.igd.services[t.igd.wan]["event"]
    hp = f"{t.host}:{t.port}"
    me = IGD.my_address(t.host)

    async def notify_sink(r, w):
        try:
            while await r.readline() not in (b"\r\n", b""):
                pass
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await w.drain()
        except (ConnectionError, OSError):
            pass
        w.close()

    srv = await asyncio.start_server(notify_sink, me, 0)
    port = srv.sockets[0].getsockname()[1]
    for foreign in ("192.168.77.12", "11.22.99.99", "127.0.0.1", "239.255.255.250", "0.0.0.0"):
        req = (f"SUBSCRIBE {ev} HTTP/1.1\r\nHost: {hp}\r\nCALLBACK: <http://{foreign}:{port}/x>\r\n"
               f"NT: upnp:event\r\nTIMEOUT: Second-300\r\n\r\n").encode()
        st, how, _ = await exchange(t.host, t.port, req, timeout=10)
        check(st == 412, f"SUBSCRIBE with a callback to {foreign}: {how} {st}, expected 412")
    sids, tally = [], {}
    for i in range(n):
        req = (f"SUBSCRIBE {ev} HTTP/1.1\r\nHost: {hp}\r\nCALLBACK: <http://{me}:{port}/s{i}>\r\n"
               f"NT: upnp:event\r\nTIMEOUT: Second-1800\r\n\r\n").encode()
        st, how, buf = await exchange(t.host, t.port, req, timeout=10)
        tally[st] = tally.get(st, 0) + 1
        m = re.search(rb"(?i)\r\nsid:\s*(\S+)", buf)
        if st == 200 and m:
            sids.append(m.group(1).decode())
    out(f"  {n} SUBSCRIBEs with our own callback: {tally} (iwfd keeps at most a fixed number)")
    check(set(tally) <= {200, 503}, f"SUBSCRIBE answers {tally}, expected 200 or 503")
    check(0 < len(sids) <= 64, f"{len(sids)} subscriptions accepted: unbounded?")
    await asyncio.sleep(0.5)
    for sid in sids:
        req = (f"UNSUBSCRIBE {ev} HTTP/1.1\r\nHost: {hp}\r\nSID: {sid}\r\n\r\n").encode()
        st, how, _ = await exchange(t.host, t.port, req, timeout=10)
        check(st == 200, f"UNSUBSCRIBE {sid}: {how} {st}")
    srv.close()


async def phase_slowloris(t, n):
    """n connections dribble a never-ending header; iwfd must close every one it accepted
    within its idle period (30 s) plus slack."""
    hp = f"{t.host}:{t.port}"
    conns = []
    for _ in range(n):
        try:
            r, w = await asyncio.open_connection(t.host, t.port)
            conns.append((r, w))
        except OSError:
            pass
    start = time.monotonic()
    head = f"GET {t.desc} HTTP/1.1\r\nHost: {hp}\r\nX-Slow: ".encode()
    closed_at = {}
    refused = 0

    async def dribble(i, r, w):
        nonlocal refused
        try:
            w.write(head)
            await w.drain()
            while time.monotonic() - start < 60:
                # a 503 refusal (over the limit) or a close ends it
                try:
                    data = await asyncio.wait_for(r.read(4096), 1.0)
                    if not data:
                        closed_at[i] = time.monotonic() - start
                        return
                    if data.startswith(b"HTTP/1.1 503"):
                        refused += 1
                        closed_at[i] = time.monotonic() - start
                        return
                except asyncio.TimeoutError:
                    pass
                w.write(b"a")
                await w.drain()
        except (ConnectionError, OSError):
            closed_at[i] = time.monotonic() - start
            return

    async def legit_probe():
        await asyncio.sleep(3)
        req = (f"GET {t.desc} HTTP/1.1\r\nHost: {hp}\r\n\r\n").encode()
        st, how, _ = await exchange(t.host, t.port, req, timeout=10)
        out(f"  a normal GET during the slowloris: {how} {st or ''}")
        return st

    res = await asyncio.gather(legit_probe(), *(dribble(i, r, w) for i, (r, w) in enumerate(conns)))
    for _, w in conns:
        w.close()
    held = [v for v in closed_at.values()]
    out(f"  slowloris: {len(conns)} connections, {refused} refused at once (503), "
        f"{len(held) - refused} closed by iwfd after {min(held, default=0):.0f}-"
        f"{max(held, default=0):.0f} s, {len(conns) - len(held)} never closed")
    check(len(held) == len(conns), f"slowloris: {len(conns) - len(held)} connections still open "
          f"after 60 s")
    if t.strict_fairness:
        check(res[0] == 200, f"a normal GET from the same host during the slowloris got "
              f"{res[0]}: one host can lock every other control point out")
    return res[0]


def run_http(a):
    t = Target(a.url, a.pid)
    t.strict_fairness = a.strict_fairness
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    except (ValueError, OSError):
        pass
    sanitized = is_sanitized(a.pid)
    t.alive("start")
    before = t.mem()
    out(f"iwfd {a.pid} before: {before}" + (" (sanitizer build)" if sanitized else ""))
    for name, coro in (("concurrent", lambda: phase_concurrent(t, a.connections)),
                       ("giant", lambda: phase_giant(t)),
                       ("garbage", lambda: phase_garbage(t)),
                       ("corpus", lambda: phase_corpus(t, a.corpus)),
                       ("gena", lambda: phase_gena(t, 50)),
                       ("slowloris", lambda: phase_slowloris(t, a.slowloris))):
        if a.only and name not in a.only.split(","):
            continue
        out(f"phase {name}")
        t0 = time.monotonic()
        asyncio.run(coro())
        out(f"  ({time.monotonic() - t0:.1f} s) {t.mem()}")
        if not t.alive(name):
            break
    # let iwfd finish closing what the phases left (linger 1 s, idle timers)
    deadline = time.monotonic() + 35
    after = t.mem()
    while after["fds"] > before["fds"] and time.monotonic() < deadline:
        time.sleep(1)
        after = t.mem()
    out(f"iwfd after: {after}")
    check(after["fds"] <= before["fds"], f"open descriptors {before['fds']} -> {after['fds']}: "
          f"a leak")
    growth = (after["VmHWM"] - before["VmRSS"]) / 1024
    out(f"memory: VmRSS {before['VmRSS']} kB -> {after['VmRSS']} kB, VmHWM {after['VmHWM']} kB "
        f"(peak {growth:.1f} MiB above the start)")
    if sanitized:
        out("memory bound not checked: sanitizer build")
    else:
        check(growth < a.mem_bound_mib, f"peak memory {growth:.1f} MiB above the start, bound "
              f"{a.mem_bound_mib} MiB")
    if FAILURES:
        out(f"VERDICT FAIL: {len(FAILURES)} failures: " + " | ".join(FAILURES[:10]))
        sys.exit(1)
    out("VERDICT PASS: iwfd answered or refused everything, stayed up, bounded memory")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ssdp-flood")
    p.add_argument("--router", required=True)
    p.add_argument("--duration", type=float, default=8)
    p.add_argument("--extra-sources", nargs="*", help="more LAN addresses to flood from")
    p.add_argument("--rotate", type=int, default=0, help="N rotating sources (valid M-SEARCH only)")
    p.add_argument("--pps", type=float, default=25, help="with --rotate: per source and second")
    p = sub.add_parser("pipeline")
    p.add_argument("--url", required=True)
    p.add_argument("--duration", type=float, default=10)
    p = sub.add_parser("connflood")
    p.add_argument("--url", required=True)
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--duration", type=float, default=10)
    p = sub.add_parser("served")
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--settle", type=float, default=2, help="seconds before the first probe")
    p.add_argument("--mem-bound-mib", type=float, default=8)
    p = sub.add_parser("wan")
    p.add_argument("--router", required=True)
    p.add_argument("--http-port", type=int, default=5000)
    p.add_argument("--source", help="source address to use (e.g. one off the LAN subnet)")
    p.add_argument("--eport", type=int, default=41999)
    p = sub.add_parser("msearch")
    p.add_argument("--within", type=float, default=10)
    p = sub.add_parser("http")
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--slowloris", type=int, default=100)
    p.add_argument("--mem-bound-mib", type=float, default=16)
    p.add_argument("--only", help="comma-separated phases")
    p.add_argument("--strict-fairness", action="store_true",
                   help="also require a normal GET to be served during the slowloris")
    a = ap.parse_args()
    if a.cmd == "ssdp-flood":
        cmd_ssdp_flood(a)
    elif a.cmd == "msearch":
        cmd_msearch(a)
    elif a.cmd in ("pipeline", "connflood", "served", "wan"):
        globals()["cmd_" + a.cmd](a)
    else:
        run_http(a)


if __name__ == "__main__":
    main()

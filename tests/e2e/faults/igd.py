#!/usr/bin/python3
"""A tiny UPnP IGD control point (stdlib only) and the carrier's view, for the fault scenarios.

Every verdict of docs/robustness.md that needs more than one regex lives here, as a sub-command
run inside a LAN host namespace by tests/e2e/run.py:

  igd.py adds     --url U --count N [--threads K] [--base P] [--deadline S] [--delete-every M]
                  AddPortMapping N times (TCP and UDP alternately); each call must answer 200 or
                  UPnP error 501 within --deadline seconds (miniupnpc's own socket timeout is
                  5 s).  Successful ones at every M-th index are then deleted (200 or 501 too).
  igd.py agree    --url U --carrier-ns NS [--within S] [--hold S] [--journal F] [--relay-stats F]
                  poll until iwfd's table (GetGenericPortMappingEntry 0,1,... until 713) equals
                  the carrier's (DNAT rules of miniupnpd's nft chain), then check it stays equal
                  for --hold seconds.  --journal: every acknowledged add (not acknowledged-deleted
                  afterwards) must be in the table ("no mapping lost").
  igd.py churn    --url U --journal F [--duration S] [--threads K] [--base P]
                  adds and deletes as fast as iwfd answers, each acknowledged operation appended
                  to the journal; connection errors (iwfd killed) end a worker quietly.
  igd.py gena     --url U --until A,B,C [--timeout S] [--port P]
                  SUBSCRIBE to WANIPConnection's event URL with this host's own callback, print
                  every NOTIFY's ConnectionStatus, exit 0 once the sequence A,B,C was evented.
  igd.py byebye   [--timeout S] [--expect-usn-count N]
                  join 239.255.255.250:1900 and wait for ssdp:byebye NOTIFYs.
  igd.py status   --url U [--expect Connected|Disconnected] [--within S]
  igd.py table    --url U          print iwfd's table
  igd.py statefile --path F [--expect PROTO:EPORT:CLIENT:IPORT]... [--absent PROTO:EPORT]...
                   [--intents N]
                  [--mark FILE | --newer-than FILE]   check iwfd's state file
  igd.py mem      --pid P          VmRSS / VmHWM / open fds of a process

Exit status: 0 verdict holds, 1 it does not (the reason is printed), 2 usage/harness errors.
"""
import argparse
import http.client
import ipaddress
import json
import struct
import zlib
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DEV_NS = "{urn:schemas-upnp-org:device-1-0}"
CTL_NS = "{urn:schemas-upnp-org:control-1-0}"


def out(msg):
    print(msg, flush=True)


def fail(msg):
    out(f"VERDICT FAIL: {msg}")
    sys.exit(1)


# ------------------------------------------------------------------------------------ SOAP

class Igd:
    """Root description -> services; SOAP calls with explicit timeouts and timings."""

    def __init__(self, url, timeout=5.0):
        self.url = url
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        body = self.http("GET", u.path or "/", timeout=timeout)[2]
        root = ET.fromstring(body)
        self.services = {}
        for s in root.iter(DEV_NS + "service"):
            st = s.findtext(DEV_NS + "serviceType")
            self.services[st] = {"control": s.findtext(DEV_NS + "controlURL"),
                                 "event": s.findtext(DEV_NS + "eventSubURL")}
        self.wan = next((k for k in self.services if ":WANIPConnection:" in k or
                         ":WANPPPConnection:" in k), None)
        if not self.wan:
            raise RuntimeError(f"no WAN*Connection service in {url}: {list(self.services)}")

    def http(self, method, path, body=b"", headers=None, timeout=5.0):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def call(self, action, args=(), service=None, timeout=5.0):
        """-> (code, fields, seconds): code 0 = success, a UPnP error code, or -1 when no
        answer came (timeout / connection error; fields then holds 'error')."""
        st = service or self.wan
        xml_args = "".join(f"<{k}>{v}</{k}>" for k, v in args)
        body = (f'<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="{SOAP_ENV}" '
                f's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
                f'<u:{action} xmlns:u="{st}">{xml_args}</u:{action}></s:Body></s:Envelope>\r\n')
        hdrs = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": f'"{st}#{action}"'}
        t0 = time.monotonic()
        try:
            status, _h, data = self.http("POST", self.services[st]["control"], body.encode(), hdrs,
                                         timeout=timeout)
        except (OSError, http.client.HTTPException) as e:
            return -1, {"error": f"{type(e).__name__}: {e}"}, time.monotonic() - t0
        took = time.monotonic() - t0
        try:
            root = ET.fromstring(data)
        except ET.ParseError as e:
            return -1, {"error": f"HTTP {status}, unparsable body: {e}"}, took
        if status == 200:
            resp = next(iter(root.find(f"{{{SOAP_ENV}}}Body")), None)
            return 0, {c.tag: (c.text or "") for c in (resp if resp is not None else [])}, took
        code = root.findtext(f".//{CTL_NS}errorCode")
        return (int(code) if code and code.isdigit() else -1), \
            {"status": status, "description": root.findtext(f".//{CTL_NS}errorDescription")}, took

    def add(self, eport, proto, client, iport, desc="fault", lease=0, timeout=5.0):
        return self.call("AddPortMapping", [
            ("NewRemoteHost", ""), ("NewExternalPort", eport), ("NewProtocol", proto),
            ("NewInternalPort", iport), ("NewInternalClient", client), ("NewEnabled", 1),
            ("NewPortMappingDescription", desc), ("NewLeaseDuration", lease)], timeout=timeout)

    def delete(self, eport, proto, timeout=5.0):
        return self.call("DeletePortMapping", [("NewRemoteHost", ""), ("NewExternalPort", eport),
                                               ("NewProtocol", proto)], timeout=timeout)

    def table(self):
        """{(proto, eport): (client, iport)} via GetGenericPortMappingEntry until 713."""
        t = {}
        for i in range(10000):
            code, f, _ = self.call("GetGenericPortMappingEntry", [("NewPortMappingIndex", i)])
            if code == 713:
                return t
            if code != 0:
                raise RuntimeError(f"GetGenericPortMappingEntry({i}) -> {code} {f}")
            t[(f["NewProtocol"], int(f["NewExternalPort"]))] = (f["NewInternalClient"],
                                                               int(f["NewInternalPort"]))
        raise RuntimeError("more than 10000 entries?")

    def status(self):
        code, f, _ = self.call("GetStatusInfo")
        if code != 0:
            raise RuntimeError(f"GetStatusInfo -> {code} {f}")
        return f.get("NewConnectionStatus")


def my_address(toward):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((toward, 9))
        return s.getsockname()[0]
    finally:
        s.close()


# ------------------------------------------------------------------------------ carrier

# miniupnpd 2.3.1 writes "@nh,72,8 0x6 th dport 40000 dnat ip to A:P" (IPv4 protocol byte);
# newer nft/miniupnpd may print "tcp dport 40000 dnat ip to A:P".
DNAT_RE = re.compile(r"(?:\b(tcp|udp)|@nh,72,8 (0x6|0x11) th) dport (\d+) dnat ip to ([0-9.]+):(\d+)")
PROTO_BYTE = {"0x6": "TCP", "0x11": "UDP"}


def carrier_table(ns, chain="prerouting_miniupnpd"):
    """miniupnpd's DNAT rules in the carrier namespace: {(PROTO, eport): (client, iport)}."""
    p = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "filter", chain],
                       capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        raise RuntimeError(f"nft in {ns}: {p.stderr.strip()}")
    t = {}
    for m in DNAT_RE.finditer(p.stdout):
        proto = m.group(1).upper() if m.group(1) else PROTO_BYTE[m.group(2)]
        t[(proto, int(m.group(3)))] = (m.group(4), int(m.group(5)))
    return t


def fmt(t):
    return ", ".join(f"{p} {e}->{c}:{i}" for (p, e), (c, i) in sorted(t.items())) or "(empty)"


def diff(a, b):
    only_a = {k: v for k, v in a.items() if b.get(k) != v}
    only_b = {k: v for k, v in b.items() if a.get(k) != v}
    return only_a, only_b


# ------------------------------------------------------------------------------ commands

def cmd_adds(a):
    igd = Igd(a.url)
    me = my_address(igd.host)
    jobs = list(range(a.count))
    results = {}
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not jobs:
                    return
                i = jobs.pop(0)
            proto = "TCP" if i % 2 == 0 else "UDP"
            port = a.base + i
            code, f, took = igd.add(port, proto, me, port, f"loss-{i}", timeout=a.deadline)
            with lock:
                results[i] = (proto, port, code, f, took)

    ths = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    bad = []
    for i in sorted(results):
        proto, port, code, f, took = results[i]
        verdict = "ok" if code in (0, 501) else "BAD"
        out(f"add {proto} {port}: {'200' if code == 0 else code} in {took:.2f}s {verdict}"
            + (f" {f}" if code not in (0, 501) else ""))
        if code not in (0, 501):
            bad.append(f"{proto} {port} -> {code} {f}")
    ok = [r for r in results.values() if r[2] == 0]
    out(f"adds: {len(ok)} succeeded, {sum(1 for r in results.values() if r[2] == 501)} "
        f"answered 501, {len(bad)} other")
    deleted = []
    if a.delete_every:
        for n, (proto, port, code, f, took) in enumerate(sorted(ok, key=lambda r: r[1])):
            if n % a.delete_every:
                continue
            dcode, df, dtook = igd.delete(port, proto, timeout=a.deadline)
            out(f"delete {proto} {port}: {'200' if dcode == 0 else dcode} in {dtook:.2f}s")
            if dcode not in (0, 501):
                bad.append(f"delete {proto} {port} -> {dcode} {df}")
            deleted.append((proto, port, dcode))
    if a.journal:
        with open(a.journal, "a") as j:
            for proto, port, code, f, took in results.values():
                if code == 0:
                    j.write(json.dumps({"op": "add", "proto": proto, "port": port}) + "\n")
            for proto, port, dcode in deleted:
                if dcode == 0:
                    j.write(json.dumps({"op": "del", "proto": proto, "port": port}) + "\n")
    if bad:
        fail("calls neither succeeded nor failed with 501 within the deadline: " + "; ".join(bad))
    if a.min_ok and len(ok) < a.min_ok:
        fail(f"only {len(ok)} adds succeeded, expected at least {a.min_ok}")
    out("VERDICT PASS: every call answered 200 or 501 within its deadline")


def read_journal(path):
    """-> (live, gone, maybe): the last journal record of each key decides: an acknowledged
    add -> live, an acknowledged delete -> gone, anything else (a try-* without its answer,
    because iwfd was killed meanwhile, or an error answer) -> maybe either."""
    last = {}
    if not path or not os.path.exists(path):
        return set(), set(), set()
    with open(path) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue     # a half-written last line when the writer was cut off
            last[(e["proto"], e["port"])] = e["op"]
    live = {k for k, op in last.items() if op == "add"}
    gone = {k for k, op in last.items() if op == "del"}
    return live, gone, set(last) - live - gone


def cmd_agree(a):
    deadline = time.monotonic() + a.within
    last = None
    while True:
        try:
            igd = Igd(a.url)
            mine, theirs = igd.table(), carrier_table(a.carrier_ns)
            only_i, only_c = diff(mine, theirs)
            last = (mine, theirs, only_i, only_c)
            if not only_i and not only_c:
                break
        except (OSError, RuntimeError, ET.ParseError, http.client.HTTPException) as e:
            last = (None, None, str(e), None)
        if time.monotonic() > deadline:
            mine, theirs, only_i, only_c = last
            fail(f"iwfd's table and the carrier's never agreed within {a.within}s:\n"
                 f"  iwfd:    {fmt(mine) if mine is not None else only_i}\n"
                 f"  carrier: {fmt(theirs) if theirs is not None else '?'}\n"
                 f"  only in iwfd: {fmt(only_i) if isinstance(only_i, dict) else only_i}\n"
                 f"  only on the carrier (orphans): {fmt(only_c) if only_c else '-'}")
        time.sleep(1)
    mine = last[0]
    out(f"agree after {a.within - (deadline - time.monotonic()):.1f}s: {len(mine)} mappings: {fmt(mine)}")
    hold_end = time.monotonic() + a.hold
    while time.monotonic() < hold_end:
        time.sleep(1)
        m2, c2 = Igd(a.url).table(), carrier_table(a.carrier_ns)
        if m2 != c2:
            oi, oc = diff(m2, c2)
            fail(f"after agreeing they disagree again: only in iwfd {fmt(oi)}; only on the "
                 f"carrier {fmt(oc)}")
    live, gone, _ = read_journal(a.journal)
    keys = set(mine)
    lost = live - keys
    resurrected = gone & keys
    if a.journal:
        out(f"journal: {len(live)} acknowledged live, {len(gone)} acknowledged deleted, "
            f"{len(_)} unacknowledged (either way is right)")
        if lost:
            fail(f"acknowledged mappings lost: {sorted(lost)}")
        if resurrected:
            fail(f"acknowledged deletions came back: {sorted(resurrected)}")
    if a.min_entries is not None and len(mine) < a.min_entries:
        fail(f"only {len(mine)} mappings in the agreed table, expected at least {a.min_entries}")
    if a.relay_stats:
        with open(a.relay_stats) as f:
            st = json.load(f)
        out(f"relay: {st}")
        if st.get("dropped", 0) < 1 or st.get("delayed", 0) < 1:
            fail("the relay dropped or delayed nothing: the fault was not injected")
    out(f"VERDICT PASS: iwfd and the carrier agree ({len(mine)} mappings) and stay so for {a.hold}s")


def cmd_churn(a):
    """Adds and deletes until iwfd stops answering or --duration is over.  Journal lines are
    written (and flushed) only for acknowledged operations."""
    igd = Igd(a.url)
    me = my_address(igd.host)
    lock = threading.Lock()
    jf = open(a.journal, "a")
    stop_at = time.monotonic() + a.duration
    counts = {"add": 0, "del": 0, "try-add": 0, "try-del": 0, "error": 0, "noanswer": 0}

    def log(op, proto, port):
        with lock:
            jf.write(json.dumps({"op": op, "proto": proto, "port": port}) + "\n")
            jf.flush()
            counts[op] += 1

    def worker(w):
        rnd = random.Random(w)
        mine = []
        tried = set()   # each key is added at most once: its journal history stays simple
        misses = 0
        while time.monotonic() < stop_at and misses < 3:
            if mine and rnd.random() < 0.4:
                proto, port = mine.pop(rnd.randrange(len(mine)))
                log("try-del", proto, port)
                code, f, _ = igd.delete(port, proto, timeout=6)
                log("del" if code == 0 else "error", proto, port)
            else:
                proto = rnd.choice(("TCP", "UDP"))
                port = a.base + w * 1000 + rnd.randrange(1000)
                if (proto, port) in mine or (proto, port) in tried:
                    continue
                tried.add((proto, port))
                log("try-add", proto, port)
                code, f, _ = igd.add(port, proto, me, port, f"churn-{w}", timeout=6)
                log("add" if code == 0 else "error", proto, port)
                if code == 0:
                    mine.append((proto, port))
            if code == -1:
                misses += 1
                with lock:
                    counts["noanswer"] += 1
                time.sleep(0.2)

    ths = [threading.Thread(target=worker, args=(w,)) for w in range(a.threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    jf.close()
    out(f"churn: {counts}")
    if counts["add"] < 1:
        fail("no add was acknowledged: the burst never ran")
    out("VERDICT PASS: churn done")


def cmd_gena(a):
    igd = Igd(a.url)
    me = my_address(igd.host)
    ev_path = igd.services[igd.wan]["event"]
    events = []
    cond = threading.Condition()
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def do_NOTIFY(self):
            n = int(self.headers.get("Content-Length", "0") or 0)
            body = self.rfile.read(n).decode("utf-8", "replace")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            m = re.search(r"<ConnectionStatus>([^<]*)</ConnectionStatus>", body)
            seq = self.headers.get("SEQ")
            with cond:
                if m:
                    events.append(m.group(1))
                    out(f"EVENT seq={seq} ConnectionStatus={m.group(1)} t={time.monotonic():.1f}")
                else:
                    out(f"EVENT seq={seq} (no ConnectionStatus)")
                cond.notify_all()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer((me, a.port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    cb = f"http://{me}:{srv.server_address[1]}/gena"
    st, hdrs, body = igd.http("SUBSCRIBE", ev_path, headers={
        "CALLBACK": f"<{cb}>", "NT": "upnp:event", "TIMEOUT": "Second-300"})
    sid = {k.upper(): v for k, v in hdrs.items()}.get("SID")
    if st != 200 or not sid:
        fail(f"SUBSCRIBE {ev_path} -> {st} {hdrs}")
    out(f"subscribed {sid} callback {cb}")
    want = a.until.split(",")
    deadline = time.monotonic() + a.timeout

    def seen_sequence():
        i = 0
        for e in events:
            if i < len(want) and e == want[i]:
                i += 1
        return i == len(want)

    with cond:
        while not seen_sequence():
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"evented ConnectionStatus {events}, wanted the sequence {want}")
            cond.wait(left)
    out(f"VERDICT PASS: ConnectionStatus evented in order {want} (all: {events})")
    try:
        igd.http("UNSUBSCRIBE", ev_path, headers={"SID": sid})
    except OSError:
        pass
    srv.shutdown()


def cmd_byebye(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", 1900))
    mreq = socket.inet_aton("239.255.255.250") + socket.inet_aton("0.0.0.0")
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    out("listening on 239.255.255.250:1900")
    deadline = time.monotonic() + a.timeout
    usns, alive = set(), 0
    quiet_after = None
    while True:
        left = deadline - time.monotonic()
        if quiet_after is not None:
            left = min(left, quiet_after - time.monotonic())
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, src = s.recvfrom(4096)
        except socket.timeout:
            break
        text = data.decode("utf-8", "replace")
        hdr = {}
        for line in text.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            hdr[k.strip().upper()] = v.strip()
        if not text.startswith("NOTIFY"):
            continue
        if hdr.get("NTS") == "ssdp:byebye":
            usns.add(hdr.get("USN", ""))
            out(f"byebye from {src[0]}: NT={hdr.get('NT')} USN={hdr.get('USN')}")
            quiet_after = time.monotonic() + 1.5   # the rest of the burst
        elif hdr.get("NTS") == "ssdp:alive":
            alive += 1
    out(f"{len(usns)} distinct byebye USNs, {alive} alive seen")
    roots = [u for u in usns if u.endswith("::upnp:rootdevice")]
    if not roots:
        fail("no ssdp:byebye for upnp:rootdevice")
    if len(usns) < a.expect_usn_count:
        fail(f"only {len(usns)} byebye USNs, expected at least {a.expect_usn_count}")
    out("VERDICT PASS: ssdp:byebye sent")


def cmd_status(a):
    deadline = time.monotonic() + a.within
    while True:
        try:
            st = Igd(a.url).status()
        except (OSError, RuntimeError) as e:
            st = f"error {e}"
        out(f"ConnectionStatus {st}")
        if not a.expect or st == a.expect:
            return
        if time.monotonic() > deadline:
            fail(f"ConnectionStatus {st}, expected {a.expect}")
        time.sleep(0.5)


def cmd_table(a):
    out(fmt(Igd(a.url).table()))


def read_state_file(path):
    """iwfd's state file as a dict like the 0.1 JSON document: the journal of
    docs/architecture.md ("Storage: a journal") replayed, or an old JSON file as it is."""
    with open(path, "rb") as f:
        data = f.read()
    if data.lstrip()[:1] == b"{":
        return json.loads(data.decode())
    if data[:8] != b"IWFDJRNL" or len(data) < 16:
        raise SystemExit(f"FAIL: {path} is neither a journal nor a JSON state file")
    version = struct.unpack(">I", data[8:12])[0]
    recs, meta, off, torn = {}, {}, 16, 0
    while off < len(data):
        if off + 8 > len(data):
            torn = len(data) - off
            break
        plen, rtype = struct.unpack(">HB", data[off:off + 3])
        end = off + 4 + plen
        if end + 4 > len(data) or zlib.crc32(data[off:end]) != struct.unpack(">I", data[end:end + 4])[0]:
            torn = len(data) - off
            break
        p = data[off + 4:end]
        if rtype == 1:
            rid, proto, flags, eport, iport, rport = struct.unpack(">IBBHHH", p[:12])
            addrs = [ipaddress.IPv6Address(p[28 + 16 * i:44 + 16 * i]) for i in range(4)]
            ic = addrs[1].ipv4_mapped or addrs[1]
            recs[rid] = {"protocol": {6: "TCP", 17: "UDP"}.get(proto, str(proto)), "external_port": eport,
                         "internal_client": str(ic), "internal_port": iport, "router_port": rport,
                         "intent": bool(flags & 2), "nonce": p[92:104].hex(),
                         "description": p[104:].decode(errors="replace")}
        elif rtype == 2:
            recs.pop(struct.unpack(">I", p[:4])[0], None)
        elif rtype == 3:
            meta = {"boot_id": struct.unpack(">I", p[48:52])[0],
                    "system_update_id": struct.unpack(">I", p[52:56])[0]}
        off = end + 4
    return {"version": version, "boot_id": meta.get("boot_id"), "torn_bytes": torn,
            "mappings": [m for m in recs.values() if not m["intent"]],
            "intents": [m for m in recs.values() if m["intent"]]}


def cmd_statefile(a):
    """Check iwfd's state file: it parses, holds the --expect'ed mappings; --mark FILE records
    its modification time, --newer-than FILE requires it to have been rewritten since."""
    try:
        st = os.stat(a.path)
    except FileNotFoundError:
        fail(f"no state file at {a.path}")
    if a.mark:
        with open(a.mark, "w") as f:
            f.write(str(st.st_mtime_ns))
        out(f"marked mtime {st.st_mtime_ns}")
    if a.newer_than:
        with open(a.newer_than) as f:
            before = int(f.read())
        if st.st_mtime_ns <= before:
            fail(f"{a.path} was not rewritten (mtime {st.st_mtime_ns} <= {before})")
        out(f"rewritten: mtime {before} -> {st.st_mtime_ns}")
    doc = read_state_file(a.path)
    have = {(m["protocol"], m["external_port"]): (m["internal_client"], m["internal_port"])
            for m in doc.get("mappings", [])}
    out(f"state file: version {doc.get('version')}, boot_id {doc.get('boot_id')}, "
        f"{len(have)} mappings: {fmt(have)}, {len(doc.get('intents', []))} intents"
        + (f", {doc['torn_bytes']} bytes of torn tail" if doc.get("torn_bytes") else ""))
    for e in a.expect or []:
        proto, eport, client, iport = e.split(":")
        if have.get((proto, int(eport))) != (client, int(iport)):
            fail(f"state file lacks {e}")
    for e in a.absent or []:
        proto, eport = e.split(":")
        if (proto, int(eport)) in have:
            fail(f"state file still holds {e}")
    if a.intents is not None and len(doc.get("intents", [])) != a.intents:
        fail(f"{len(doc.get('intents', []))} intents in the state file, expected {a.intents}")
    out("VERDICT PASS: state file as expected")


def proc_mem(pid):
    d = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                d[k] = int(v.split()[0])
    d["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return d


def cmd_mem(a):
    out(json.dumps(proc_mem(a.pid)))


def main():
    ap = argparse.ArgumentParser(description="fault-scenario control point")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("adds")
    p.add_argument("--url", required=True)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--base", type=int, default=41000)
    p.add_argument("--deadline", type=float, default=5.0)
    p.add_argument("--delete-every", type=int, default=0)
    p.add_argument("--min-ok", type=int, default=1)
    p.add_argument("--journal")
    p = sub.add_parser("agree")
    p.add_argument("--url", required=True)
    p.add_argument("--carrier-ns", required=True)
    p.add_argument("--within", type=float, default=30)
    p.add_argument("--hold", type=float, default=3)
    p.add_argument("--journal")
    p.add_argument("--relay-stats")
    p.add_argument("--min-entries", type=int)
    p = sub.add_parser("churn")
    p.add_argument("--url", required=True)
    p.add_argument("--journal", required=True)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--base", type=int, default=20000)
    p = sub.add_parser("gena")
    p.add_argument("--url", required=True)
    p.add_argument("--until", required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--port", type=int, default=0)
    p = sub.add_parser("byebye")
    p.add_argument("--timeout", type=float, default=15)
    p.add_argument("--expect-usn-count", type=int, default=1)
    p = sub.add_parser("status")
    p.add_argument("--url", required=True)
    p.add_argument("--expect")
    p.add_argument("--within", type=float, default=0)
    p = sub.add_parser("table")
    p.add_argument("--url", required=True)
    p = sub.add_parser("statefile")
    p.add_argument("--path", required=True)
    p.add_argument("--expect", action="append", help="PROTO:EPORT:CLIENT:IPORT")
    p.add_argument("--absent", action="append", help="PROTO:EPORT that must not be there")
    p.add_argument("--intents", type=int)
    p.add_argument("--mark")
    p.add_argument("--newer-than")
    p = sub.add_parser("mem")
    p.add_argument("--pid", type=int, required=True)
    a = ap.parse_args()
    globals()["cmd_" + a.cmd](a)


if __name__ == "__main__":
    main()

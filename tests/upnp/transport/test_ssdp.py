#!/usr/bin/python3
"""SSDP of upnp/ (ssdp.c) in network namespaces this test creates and removes:

  [lan host] eth0 10.77.1.2 --- lan0 10.77.1.1 [router: upnpt_harness] wan0 10.77.2.1 --- eth0 10.77.2.2 [wan host]

SSDP runs on lan0 only. Real M-SEARCHes (Python sockets and miniupnpc's upnpc) from the LAN
host get answers; the same searches from the WAN host get none.
usage: test_ssdp.py HARNESS SSDP_CLIENT
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upnpt import Harness, check, finish  # noqa: E402

exe, client = sys.argv[1], sys.argv[2]
tag = "upt%d" % (os.getpid() % 100000)
R, L, W, M = tag + "r", tag + "l", tag + "w", tag + "m"
ROOT = "uuid:11111111-2222-3333-4444-555555555555"
WCD = "uuid:11111111-2222-3333-4444-555555555557"
IGD1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
IGD2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
WIP1 = "urn:schemas-upnp-org:service:WANIPConnection:1"
WIP2 = "urn:schemas-upnp-org:service:WANIPConnection:2"
GROUP = "239.255.255.250:1900"


def sh(*args, check_rc=True):
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check_rc and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stdout.decode()))
    return r.stdout.decode()


def setup():
    for n in (R, L, W, M):
        sh("ip", "netns", "add", n)
        sh("ip", "-n", n, "link", "set", "lo", "up")
    sh("ip", "link", "add", "lan0", "netns", R, "type", "veth", "peer", "name", "eth0", "netns", L)
    sh("ip", "link", "add", "wan0", "netns", R, "type", "veth", "peer", "name", "eth0", "netns", W)
    sh("ip", "link", "add", "lan1", "netns", R, "type", "veth", "peer", "name", "eth0", "netns", M)
    for ns, dev, addr in ((R, "lan0", "10.77.1.1/24"), (R, "wan0", "10.77.2.1/24"),
                          (L, "eth0", "10.77.1.2/24"), (W, "eth0", "10.77.2.2/24"),
                          (R, "lan1", "10.77.3.1/24"), (M, "eth0", "10.77.3.2/24")):
        sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
    # Every namespace needs a multicast route; the router's goes to the WAN so that the
    # LAN restriction is ssdp.c's doing, not the routing table's.
    sh("ip", "-n", L, "route", "add", "224.0.0.0/4", "dev", "eth0")
    sh("ip", "-n", W, "route", "add", "224.0.0.0/4", "dev", "eth0")
    sh("ip", "-n", M, "route", "add", "224.0.0.0/4", "dev", "eth0")
    sh("ip", "-n", M, "route", "add", "default", "via", "10.77.3.1")
    sh("ip", "-n", R, "route", "add", "224.0.0.0/4", "dev", "wan0")


def teardown():
    for n in (R, L, W, M):
        sh("ip", "netns", "del", n, check_rc=False)


def run_client(ns, *args, timeout=30):
    out = sh("ip", "netns", "exec", ns, "/usr/bin/python3", client, *[str(a) for a in args])
    res = []
    for ln in out.splitlines():
        try:
            res.append(json.loads(ln))
        except ValueError:
            pass
    return res


def msearch(st, mx="1", man='"ssdp:discover"', extra=""):
    m = "M-SEARCH * HTTP/1.1\\r\\nHOST: 239.255.255.250:1900\\r\\n"
    if man is not None:
        m += "MAN: %s\\r\\n" % man
    if mx is not None:
        m += "MX: %s\\r\\n" % mx
    return m + "ST: %s\\r\\n%s\\r\\n" % (st, extra)


def search(ns, dest, msg, seconds=1.8):
    return [r for r in run_client(ns, "search", dest, seconds, msg) if "start" in r]


def listen_start(ns, addr, seconds):
    p = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", client, "listen", addr,
                          str(seconds)], stdout=subprocess.PIPE)
    p.stdout.readline()  # {"ready": true}
    return p


def listen_result(p):
    out, _ = p.communicate(timeout=60)
    return [json.loads(ln) for ln in out.decode().splitlines() if ln.strip()]


setup()
h = None
try:
    # --- start-up NOTIFY ssdp:alive, twice for every target, on the LAN only
    lst = listen_start(L, "10.77.1.2", 2.5)
    lst_w = listen_start(W, "10.77.2.2", 2.5)
    h = Harness(exe, "--port", 0, "--ssdp-if", "lan0", "--location-host", "10.77.1.1",
                netns=R)
    loc = "http://10.77.1.1:%d/rootDesc.xml" % h.port
    notes = listen_result(lst)
    wan_notes = listen_result(lst_w)
    alive = [n for n in notes if n["headers"].get("nts") == "ssdp:alive"]
    nts = {}
    for n in alive:
        nts[n["headers"].get("nt")] = nts.get(n["headers"].get("nt"), 0) + 1
    check(len(nts) == 10, "ssdp:alive for all 10 targets (got %d)" % len(nts))
    check(all(c >= 2 for c in nts.values()), "each announced at least twice")
    a = next((n for n in alive if n["headers"].get("nt") == "upnp:rootdevice"), None)
    if check(a is not None, "rootdevice announced"):
        hd = a["headers"]
        check(a["start"] == "NOTIFY * HTTP/1.1", "NOTIFY start line")
        check(hd.get("host") == GROUP, "HOST: 239.255.255.250:1900")
        check(hd.get("cache-control") == "max-age=1800", "CACHE-CONTROL")
        check(hd.get("location") == loc, "LOCATION")
        check(hd.get("usn") == ROOT + "::upnp:rootdevice", "USN of rootdevice")
        check(hd.get("bootid.upnp.org") == "7" and hd.get("configid.upnp.org") == "3",
              "BOOTID.UPNP.ORG / CONFIGID.UPNP.ORG")
        check("UPnP/1.1" in hd.get("server", ""), "SERVER")
    w = next((n for n in alive if n["headers"].get("nt") == WIP1), None)
    check(w is not None and w["headers"].get("usn") == WCD + "::" + WIP1,
          "embedded service USN uses its device's UUID")
    check(len(wan_notes) == 0, "no NOTIFY on the WAN (%d seen)" % len(wan_notes))

    # --- multicast M-SEARCH from the LAN
    rs = search(L, GROUP, msearch("ssdp:all", mx="1"))
    check(len(rs) == 10, "ssdp:all -> 10 replies (got %d)" % len(rs))
    check(all(r["from"] == "10.77.1.1" for r in rs), "replies come from the LAN address")
    if rs:
        hd = rs[0]["headers"]
        check(rs[0]["start"] == "HTTP/1.1 200 OK", "reply start line")
        for k in ("cache-control", "date", "ext", "location", "server", "st", "usn",
                  "bootid.upnp.org", "configid.upnp.org"):
            check(k in hd, "reply has %s" % k.upper())
        check(hd.get("location") == loc, "reply LOCATION")
    check(all(r["t"] < 1.5 for r in rs), "replies within MX (1 s)")

    rs = search(L, GROUP, msearch(IGD1))
    check(len(rs) == 1 and rs[0]["headers"].get("st") == IGD1 and
          rs[0]["headers"].get("usn") == ROOT + "::" + IGD1, "search IGD:1 -> one reply")
    rs = search(L, GROUP, msearch(WIP1))
    check(len(rs) == 1 and rs[0]["headers"].get("usn") == WCD + "::" + WIP1,
          "search WANIPConnection:1 -> its device's USN")
    rs = search(L, GROUP, msearch(WCD))
    check(len(rs) == 1 and rs[0]["headers"].get("usn") == WCD, "search uuid: -> one reply")
    rs = search(L, GROUP, "m-search * HTTP/1.1\\r\\nhost:239.255.255.250:1900\\r\\n"
                "man:\\\"ssdp:discover\\\"\\r\\nmx:1\\r\\nst:upnp:rootdevice\\r\\n"
                "X-Whatever: yes\\r\\nUSER-AGENT: test\\r\\n\\r\\n")
    check(len(rs) == 1 and rs[0]["headers"].get("usn") == ROOT + "::upnp:rootdevice",
          "lower-case headers without spaces, extra headers -> reply")
    # MX 3: all answers to one search wait one random delay in [0, 3 s); a draw under 50 ms
    # (1 in 60) would fail a single try, so up to three searches; 5 s leaves room for load.
    spread = []
    for _ in range(3):
        rs = search(L, GROUP, msearch("ssdp:all", mx="3"), seconds=5)
        spread.append((len(rs), max((r["t"] for r in rs), default=0.0)))
        if len(rs) == 10 and spread[-1][1] > 0.05:
            break
    check(any(n == 10 and t > 0.05 for n, t in spread),
          "MX 3: replies spread over the delay (count, latest: %r)" % spread)

    for what, msg in (("no MX", msearch("ssdp:all", mx=None)),
                      ("MAN without quotes", msearch("ssdp:all", man="ssdp:discover")),
                      ("no MAN", msearch("ssdp:all", man=None)),
                      ("unknown ST", msearch("urn:schemas-upnp-org:device:Printer:1")),
                      ("higher version than ours", msearch(WIP2)),
                      ("garbage", "HELLO\\r\\n\\r\\n"),
                      ("NOTIFY", "NOTIFY * HTTP/1.1\\r\\nNT: upnp:rootdevice\\r\\n\\r\\n")):
        rs = search(L, GROUP, msg, seconds=1.2)
        check(len(rs) == 0, "multicast %s -> no reply (got %d)" % (what, len(rs)))

    # --- unicast M-SEARCH: no MX needed, answered at once
    rs = search(L, "10.77.1.1:1900", msearch("upnp:rootdevice", mx=None,
                                            man="ssdp:discover"), seconds=1.0)
    check(len(rs) == 1 and rs[0]["t"] < 0.5, "unicast search without MX answered at once")

    # --- the WAN side gets nothing, multicast or unicast; another SSDP listener on the
    # router joins the group on wan0 meanwhile (as a second UPnP stack might)
    other = listen_start(R, "10.77.2.1", 4)
    rs = search(W, GROUP, msearch("ssdp:all"), seconds=1.5)
    check(len(rs) == 0, "WAN multicast M-SEARCH -> no reply (got %d)" % len(rs))
    rs = search(W, "10.77.2.1:1900", msearch("ssdp:all"), seconds=1.5)
    check(len(rs) == 0, "WAN unicast M-SEARCH -> no reply (got %d)" % len(rs))
    seen = [n for n in listen_result(other) if n["start"].startswith("M-SEARCH")]
    check(len(seen) >= 1, "the WAN search did reach the router (%d seen)" % len(seen))

    # --- a real control point: miniupnpc's upnpc discovers and fetches the description
    if shutil.which("upnpc"):
        out = sh("ip", "netns", "exec", L, "timeout", "20", "upnpc", "-l", check_rc=False)
        check("desc: " + loc in out, "upnpc -l discovers " + loc)
        check("Found" in out and "IGD" in out, "upnpc read the description")
    else:
        check(False, "upnpc not installed")

    # --- rate limit: a burst of 30 unicast ssdp:all (300 answers) is cut short
    rs = [r for r in run_client(L, "burst", "10.77.1.1:1900", 30, 1.5,
                                msearch("ssdp:all", mx=None)) if "start" in r]
    check(0 < len(rs) <= 60, "burst of 30 ssdp:all: replies capped (%d of 300)" % len(rs))

    # --- byebye on shutdown
    lst = listen_start(L, "10.77.1.2", 1.5)
    rc = h.stop()
    check(rc == 0, "harness exited cleanly")
    bye = [n for n in listen_result(lst) if n["headers"].get("nts") == "ssdp:byebye"]
    check(len({b["headers"].get("usn") for b in bye}) == 10, "ssdp:byebye for all 10 on exit")

    # --- IGD:2 answers searches for the :1 types, echoing the version asked for
    h = Harness(exe, "--port", 0, "--ssdp-if", "lan0", "--location-host", "10.77.1.1",
                "--igd", 2, netns=R)
    rs = search(L, GROUP, msearch(IGD1))
    check(len(rs) == 1 and rs[0]["headers"].get("st") == IGD1 and
          rs[0]["headers"].get("usn") == ROOT + "::" + IGD1,
          "IGD:2 answers an IGD:1 search with ST/USN :1")
    rs = search(L, GROUP, msearch(IGD2))
    check(len(rs) == 1 and rs[0]["headers"].get("st") == IGD2, "IGD:2 search -> :2")
    rs = search(L, GROUP, msearch(WIP1))
    check(len(rs) == 1 and rs[0]["headers"].get("usn") == WCD + "::" + WIP1,
          "WANIPConnection:2 answers a :1 search")
    rs = search(L, GROUP, msearch("urn:schemas-upnp-org:service:WANIPConnection:3"))
    check(len(rs) == 0, "no answer for :3")
    check(h.alive(), "harness alive")
    h.stop()

    # --- two LAN interfaces: each segment is told the address of its own interface
    lst_m = listen_start(M, "10.77.3.2", 3.2)
    h = Harness(exe, "--port", 0, "--ssdp-if", "lan0", "--ssdp-if", "lan1",
                "--location-host", "10.77.1.1", "--max-age", 6, netns=R)
    notes_m = [n for n in listen_result(lst_m) if n["headers"].get("nts") == "ssdp:alive"]
    roots = [n for n in notes_m if n["headers"].get("nt") == "upnp:rootdevice"]
    check(len(roots) >= 3 and roots[-1]["t"] - roots[0]["t"] > 1.2,
          "max-age 6: re-announced within max-age/2 (%d rounds in 3 s)" % len(roots))
    check(all(n["headers"].get("cache-control") == "max-age=6" for n in notes_m),
          "CACHE-CONTROL follows max_age")
    loc0 = "http://10.77.1.1:%d/rootDesc.xml" % h.port
    loc1 = "http://10.77.3.1:%d/rootDesc.xml" % h.port
    check(len(notes_m) >= 20 and all(n["headers"].get("location") == loc1 for n in notes_m),
          "second LAN gets its own ssdp:alive with LOCATION on lan1's address")
    rs = search(L, GROUP, msearch(IGD1))
    check(len(rs) == 1 and rs[0]["headers"].get("location") == loc0, "lan0 search -> lan0 URL")
    rs = search(M, GROUP, msearch(IGD1))
    check(len(rs) == 1 and rs[0]["headers"].get("location") == loc1 and
          rs[0]["from"] == "10.77.3.1", "lan1 search -> lan1 URL, from lan1")
    out = sh("ip", "netns", "exec", M, "timeout", "20", "upnpc", "-l", check_rc=False)
    check("desc: " + loc1 in out, "upnpc on the second LAN discovers " + loc1)
    rs = search(W, "10.77.2.1:1900", msearch("ssdp:all"), seconds=1.0)
    check(len(rs) == 0, "WAN still silent with two LAN interfaces")
    h.stop()

    # --- HTTP bound to one address (as iwfd does): LOCATION as configured on both LANs,
    # and reachable from the second one through the router
    h = Harness(exe, "--port", 0, "--bind", "10.77.1.1", "--ssdp-if", "lan0",
                "--ssdp-if", "lan1", "--location-host", "10.77.1.1", netns=R)
    loc0 = "http://10.77.1.1:%d/rootDesc.xml" % h.port
    rs = search(M, GROUP, msearch(IGD1))
    check(len(rs) == 1 and rs[0]["headers"].get("location") == loc0 and
          rs[0]["from"] == "10.77.3.1", "bound HTTP: lan1 search -> configured URL, from lan1")
    out = sh("ip", "netns", "exec", M, "timeout", "20", "upnpc", "-l", check_rc=False)
    check("desc: " + loc0 in out and "Found" in out,
          "upnpc on the second LAN fetches the configured URL")
finally:
    if h is not None:
        h.stop()
    teardown()
check(not any(n in sh("ip", "netns", "list") for n in (R, L, W, M)), "namespaces removed")
finish()

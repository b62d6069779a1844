#!/usr/bin/python3
"""iwfd benchmarks side by side with Debian's miniupnpd (issue 7).  Run through bench/run.

One topology (tests/e2e/harness.py, reused read-only): LAN host "host1" runs the load
generator (wrk + bench/soap.lua, bench/cp.py), the router namespace runs the two IGDs under
test at the same time on different ports:

  iwfd       192.168.77.1:5000  IGD:2, PCP to pcpsim in the carrier (10.99.0.1:5352)
  miniupnpd  192.168.77.1:5001  IGD:2, nftables backend in the router namespace (its normal
                                IGD mode: it owns the NAT itself)

and, for the PCP end-to-end workload only, a second iwfd (:5002) whose PCP server is Debian's
miniupnpd in the carrier (10.99.0.1:5351, the e2e harness's carrier).  The servers are pinned to
CPU 0, the load generator and the PCP simulator to CPU 1.  Each timed workload runs ROUNDS
times, alternating which daemon goes first; the table shows medians over the rounds.

Nothing here fails on timing: the exit status is 0 when every workload ran, 1 when the harness
broke (a daemon died, a check answer was wrong).
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "tests", "pcpsim"))
import harness  # noqa: E402  (read-only reuse)
import client as simclient  # noqa: E402

PY = "/usr/bin/python3"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
LUA = os.path.join(HERE, "soap.lua")
CP = os.path.join(HERE, "cp.py")
PCPSIM = os.path.join(ROOT, "tests", "pcpsim", "pcpsim.py")
SERVER_CPU, LOAD_CPU = "0", "1"
IWFD_PORT, MUPNP_PORT, IWFD2_PORT = 5000, 5001, 5002
SIM_PORT = 5352
BASE_PORT = 20000         # mappings for the read workloads: 20000 .. 20000+N-1 (TCP)
PAIR_PORT = 40000         # the add/delete pair workload


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# ------------------------------------------------------------------ /proc readings

def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def kb(pid, key):
    return int(proc_status(pid)[key].split()[0])


def cpu_ns(pid):
    """(ns on CPU, times scheduled in) from /proc/PID/schedstat."""
    with open(f"/proc/{pid}/schedstat") as f:
        a = f.read().split()
    return int(a[0]), int(a[2])


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])   # utime + stime (clock ticks)


def ctxt(pid):
    s = proc_status(pid)
    return int(s["voluntary_ctxt_switches"]), int(s["nonvoluntary_ctxt_switches"])


# ------------------------------------------------------------------ pcap (two single-interface captures)

def read_pcap(path):
    """[(t, payload-bearing packet dict)] of an Ethernet pcap (µs or ns timestamps)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic in (0xa1b2c3d4, 0xa1b23c4d):
        end = "<"
    else:
        end = ">"
        magic = struct.unpack_from(">I", data, 0)[0]
    scale = 1e-9 if magic == 0xa1b23c4d else 1e-6
    off, out = 24, []
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from(end + "IIII", data, off)
        off += 16
        pkt = data[off:off + incl]
        off += incl
        t = sec + frac * scale
        if len(pkt) < 34 or pkt[12:14] != b"\x08\x00":
            continue
        ip = pkt[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        proto = ip[9]
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        l4 = ip[ihl:total]
        if proto == 6 and len(l4) >= 20:
            sport, dport = struct.unpack_from("!HH", l4, 0)
            doff = (l4[12] >> 4) * 4
            plen = len(l4) - doff
            out.append({"t": t, "proto": "tcp", "src": src, "dst": dst, "sport": sport,
                        "dport": dport, "len": plen, "flags": l4[13]})
        elif proto == 17 and len(l4) >= 8:
            sport, dport = struct.unpack_from("!HH", l4, 0)
            out.append({"t": t, "proto": "udp", "src": src, "dst": dst, "sport": sport,
                        "dport": dport, "len": len(l4) - 8, "r": (l4[9] >> 7) if len(l4) > 9 else 0})
    return out


def transactions(pkts, http_port, pcp_port):
    """Split a merged capture into HTTP transactions as the router saw them.

    For each: t_req (last request byte in), t_resp (first response byte out), and if PCP was
    exchanged in between, the PCP request out / response in times."""
    pkts = sorted(pkts, key=lambda p: p["t"])
    out, cur = [], None
    for p in pkts:
        if p["proto"] == "tcp" and p["len"] > 0:
            if p["dport"] == http_port:
                if cur is None or cur.get("t_resp") is not None:
                    cur = {"t_req": p["t"], "pcp": []}
                    out.append(cur)
                else:
                    cur["t_req"] = p["t"]
            elif p["sport"] == http_port and cur is not None and cur.get("t_resp") is None:
                cur["t_resp"] = p["t"]
        elif p["proto"] == "udp" and cur is not None and cur.get("t_resp") is None:
            if p["dport"] == pcp_port:
                cur["pcp"].append(("req", p["t"]))
            elif p["sport"] == pcp_port:
                cur["pcp"].append(("resp", p["t"]))
    done = []
    for c in out:
        if c.get("t_resp") is None:
            continue
        d = {"total_us": (c["t_resp"] - c["t_req"]) * 1e6, "pcp_msgs": len(c["pcp"])}
        reqs = [t for k, t in c["pcp"] if k == "req"]
        resps = [t for k, t in c["pcp"] if k == "resp"]
        if reqs and resps:
            d["pcp_rtt_us"] = (resps[-1] - reqs[0]) * 1e6
            d["before_pcp_us"] = (reqs[0] - c["t_req"]) * 1e6
            d["after_pcp_us"] = (c["t_resp"] - resps[-1]) * 1e6
            d["added_us"] = d["total_us"] - d["pcp_rtt_us"]
        done.append(d)
    return done


# ------------------------------------------------------------------ statistics

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def pct(xs, q):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(q / 100.0 * (len(xs) - 1)))))
    return xs[k]


def fmt(x, nd=1):
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if isinstance(x, int):
        return f"{x:,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def ratio(a, b):
    if a is None or b is None or isinstance(b, str) or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


# ------------------------------------------------------------------ the bench

class Bench:
    def __init__(self, args):
        self.a = args
        self.quick = args.quick
        self.rounds = args.rounds or (1 if self.quick else 5)
        self.dur = args.duration or (1 if self.quick else 5)
        self.n_read = 100 if self.quick else 1000
        self.n_big = 300 if self.quick else 10000
        self.idle_s = args.idle or (5 if self.quick else 60)
        self.pairs = 20 if self.quick else 300
        self.fill_budget = args.fill_budget or (5 if self.quick else 180)
        self.count = {"iwfd": 0, "miniupnpd": 0}
        self.exe = os.path.abspath(args.iwfd)
        self.res = {"meta": {}, "reads": {}, "pairs": {}, "memory": {}, "binary": {}, "pcp_per_read": {},
                    "restart": {}, "idle": {}, "notes": []}
        self.topo = None
        self.daemons = {}

    # -- helpers
    def ns(self, role, argv, timeout=120, check=True, input=None):
        p = self.topo.run(role, argv, timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise BenchError(f"{role}: {' '.join(map(str, argv))} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def cp(self, job, timeout=3600):
        p = self.ns("host1", ["taskset", "-c", LOAD_CPU, PY, CP, json.dumps(job)], timeout=timeout)
        return json.loads(p.stdout.strip().splitlines()[-1])

    def note(self, text):
        log("note: " + text)
        self.res["notes"].append(text)

    def http_get(self, url):
        p = self.ns("host1", ["curl", "-sS", "--max-time", "10", url])
        return p.stdout

    def soap_check(self, d, action, args, expect=None):
        st = d["st"]
        body = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
                's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
                f'<u:{action} xmlns:u="{st}">{args}</u:{action}></s:Body></s:Envelope>')
        p = self.ns("host1", ["curl", "-sS", "--max-time", "10", "-H", 'Content-Type: text/xml',
                              "-H", f'SOAPAction: "{st}#{action}"', "--data-binary", body,
                              d["ctrl"]])
        if "UPnPError" in p.stdout or (expect and not re.search(expect, p.stdout)):
            raise BenchError(f"{d['name']} {action}: unexpected answer:\n{p.stdout[:2000]}")
        return p.stdout

    # -- set-up
    def describe_machine(self):
        m = self.res["meta"]
        m["date_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        m["kernel"] = platform.release()
        with open("/proc/cpuinfo") as f:
            models = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        m["cpu"] = f"{len(models)} x {models[0] if models else '?'}"
        with open("/proc/meminfo") as f:
            m["mem"] = f.readline().split(":", 1)[1].strip()
        m["commit"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()
        m["wrk"] = subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout.split("\n")[0]
        m["miniupnpd"] = subprocess.run([harness.MINIUPNPD, "--version"], capture_output=True,
                                        text=True).stdout.split("\n")[0]
        m["rounds"], m["duration_s"], m["connections"] = self.rounds, self.dur, self.a.connections
        m["quick"] = self.quick

    def start_sim(self):
        w = self.topo.workdir
        self.sim_sock = os.path.join(w, "sim.sock")
        # big receive buffers in the carrier so a 10,000-message burst is not dropped by the
        # kernel in front of a Python simulator (per-namespace sysctl)
        self.ns("carrier", ["sysctl", "-q", "-w", "net.core.rmem_default=33554432"], check=False)
        self.ns("carrier", ["sysctl", "-q", "-w", "net.core.rmem_max=33554432"], check=False)
        settings = {"quota": 0, "log_limit": 400000, "seed": 7}
        self.sim = self.topo.spawn("carrier", "pcpsim", [
            "taskset", "-c", LOAD_CPU, PY, PCPSIM, "--listen", f"{self.topo.addr['carrier']}:{SIM_PORT}",
            "--external-ip", "198.51.100.1", "--control", self.sim_sock, "--set", json.dumps(settings)])
        deadline = time.monotonic() + 15
        while True:
            if os.path.exists(self.sim_sock):
                try:
                    self.simctl = simclient.PcpSimClient(self.sim_sock)
                    self.simctl.ping()
                    break
                except OSError:
                    pass
            if not self.sim.running() or time.monotonic() > deadline:
                raise BenchError("pcpsim did not start:\n" + self.sim.output())
            time.sleep(0.05)

    def iwfd_argv(self, port, server, state, cfg):
        t = self.topo
        return ["taskset", "-c", SERVER_CPU, self.exe, "--foreground", "--lan-if",
                t.iface["lan_bridge"], "--lan-addr", t.addr["router_lan"], "--http-port", str(port),
                "--pcp-server", server, "--state", state, "--igd", "2", "--log-level", "info",
                "--config", cfg]

    def start_iwfd(self, name="iwfd", port=IWFD_PORT, server=None, fresh=True):
        w = self.topo.workdir
        cfg = os.path.join(w, f"{name}.json")
        with open(cfg, "w") as f:
            json.dump({"pcp": {"service_wait_s": 0, "replay_rate": 0, "listen_announce": False}}, f)
        state = os.path.join(w, f"{name}-state.json")
        if fresh and os.path.exists(state):
            os.unlink(state)
        server = server or f"{self.topo.addr['carrier']}:{SIM_PORT}"
        d = self.daemons.get(name) or {"name": name, "runs": 0}
        d["runs"] += 1
        d["proc"] = self.topo.spawn("router", f"{name}.{d['runs']}", self.iwfd_argv(port, server, state, cfg))
        d["t_spawn"] = time.monotonic()
        url = d["proc"].wait_for(harness.READY_RE, 30).group(1)
        d["t_ready"] = time.monotonic()
        d.update(pid=d["proc"].pid, url=url, state=state, port=port)
        self.daemons[name] = d
        self.find_service(d)
        return d

    def start_miniupnpd(self, fresh=True):
        t = self.topo
        d = {"name": "miniupnpd", "port": MUPNP_PORT, "runs": self.daemons.get("miniupnpd", {}).get("runs", 0) + 1}
        mdir = os.path.join(t.workdir, "mupnp-igd")
        os.makedirs(mdir, exist_ok=True)
        if fresh:
            self.ns("router", [harness.NFT, "-f", "-"], input=harness.NFT_SKELETON)
        conf = os.path.join(mdir, "miniupnpd.conf")
        pidf = os.path.join(mdir, "miniupnpd.pid")
        with open(conf, "w") as f:
            f.write(f"""\
# bench: miniupnpd as the router's own IGD (its normal mode), nftables backend
ext_ifname={t.iface['router_wan']}
# the WAN address is private (10.99.0.2); miniupnpd disables port forwarding on reserved
# addresses unless told a public one
ext_ip={t.addr['ext']}
listening_ip={t.iface['lan_bridge']}
http_port={MUPNP_PORT}
enable_upnp=yes
enable_natpmp=no
secure_mode=yes
system_uptime=no
ipv6_disable=yes
clean_ruleset_interval=0
force_igd_desc_v1=no
uuid=3f6c1d2e-7a8b-4c9d-8e0f-123456789abc
upnp_table_name={harness.NFT_TABLE}
upnp_nat_table_name={harness.NFT_TABLE}
upnp_forward_chain={harness.NFT_FORWARD_CHAIN}
upnp_nat_chain={harness.NFT_NAT_CHAIN}
upnp_nat_postrouting_chain={harness.NFT_POSTNAT_CHAIN}
allow 1024-65535 {t.lan_net} 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
""")
        # a pid file naming a dead (zombie) miniupnpd would make it refuse to start
        if os.path.exists(pidf):
            os.unlink(pidf)
        # daemon mode (no -d): logs at its default level to syslog, like on a router
        self.ns("router", ["taskset", "-c", SERVER_CPU, harness.MINIUPNPD, "-f", conf, "-P", pidf])
        deadline = time.monotonic() + 10
        while not (os.path.exists(pidf) and open(pidf).read().strip()):
            if time.monotonic() > deadline:
                raise BenchError("miniupnpd wrote no pid file")
            time.sleep(0.05)
        pid = int(open(pidf).read().strip())
        harness.CLEANUP.push(lambda: self._kill_pid(pid), f"miniupnpd IGD ({pid})")
        d.update(pid=pid, url=f"http://{t.addr['router_lan']}:{MUPNP_PORT}/rootDesc.xml")
        deadline = time.monotonic() + 10
        while True:
            try:
                self.find_service(d)
                break
            except BenchError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.daemons["miniupnpd"] = d
        return d

    @staticmethod
    def _kill_pid(pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(50):
            if not os.path.exists(f"/proc/{pid}"):
                return
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def find_service(self, d):
        p = self.topo.run("host1", ["curl", "-sS", "--max-time", "3", d["url"]])
        xml = p.stdout
        m = re.search(r"<serviceType>(urn:schemas-upnp-org:service:WANIPConnection:\d)</serviceType>"
                      r".*?<controlURL>([^<]+)</controlURL>", xml, re.S)
        if not m:
            raise BenchError(f"{d['name']}: no WANIPConnection in {d['url']}:\n{xml[:500]}{p.stderr}")
        base = re.match(r"(http://[^/]+)", d["url"]).group(1)
        d["st"], d["ctrl"] = m.group(1), base + m.group(2)
        d["rootdesc_bytes"] = len(xml.encode())

    def alive(self, d):
        if not os.path.exists(f"/proc/{d['pid']}"):
            raise BenchError(f"{d['name']} (pid {d['pid']}) died")

    def fill(self, d, count, deadline_s=None):
        """Add `count` more mappings (sequentially); returns (seconds, added)."""
        start = BASE_PORT + self.count[d["name"]]
        job = {"op": "fill", "url": d["ctrl"], "st": d["st"], "client": self.topo.addr["host1"],
               "start": start, "count": count}
        if deadline_s:
            job["deadline_s"] = deadline_s
        r = self.cp(job)
        if r["errors"]:
            raise BenchError(f"{d['name']}: fill {start}+{count}: {r['errors']} errors, first: {r['first_error']}")
        self.count[d["name"]] += r["done"]
        log(f"{d['name']}: {r['done']} mappings added in {r['seconds']:.1f} s ({r['done'] / r['seconds']:.0f}/s, "
            f"{r['connections']} connections); {self.count[d['name']]} in total")
        self.res["meta"].setdefault("fills", []).append(
            {"daemon": d["name"], "from": start - BASE_PORT, "added": r["done"], "seconds": r["seconds"]})
        return r["seconds"], r["done"]

    # -- workload 1: reads with wrk
    def wrk(self, d, kind, close, arg):
        url = d["url"] if kind == "get" else d["ctrl"]
        argv = ["taskset", "-c", LOAD_CPU, WRK, "-t1", f"-c{self.a.connections}", f"-d{self.dur}s",
                "--timeout", "5s", "-s", LUA, url, "--", kind, close, d.get("st", ""), str(arg)]
        p = self.ns("host1", argv, timeout=self.dur + 60)
        m = re.search(r"BENCHJSON (\{.*\})", p.stdout)
        if not m:
            raise BenchError(f"wrk gave no result:\n{p.stdout}\n{p.stderr}")
        r = json.loads(m.group(1))
        r["rps"] = r["requests"] / r["seconds"] if r["seconds"] else 0
        r["errors"] = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_status"] + r["err_timeout"]
        return r

    def read_workloads(self, n=None):
        n = n or self.n_read
        if n != self.n_read:
            return [(f"GetListOfPortMappings ({n} entries)", "list", n)]
        wl = [("GET rootDesc.xml", "get", ""),
              ("GetExternalIPAddress", "extip", ""),
              (f"GetSpecificPortMappingEntry", "specific", BASE_PORT + n // 2),
              (f"GetGenericPortMappingEntry (index over {n})", "generic", n),
              (f"GetListOfPortMappings ({n} entries)", "list", n)]
        return wl

    def check_list(self, d, n):
        """GetListOfPortMappings once; False (and a note) when it kills the daemon."""
        try:
            out = self.soap_check(d, "GetListOfPortMappings",
                                  "<NewStartPort>1</NewStartPort><NewEndPort>65535</NewEndPort>"
                                  f"<NewProtocol>TCP</NewProtocol><NewManage>0</NewManage>"
                                  f"<NewNumberOfPorts>{n}</NewNumberOfPorts>", r"NewPortListing")
        except BenchError as e:
            if d["name"] != "miniupnpd" or self.mupnp_alive():
                raise
            self.note(f"miniupnpd died on GetListOfPortMappings with {self.count['miniupnpd']:,} mappings "
                      f"(empty reply, process gone; in the foreground it prints 'realloc(): invalid next "
                      f"size' and aborts: heap corruption). Restarted (its mappings live in nftables and "
                      f"survive); its GetListOfPortMappings at this size is not measured")
            self.start_miniupnpd(fresh=False)
            self.daemons["miniupnpd"]["list_broken"] = True
            return None
        return out

    def mupnp_alive(self):
        pid = self.daemons["miniupnpd"]["pid"]
        try:
            with open(f"/proc/{pid}/status") as f:
                return not any(l.startswith("State:") and "Z" in l for l in f)
        except OSError:
            return False

    def check_reads(self, d):
        n = self.n_read
        self.soap_check(d, "GetExternalIPAddress", "", r"NewExternalIPAddress>\d")
        self.soap_check(d, "GetSpecificPortMappingEntry",
                        f"<NewRemoteHost></NewRemoteHost><NewExternalPort>{BASE_PORT + n // 2}</NewExternalPort>"
                        "<NewProtocol>TCP</NewProtocol>", r"NewInternalClient>192\.168\.77\.11<")
        self.soap_check(d, "GetGenericPortMappingEntry",
                        f"<NewPortMappingIndex>{n - 1}</NewPortMappingIndex>", r"NewExternalPort>\d+<")
        out = self.check_list(d, n)
        if out is None:
            d = self.daemons[d["name"]]
            self.check_reads_nolist(d)
            return
        entries = len(re.findall(r"PortMappingEntry&gt;|PortMappingEntry>", out)) // 2
        d["list_entries"] = entries
        d["list_bytes"] = len(out.encode())
        self.res["meta"].setdefault("list_response", {})[d["name"]] = {"entries": entries,
                                                                      "bytes": d["list_bytes"]}
        if entries != n:
            self.note(f"{d['name']}: GetListOfPortMappings returned {entries} entries of {n} "
                      f"({len(out)} bytes)")
        self.check_reads_nolist(d)

    def check_reads_nolist(self, d):
        # keep-alive behaviour
        p = self.ns("host1", ["curl", "-sS", "-o", "/dev/null", "-D", "-", "--max-time", "5", d["url"]])
        d["connection_header"] = (re.search(r"(?im)^connection:\s*(\S+)", p.stdout) or [None, "(none)"])[1]
        self.res["meta"].setdefault("connection_header", {})[d["name"]] = d["connection_header"]

    def run_reads(self, n=None):
        names = ["iwfd", "miniupnpd"]
        sim_before = len(self.simctl.log(0))
        reads_iwfd = 0
        for title, kind, arg in self.read_workloads(n):
            for close in ("keep", "close"):
                key = f"{title} | {'keep-alive' if close == 'keep' else 'new conn'}"
                samples = {n: [] for n in names}
                for r in range(self.rounds):
                    order = names if r % 2 == 0 else names[::-1]
                    for name in order:
                        d = self.daemons[name]
                        if kind == "list" and d.get("list_broken"):
                            continue
                        res = self.wrk(d, kind, close, arg)
                        if name == "miniupnpd" and not self.mupnp_alive():
                            self.note(f"miniupnpd died during '{title}' ({close}); restarted, that "
                                      f"workload is not measured for it")
                            self.start_miniupnpd(fresh=False)
                            self.daemons["miniupnpd"]["list_broken"] = True
                            continue
                        self.alive(d)
                        samples[name].append(res)
                        if name == "iwfd" and kind != "get":
                            reads_iwfd += res["requests"]
                        log(f"{key} {name}: {res['rps']:.0f}/s p50 {res['p50_us']} µs p99 "
                            f"{res['p99_us']} µs errors {res['errors']}")
                self.res["reads"][key] = samples
        sim_after = len(self.simctl.log(0))
        pr = self.res["pcp_per_read"]
        pr["soap_reads"] = pr.get("soap_reads", 0) + reads_iwfd
        pr["pcp_messages"] = pr.get("pcp_messages", 0) + sim_after - sim_before
        pr["per_read"] = pr["pcp_messages"] / max(1, pr["soap_reads"])

    # -- workload 2: add/delete pairs
    def capture(self, iface, name, bpf):
        path = os.path.join(self.topo.workdir, f"{name}.pcap")
        proc = self.topo.spawn("router", name, ["taskset", "-c", LOAD_CPU, harness.TCPDUMP, "-n", "-U",
                                                "--immediate-mode", "--time-stamp-precision=nano", "-s", "200",
                                                "-i", iface, "-w", path] + bpf.split())
        proc.wait_for(r"listening on", 10)
        return proc, path

    def run_pairs(self, d, label, pcp_port):
        t = self.topo
        caps = [self.capture(t.iface["lan_bridge"], f"cap-{label}-lan", f"tcp port {d['port']}"),
                self.capture(t.iface["router_wan"], f"cap-{label}-wan", f"udp port {pcp_port}")]
        r = self.cp({"op": "pairs", "url": d["ctrl"], "st": d["st"], "client": t.addr["host1"],
                     "port": PAIR_PORT, "count": self.pairs})
        time.sleep(0.3)
        pkts = []
        for proc, path in caps:
            proc.stop(signal.SIGINT)
            pkts += read_pcap(path)
        tx = transactions(pkts, d["port"], pcp_port)
        self.alive(d)
        out = {"client_add_ms": r["add_ms"], "client_del_ms": r["del_ms"], "errors": r["errors"],
               "first_error": r["first_error"], "connections": r["connections"], "server": tx}
        if r["errors"]:
            self.note(f"pairs {label}: {r['errors']} errors, first: {r['first_error']}")
        self.res["pairs"][label] = out
        add = [x for x in tx[0::2] if "added_us" in x]
        log(f"pairs {label}: Add server p50 {fmt(med([x['total_us'] for x in tx[0::2]]), 0)} µs, PCP RTT "
            f"{fmt(med([x['pcp_rtt_us'] for x in add]), 0)} µs, added {fmt(med([x['added_us'] for x in add]), 0)} µs")

    # -- workload 3: memory
    def mem(self, label):
        for name in ("iwfd", "miniupnpd"):
            d = self.daemons[name]
            self.alive(d)
            st = proc_status(d["pid"])
            self.res["memory"].setdefault(name, {})[label] = {
                "mappings": self.count[name], "process": d.get("runs", 1),
                "VmHWM_kB": int(st["VmHWM"].split()[0]), "VmRSS_kB": int(st["VmRSS"].split()[0]),
                "RssAnon_kB": int(st.get("RssAnon", "0 kB").split()[0])}
        log(f"memory {label}: " + ", ".join(f"{n} HWM {v[label]['VmHWM_kB']} kB"
                                            for n, v in self.res["memory"].items() if label in v))

    def binaries(self):
        w = self.topo.workdir
        for name, exe in (("iwfd", self.exe), ("miniupnpd", harness.MINIUPNPD)):
            dst = os.path.join(w, name + ".stripped")
            subprocess.run(["strip", "-o", dst, exe], check=True)
            size = subprocess.run(["size", dst], capture_output=True, text=True).stdout.splitlines()[-1].split()
            libs = []
            for line in subprocess.run(["ldd", exe], capture_output=True, text=True).stdout.splitlines():
                m = re.match(r"\s*(\S+) => (\S+)", line)
                if m and not re.match(r"lib(c|m|pthread|dl|rt)\.so", m.group(1)):
                    libs.append((m.group(1), os.path.getsize(os.path.realpath(m.group(2)))))
            self.res["binary"][name] = {"file": os.path.getsize(exe), "stripped": os.path.getsize(dst),
                                        "text": int(size[0]), "data": int(size[1]), "bss": int(size[2]),
                                        "libs": libs}

    # -- workload 5: idle
    def idle(self):
        pids = {n: self.daemons[n]["pid"] for n in ("iwfd", "miniupnpd")}
        before = {n: (cpu_ns(p), ctxt(p), ticks(p)) for n, p in pids.items()}
        log(f"idle: measuring {self.idle_s} s with {self.res['meta']['idle_mappings']} mappings each")
        time.sleep(self.idle_s)
        for n, p in pids.items():
            (ns0, runs0), (v0, nv0), t0 = before[n]
            (ns1, runs1), (v1, nv1) = cpu_ns(p), ctxt(p)
            self.res["idle"][n] = {"seconds": self.idle_s, "cpu_ms": (ns1 - ns0) / 1e6,
                                   "wakeups": runs1 - runs0, "voluntary_cs": v1 - v0,
                                   "involuntary_cs": nv1 - nv0, "ticks": ticks(p) - t0}
        log("idle: " + json.dumps(self.res["idle"]))

    # -- workload 4: restart
    def restart(self):
        d = self.daemons["iwfd"]
        n_live = len([m for m in self.simctl.mappings() if m["kind"] == "map"])
        t0 = time.monotonic()
        d["proc"].stop()
        log(f"iwfd stopped in {time.monotonic() - t0:.2f} s (state saved); sim holds {n_live} mappings")
        have = self.count["iwfd"]
        if have < self.n_big:
            with open(d["state"]) as f:
                st = json.load(f)
            tmpl = st["mappings"][0]
            used = {(m["protocol"], m["external_port"]) for m in st["mappings"]}
            port = BASE_PORT + have
            while len(st["mappings"]) < self.n_big:
                if ("TCP", port) not in used:
                    m = dict(tmpl, external_port=port, internal_port=port, nonce=os.urandom(12).hex())
                    st["mappings"].append(m)
                port += 1
            with open(d["state"], "w") as f:
                json.dump(st, f, indent=1)
            self.note(f"restart: state file topped up from {have:,} to {self.n_big:,} mappings "
                      f"(copies of a real entry, fresh nonces, ports {BASE_PORT + have}..{port - 1})")
            self.count["iwfd"] = self.n_big
        try:
            state_bytes = os.path.getsize(d["state"])
        except OSError:
            state_bytes = None
        self.simctl.reset_log()
        d = self.start_iwfd("iwfd", fresh=False)
        t_spawn = d["t_spawn"]
        want = self.n_big
        deadline = time.monotonic() + (30 if self.quick else 180)
        last_n, stable_since = -1, time.monotonic()
        while True:
            lg = self.simctl.log(0)
            answered = [e for e in lg if e.get("result_name") == "SUCCESS" and e.get("sent")]
            nonces = {e["fields"].get("nonce") for e in answered}
            if len(nonces) >= want:
                break
            if len(lg) != last_n:
                last_n, stable_since = len(lg), time.monotonic()
            elif time.monotonic() - stable_since > (5 if self.quick else 30) or time.monotonic() > deadline:
                self.note(f"restart: only {len(nonces)} of {want} mappings re-MAPped")
                break
            time.sleep(0.2)
        time.sleep(0.5)
        cpu, _ = cpu_ns(d["pid"])
        lg = self.simctl.log(0)
        reqs = [e for e in lg if e.get("fields", {}).get("opcode_name") == "MAP"]
        sent = [s["t"] for e in lg for s in e.get("sent", [])]
        first = min(e["t"] for e in reqs) if reqs else None
        last = max(e["t"] for e in reqs) if reqs else None
        self.res["restart"] = {
            "mappings": want, "state_file_bytes": state_bytes,
            "ready_s": d["t_ready"] - t_spawn,
            "first_map_s": (first - t_spawn) if first else None,
            "last_map_s": (last - t_spawn) if last else None,
            "last_answer_s": (max(sent) - t_spawn) if sent else None,
            "pcp_requests": len(reqs), "pcp_answers": len(sent),
            "map_times_hist": self.hist([e["t"] - t_spawn for e in reqs]),
            "distinct_nonces": len({e["fields"].get("nonce") for e in reqs}),
            "dropped_by_sim": len([e for e in lg if e.get("dropped")]),
            "iwfd_cpu_s": cpu / 1e9, "iwfd_VmHWM_kB": kb(d["pid"], "VmHWM"),
            "sim_stats": self.simctl.stats(),
        }
        log("restart: " + json.dumps({k: v for k, v in self.res["restart"].items() if k != "sim_stats"}))

    @staticmethod
    def hist(ts, edges=(0.01, 0.1, 0.5, 1, 2, 3, 4, 6, 10, 30)):
        """How many of the times ts (s) fall below each edge (cumulative)."""
        return {f"<{e}s": sum(1 for t in ts if t < e) for e in edges}

    # -- the run
    def run(self):
        self.describe_machine()
        log(f"machine: {self.res['meta']['cpu']}, {self.res['meta']['mem']}, kernel {self.res['meta']['kernel']}")
        self.topo = harness.Topology()
        self.topo.up()
        self.start_sim()
        self.start_iwfd("iwfd")
        self.start_miniupnpd()
        # iwfd's probe MAP makes it Connected; wait until GetExternalIPAddress has an address
        deadline = time.monotonic() + 15
        while True:
            try:
                self.soap_check(self.daemons["iwfd"], "GetExternalIPAddress", "", r"NewExternalIPAddress>\d")
                break
            except BenchError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.binaries()
        time.sleep(1)
        self.mem("idle (0 mappings)")
        # 5: idle cost with 100 live mappings
        n_idle = 10 if self.quick else 100
        self.res["meta"]["idle_mappings"] = n_idle
        for name in ("iwfd", "miniupnpd"):
            self.fill(self.daemons[name], n_idle)
        time.sleep(2)
        self.idle()
        # GetListOfPortMappings where miniupnpd still survives it (it dies with ~200 mappings)
        if not self.quick:
            for name in ("iwfd", "miniupnpd"):
                self.check_list(self.daemons[name], n_idle)
            self.run_reads(n_idle)
        # 3/1: 1,000 mappings, reads
        for name in ("iwfd", "miniupnpd"):
            self.fill(self.daemons[name], self.n_read - n_idle)
        self.mem("after the read fill")
        for name in ("iwfd", "miniupnpd"):
            self.check_reads(self.daemons[name])
        self.run_reads()
        self.mem("after the read workloads")
        # 2: add/delete pairs: iwfd -> pcpsim, miniupnpd (local nftables), iwfd -> miniupnpd PCP
        self.run_pairs(self.daemons["iwfd"], "iwfd -> pcpsim", SIM_PORT)
        self.run_pairs(self.daemons["miniupnpd"], "miniupnpd (IGD, nftables)", 0)
        carrier = harness.Miniupnpd(self.topo)
        carrier.start()
        self.start_iwfd("iwfd2", port=IWFD2_PORT, server=self.topo.addr["carrier"])
        deadline = time.monotonic() + 15
        while True:
            try:
                self.soap_check(self.daemons["iwfd2"], "GetExternalIPAddress", "", r"NewExternalIPAddress>\d")
                break
            except BenchError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.run_pairs(self.daemons["iwfd2"], "iwfd -> miniupnpd PCP", 5351)
        self.daemons["iwfd2"]["proc"].stop()
        carrier.stop()
        # 3: towards 10,000 mappings by UPnP, each daemon for at most fill_budget seconds
        for name in ("iwfd", "miniupnpd"):
            self.fill(self.daemons[name], self.n_big - self.count[name], self.fill_budget)
            if self.count[name] < self.n_big:
                self.note(f"{name}: the UPnP fill reached {self.count[name]:,} of {self.n_big:,} mappings "
                          f"in the {self.fill_budget} s budget")
        self.mem("after the big fill (UPnP)")
        # 4: restart with n_big persisted mappings (the state file is topped up with synthetic
        # entries when the UPnP fill did not get there in time)
        self.restart()
        self.mem("after restart (restored)")
        return self.res


# ------------------------------------------------------------------ report

def report(res):
    L = []
    m = res["meta"]
    L.append(f"iwfd benchmarks vs miniupnpd — {m['date_utc']} UTC, commit {m['commit']}"
             f"{' (QUICK smoke run: numbers not meaningful)' if m['quick'] else ''}")
    L.append(f"machine: {m['cpu']}, {m['mem']}, kernel {m['kernel']}; {m['wrk']}; {m['miniupnpd']}")
    L.append(f"method: server on CPU {SERVER_CPU}, load generator on CPU {LOAD_CPU}; wrk -t1 "
             f"-c{m['connections']} -d{m['duration_s']}s; {m['rounds']} alternating rounds; medians")
    L.append("")
    L.append("1. SOAP/HTTP reads (wrk; req/s and latency: median over rounds)")
    hdr = ("workload | mode", "iwfd req/s", "p50 ms", "p99 ms", "miniupnpd req/s", "p50 ms",
           "p99 ms", "req/s ratio", "best round i / m", "err i/m")
    rows = []
    for key, s in res["reads"].items():
        def agg(name, f):
            return med([x[f] for x in s[name]])
        i_rps, m_rps = agg("iwfd", "rps"), agg("miniupnpd", "rps")
        ms = lambda v: None if v is None else v / 1e3
        if not s["miniupnpd"]:
            m_rps = "crashes"
        rows.append((key, fmt(i_rps, 0), fmt(ms(agg("iwfd", "p50_us")), 3),
                     fmt(ms(agg("iwfd", "p99_us")), 3), fmt(m_rps, 0),
                     fmt(ms(agg("miniupnpd", "p50_us")), 2), fmt(ms(agg("miniupnpd", "p99_us")), 2),
                     ratio(i_rps, m_rps),
                     f"{fmt(max((x['rps'] for x in s['iwfd']), default=None), 0)} / "
                     f"{fmt(max((x['rps'] for x in s['miniupnpd']), default=None), 0)}",
                     f"{sum(x['errors'] for x in s['iwfd'])}/{sum(x['errors'] for x in s['miniupnpd'])}"))
    L += table(hdr, rows)
    for name, v in (m.get("list_response") or {}).items():
        L.append(f"GetListOfPortMappings answer of {name}: {v['entries']:,} entries, {v['bytes']:,} bytes")
    pr = res.get("pcp_per_read") or {}
    if pr:
        L.append(f"PCP messages caused by {pr['soap_reads']:,} iwfd SOAP reads: {pr['pcp_messages']} "
                 f"({pr['per_read']:.6f} per read)")
    L.append("")
    L.append("2. AddPortMapping + DeletePortMapping pairs, one keep-alive client, sequential (µs unless ms)")
    hdr = ("path", "call", "n", "client p50 ms", "client p99 ms", "server p50", "PCP RTT p50",
           "before PCP p50", "after PCP p50", "added p50", "added p99", "PCP msgs/call")
    rows = []
    for label, out in res["pairs"].items():
        tx = out["server"]
        for call, sub, cl in (("Add", tx[0::2], out["client_add_ms"]), ("Delete", tx[1::2], out["client_del_ms"])):
            g = lambda k: [x[k] for x in sub if k in x]
            rows.append((label, call, str(len(sub)), fmt(med(cl), 2), fmt(pct(cl, 99), 2),
                         fmt(med(g("total_us")), 0), fmt(med(g("pcp_rtt_us")), 0),
                         fmt(med(g("before_pcp_us")), 0), fmt(med(g("after_pcp_us")), 0),
                         fmt(med(g("added_us")), 0), fmt(pct(g("added_us"), 99), 0),
                         fmt(sum(x["pcp_msgs"] for x in sub) / len(sub), 2) if sub else "n/a"))
    L += table(hdr, rows)
    L.append("client = Python http.client in host1 (includes its own overhead); server = router-side "
             "capture, last request byte in -> first response byte out; PCP RTT = MAP out -> answer in "
             "on the router's WAN; added = server - PCP RTT (iwfd's own time)")
    L.append("")
    L.append("3. Memory (kB, /proc/PID/status; 'n' = mappings held at that moment)")
    labels = []
    for v in res["memory"].values():
        for k in v:
            if k not in labels:
                labels.append(k)
    rows = []
    for k in labels:
        i = res["memory"].get("iwfd", {}).get(k)
        mm = res["memory"].get("miniupnpd", {}).get(k)
        rows.append((k, fmt(i and i["mappings"]), fmt(i and i["VmHWM_kB"]), fmt(i and i["VmRSS_kB"]),
                     fmt(mm and mm["mappings"]), fmt(mm and mm["VmHWM_kB"]), fmt(mm and mm["VmRSS_kB"]),
                     ratio(i and i["VmHWM_kB"], mm and mm["VmHWM_kB"])))
    L += table(("moment", "iwfd n", "VmHWM", "VmRSS", "miniupnpd n", "VmHWM", "VmRSS", "HWM ratio"), rows)
    for name, v in res["memory"].items():
        base = v.get("idle (0 mappings)")
        for k, e in v.items():
            if base and e["mappings"] and k.startswith("after"):
                per = (e["VmRSS_kB"] - base["VmRSS_kB"]) * 1024 / e["mappings"]
                L.append(f"{name}: {per:,.0f} bytes of RSS per mapping ({k}, {e['mappings']:,} mappings)")
    L.append("")
    L.append("Binary (bytes)")
    rows = []
    for name, b in res["binary"].items():
        rows.append((name, fmt(b["file"]), fmt(b["stripped"]), fmt(b["text"]), fmt(b["data"]), fmt(b["bss"]),
                     ", ".join(f"{l} {s // 1024} KiB" for l, s in b["libs"])))
    L += table(("daemon", "file", "stripped", "text", "data", "bss", "shared libraries (besides libc)"), rows)
    L.append("")
    r = res.get("restart") or {}
    if r:
        L.append(f"4. Restart with {r['mappings']:,} persisted mappings (service_wait_s 0, replay_rate 0), "
                 f"PCP server pcpsim")
        L.append(f"   after spawn: ready {fmt(r['ready_s'], 3)} s, first MAP {fmt(r['first_map_s'], 3)} s, last "
                 f"MAP {fmt(r.get('last_map_s'), 3)} s, last answer {fmt(r['last_answer_s'], 3)} s; iwfd CPU "
                 f"{fmt(r['iwfd_cpu_s'], 3)} s (whole process life); VmHWM {fmt(r['iwfd_VmHWM_kB'])} kB")
        if r.get("map_times_hist"):
            L.append("   MAP requests sent before (cumulative, after spawn): " +
                     ", ".join(f"{k} {v:,}" for k, v in r["map_times_hist"].items()))
        L.append(f"   PCP requests {r['pcp_requests']:,} for {r['distinct_nonces']:,} mappings "
                 f"({r['pcp_requests'] / max(1, r['distinct_nonces']):.3f} per mapping); state file "
                 f"{fmt(r['state_file_bytes'])} bytes")
        L.append("")
    L.append(f"5. Idle cost over {res['idle'].get('iwfd', {}).get('seconds', '?')} s with "
             f"{m.get('idle_mappings')} live mappings")
    rows = [(n, fmt(v["cpu_ms"], 3), str(v["wakeups"]), str(v["voluntary_cs"]))
            for n, v in res["idle"].items()]
    L += table(("daemon", "CPU ms", "times scheduled", "voluntary switches"), rows)
    if m.get("fills"):
        L.append("")
        L.append("Fills (sequential AddPortMapping, keep-alive where the server allows it):")
        for f in m["fills"]:
            L.append(f"   {f['daemon']}: {f['from']:,} -> {f['from'] + f['added']:,} mappings in {f['seconds']:.1f} s "
                     f"({f['added'] / max(1e-9, f['seconds']):.0f}/s)")
    conns = m.get("connection_header") or {}
    if conns:
        L.append("Connection header on a plain GET (keep-alive test): " +
                 ", ".join(f"{n}: {v}" for n, v in conns.items()))
    if res["notes"]:
        L.append("")
        L.append("Notes:")
        L += [f"- {n}" for n in res["notes"]]
    return "\n".join(L) + "\n"


def table(hdr, rows):
    w = [max(len(str(r[i])) for r in [hdr] + rows) for i in range(len(hdr))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
    return [line(hdr), "|" + "|".join("-" * (x + 2) for x in w) + "|"] + [line(r) for r in rows]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report", metavar="JSON", help="only print the report of an earlier run's JSON")
    ap.add_argument("--quick", action="store_true", help="smoke run (< 1 min), numbers not meaningful")
    ap.add_argument("--out", help="write the report here and the raw JSON to OUT.json")
    ap.add_argument("--iwfd", default=os.path.join(ROOT, "build-bench", "iwf", "iwfd"))
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=int, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--idle", type=int, help="idle measurement seconds")
    ap.add_argument("--fill-budget", type=int,
                    help="seconds each daemon may spend on the UPnP fill towards 10,000 mappings")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            text = report(json.load(f))
        print(text, end="")
        if args.out:
            with open(args.out, "w") as f:
                f.write(text)
        return 0
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces)", file=sys.stderr)
        return 2
    if not os.access(args.iwfd, os.X_OK):
        print(f"bench: no iwfd binary at {args.iwfd}", file=sys.stderr)
        return 2
    b = Bench(args)
    rc = 0
    try:
        b.run()
    except (BenchError, harness.HarnessError) as e:
        log(f"FAILED: {e}")
        b.res["notes"].append(f"run aborted: {e}")
        rc = 1
    except (KeyboardInterrupt, SystemExit) as e:
        log("interrupted: cleaning up")
        b.res["notes"].append("run interrupted")
        rc = 130 if isinstance(e, KeyboardInterrupt) else (e.code or 1)
    finally:
        harness.CLEANUP.run()
    text = report(b.res)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        with open(args.out + ".json", "w") as f:
            json.dump(b.res, f, indent=1, default=str)
    return rc


if __name__ == "__main__":
    sys.exit(main())

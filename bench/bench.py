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

The PCP server is bench/fastsim.py: pcpsim with its two per-request table scans replaced by an
index (same protocol behaviour; --plain-pcpsim uses pcpsim.py itself).

Order: idle memory; 100 mappings + idle cost; reads at 100 and 1,000 mappings; Add/Delete pairs
(iwfd -> pcpsim at 1,000, miniupnpd, iwfd -> miniupnpd PCP); the fill towards 10,000 from one
control point (each daemon, --fill-budget s); restore of 10,000 (b); Add/Delete pairs on the
restored iwfd at 10,000 (c); 500 Adds to a fresh iwfd under `strace -c` (fsync & co., e); the fill
0 -> 10,000 of a fresh iwfd from --workers (8) control points at once (d).  Every fill records,
per stage (0 -> 1,000 -> 10,000 mappings), its time, the daemon's /proc/PID/io, CPU and log-file
deltas (e) and the CPUs' busy time.

Nothing here fails on timing: the exit status is 0 when every workload ran, 1 when the harness
broke (a daemon died, a check answer was wrong).
"""
import argparse
import json
import math
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
import tempfile
import threading
import time
import uuid

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
FASTSIM = os.path.join(HERE, "fastsim.py")      # pcpsim without its O(table) scans, see there
SERVER_CPU, LOAD_CPU = "0", "1"
IWFD_PORT, MUPNP_PORT, IWFD2_PORT, SYS_PORT, IWFD8_PORT = 5000, 5001, 5002, 5003, 5004
SIM_PORT = 5352
BASE_PORT = 20000         # mappings for the read workloads: 20000 .. 20000+N-1 (TCP)
PAIR_PORT = 40000         # the add/delete pair workload
FILL8_PORT = 41000        # the 8-control-point fill: 41000 .. 41000+N-1, one block per worker
SYS_BASE = 55000          # the strace phase: 55000 .. 55000+N-1
WORKERS = 8
STRACE_SYSCALLS = ("fsync", "fdatasync", "sync_file_range", "syncfs", "msync", "openat",
                   "rename", "renameat", "renameat2", "unlink", "unlinkat", "ftruncate")
IO_FIELDS = ("rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes",
             "cancelled_write_bytes")


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


def proc_io(pid):
    """/proc/PID/io: rchar/wchar (bytes through read/write-family calls, sockets and pipes
    included), syscr/syscw (calls), read_bytes/write_bytes (bytes this process caused to be
    fetched from / sent to the block layer: write_bytes counts page-cache pages as they are
    dirtied, so an append to a clean page counts a whole 4 KiB), cancelled_write_bytes (dirty
    pages dropped by a truncate or unlink before writeback)."""
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k.strip()] = int(v)
    return out


def cpu_jiffies(cpu):
    """(busy, total) jiffies of one CPU from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + (v[4] if len(v) > 4 else 0)
                return sum(v) - idle, sum(v)
    return 0, 0


def state_files(path):
    """Bytes on disk of a daemon's state storage: the state file and every sibling whose name
    starts with it (temporary files, a journal next to a snapshot)."""
    d, base = os.path.dirname(path), os.path.basename(path)
    files = {}
    try:
        for name in sorted(os.listdir(d)):
            if name.startswith(base):
                try:
                    files[name] = os.path.getsize(os.path.join(d, name))
                except OSError:
                    pass
    except OSError:
        pass
    return {"bytes": sum(files.values()), "files": files}


class Sampler:
    """Samples a process's /proc counters (io, CPU), its log file's size and the two CPUs'
    busy time every `period` s in a thread, to split a fill's totals at any instant
    (linear interpolation between samples)."""

    def __init__(self, pid, logpath=None, period=0.2, others=None):
        self.pid, self.logpath, self.period = pid, logpath, period
        self.others = others or {}         # name -> pid: their CPU as NAME_cpu_ns
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def snap(self):
        s = {"t": time.monotonic()}
        try:
            io = proc_io(self.pid)
            s.update({k: io.get(k, 0) for k in IO_FIELDS})
            s["cpu_ns"] = cpu_ns(self.pid)[0]
        except OSError:
            return None
        if self.logpath:
            try:
                s["log_bytes"] = os.path.getsize(self.logpath)
            except OSError:
                s["log_bytes"] = 0
        for name, pid in self.others.items():
            try:
                s[name + "_cpu_ns"] = cpu_ns(pid)[0]
            except OSError:
                pass
        s["load_busy"], s["load_total"] = cpu_jiffies(LOAD_CPU)
        s["server_busy"], s["server_total"] = cpu_jiffies(SERVER_CPU)
        return s

    def _add(self):
        s = self.snap()
        if s:
            self.samples.append(s)

    def _run(self):
        while not self._stop.wait(self.period):
            self._add()

    def __enter__(self):
        self._add()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._add()
        return False

    def at(self, t):
        """Every counter at time t (interpolated; clamped to the first/last sample)."""
        ss = self.samples
        if not ss:
            return {}
        if t <= ss[0]["t"]:
            return dict(ss[0])
        if t >= ss[-1]["t"]:
            return dict(ss[-1])
        lo, hi = 0, len(ss) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ss[mid]["t"] <= t:
                lo = mid
            else:
                hi = mid
        a, b = ss[lo], ss[hi]
        f = (t - a["t"]) / max(1e-12, b["t"] - a["t"])
        return {k: a[k] + (b[k] - a[k]) * f for k in a if k in b}

    def delta(self, t0, t1):
        a, b = self.at(t0), self.at(t1)
        return {k: b[k] - a[k] for k in b if k != "t" and k in a}


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
    if abs(round(x, nd)) >= 1000:
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
        self.idle_s = args.idle or (3 if self.quick else 60)
        self.pairs = 20 if self.quick else 300
        self.pairs_big = 20 if self.quick else 100      # Add/Delete pairs at n_big mappings
        self.n_strace = 50 if self.quick else 500       # Adds traced by strace -c
        self.fill_budget = args.fill_budget or (5 if self.quick else 180)
        self.workers = args.workers
        self.count = {"iwfd": 0, "miniupnpd": 0}
        self.next_port = {}      # daemon -> first port not yet tried (failed Adds leave gaps)
        self.exe = os.path.abspath(args.iwfd)
        self.res = {"meta": {}, "reads": {}, "pairs": {}, "memory": {}, "binary": {}, "pcp_per_read": {},
                    "restart": {}, "idle": {}, "fills": {}, "storage": {}, "notes": []}
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
        m["n_read"], m["n_big"], m["fill_budget_s"], m["workers"] = (self.n_read, self.n_big,
                                                                      self.fill_budget, self.workers)
        m["pcp_simulator"] = "pcpsim.py" if self.a.plain_pcpsim else "bench/fastsim.py (pcpsim, indexed)"
        m["state_dir_fs"] = subprocess.run(["stat", "-f", "-c", "%T", tempfile.gettempdir()],
                                           capture_output=True, text=True).stdout.strip()

    def start_sim(self):
        w = self.topo.workdir
        self.sim_sock = os.path.join(w, "sim.sock")
        # big receive buffers in the carrier so a 10,000-message burst is not dropped by the
        # kernel in front of a Python simulator (per-namespace sysctl)
        self.ns("carrier", ["sysctl", "-q", "-w", "net.core.rmem_default=33554432"], check=False)
        self.ns("carrier", ["sysctl", "-q", "-w", "net.core.rmem_max=33554432"], check=False)
        settings = {"quota": 0, "log_limit": 400000, "seed": 7}
        self.sim = self.topo.spawn("carrier", "pcpsim", [
            "taskset", "-c", LOAD_CPU, PY, PCPSIM if self.a.plain_pcpsim else FASTSIM, "--listen", f"{self.topo.addr['carrier']}:{SIM_PORT}",
            "--external-ip", "198.51.100.1", "--control", self.sim_sock, "--set", json.dumps(settings)])
        deadline = time.monotonic() + 15
        while True:
            if os.path.exists(self.sim_sock):
                try:
                    self.simctl = simclient.PcpSimClient(self.sim_sock)
                    self.simctl.ping()
                    with open(f"/proc/{self.sim.pid}/comm") as f:
                        self.res["meta"]["pcp_simulator_comm"] = f.read().strip()
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

    def start_iwfd(self, name="iwfd", port=IWFD_PORT, server=None, fresh=True, find=True):
        """find=False (a restart): keep the service URLs found before instead of fetching the
        root description, which a daemon busy restoring 10,000 mappings may answer late."""
        w = self.topo.workdir
        cfg = os.path.join(w, f"{name}.json")
        with open(cfg, "w") as f:
            # one control point fills 10,000: no per-host limit here
            json.dump({"pcp": {"service_wait_s": 0, "replay_rate": 0, "listen_announce": False},
                       "security": {"max_mappings_per_host": 0}}, f)
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
        deadline = time.monotonic() + 20          # a loaded machine may be slow to answer
        while find or "ctrl" not in d:
            try:
                self.find_service(d)
                break
            except BenchError:
                if time.monotonic() > deadline or not d["proc"].running():
                    raise
                time.sleep(0.2)
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

    def stage_bounds(self):
        return [0, self.n_read, self.n_big]

    def http_wchar_frac(self, d):
        """Which share of its HTTP answers' bytes a daemon's wchar counts (1 when it answers with
        write()/writev(), 0 with send()/sendmsg()): 200 GetExternalIPAddress on one connection,
        wchar delta minus the log file's growth, over the answer bytes.  Once per process."""
        if d.get("http_frac_pid") == d["pid"]:
            return d["http_frac"]
        logpath = d["proc"].logpath
        w0, l0 = proc_io(d["pid"])["wchar"], os.path.getsize(logpath)
        r = self.cp({"op": "extip", "url": d["ctrl"], "st": d["st"], "count": 200})
        w1, l1 = proc_io(d["pid"])["wchar"], os.path.getsize(logpath)
        frac = ((w1 - w0) - (l1 - l0)) / max(1, r.get("resp_bytes", 0))
        d["http_frac"], d["http_frac_pid"] = max(0.0, min(1.0, frac)), d["pid"]
        log(f"{d['name']}: wchar counts {100 * frac:.0f}% of the HTTP answers' bytes")
        return d["http_frac"]

    def fill(self, d, count, deadline_s=None, workers=1, start_port=None, series=None):
        """Add `count` more mappings from `workers` control points (each its own keep-alive
        connection and block of ports) within deadline_s; returns (seconds, added).

        The chunk is recorded in res["fills"][series]: adds, active seconds, a curve (every 100th
        answer) and, for each fill stage (0 -> n_read -> n_big, counted in the series' mappings) it
        overlaps, its share of time, Adds, /proc/PID/io, CPU and log-file deltas."""
        name = d["name"]
        have = self.count[name]
        start = self.next_port.get(name, (start_port if start_port is not None else BASE_PORT) + have)
        job = {"op": "fill", "url": d["ctrl"], "st": d["st"], "client": self.topo.addr["host1"],
               "start": start, "count": count, "workers": workers}
        if deadline_s:
            job["deadline_s"] = deadline_s
        logpath = d["proc"].logpath if d.get("proc") else None
        frac = self.http_wchar_frac(d) if name.startswith("iwfd") else None
        with Sampler(d["pid"], logpath, others={"sim": self.sim.pid} if name.startswith("iwfd") else None) as smp:
            r = self.cp(job)
        if r["errors"]:
            if not r["done"]:
                raise BenchError(f"{name}: fill {start}+{count}: {r['errors']} errors, first: {r['first_error']}")
            self.note(f"{name}: {r['errors']:,} of {r['attempted']:,} AddPortMapping calls failed in the fill "
                      f"from {have:,} ({workers} control point(s)); first: {r['first_error']}")
        self.next_port[name] = start + (count if workers > 1 else r["attempted"])
        self.count[name] += r["done"]
        log(f"{name}: {r['done']} mappings added in {r['seconds']:.1f} s ({r['done'] / max(1e-9, r['seconds']):.0f}/s, "
            f"{workers} control point(s), {r['connections']} connections); {self.count[name]} in total")
        self.res["meta"].setdefault("fills", []).append(
            {"daemon": name, "from": have, "added": r["done"], "seconds": r["seconds"], "workers": workers})
        series = series or f"{name}, {workers} CP"
        kind = "iwfd" if name.startswith("iwfd") else name
        ser = self.res["fills"].setdefault(series, {"daemon": kind, "process": name, "workers": workers,
                                                    "chunks": []})
        times, t0, n = r["times"], r["t0"], r["done"]
        chunk = {"from": have, "added": n, "seconds": r["seconds"], "resp_bytes": r["resp_bytes"],
                 "errors": r["errors"], "attempted": r["attempted"],
                 "client_cpu_s": r.get("cpu_s"),
                 "connections": r["connections"], "per_worker": r["per_worker"],
                 "curve": [[have + i + 1, round(times[i] - t0, 4)] for i in range(n)
                           if (have + i + 1) % 100 == 0 or i == n - 1],
                 "http_wchar_frac": frac,
                 "total": dict(smp.delta(t0, times[-1]), client_cpu_ns=r.get("cpu_s", 0) * 1e9,
                               **({"http_wchar_bytes": r["resp_bytes"] * frac} if frac is not None else {}))
                 if n else {},
                 "stages": {}}
        b = self.stage_bounds()
        for a, z in zip(b, b[1:]):
            lo, hi = max(a, have), min(z, have + n)
            if hi <= lo:
                continue
            t_lo = t0 if lo == have else times[lo - have - 1]
            t_hi = times[hi - have - 1]
            part = smp.delta(t_lo, t_hi)
            part.update(adds=hi - lo, seconds=t_hi - t_lo, resp_bytes=r["resp_bytes"] * (hi - lo) / n,
                        **({"http_wchar_bytes": r["resp_bytes"] * (hi - lo) / n * frac} if frac is not None else {}),
                        client_cpu_ns=r.get("cpu_s", 0) * 1e9 * (hi - lo) / n)
            chunk["stages"][f"{a:,}->{z:,}"] = part
        ser["chunks"].append(chunk)
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

    def run_pairs(self, d, label, pcp_port, count=None, deadline_s=None):
        t = self.topo
        # PCP: only MAPs (requests and answers) for the pair's internal port (udp[48:2] = MAP's
        # internal port: 8 UDP + 24 header + 12 nonce + 4), so a restore's retransmissions
        # running in the background do not land in the split
        wan_bpf = f"udp port {pcp_port}" + (f" and udp[48:2] = {PAIR_PORT}" if pcp_port else "")
        fname = re.sub(r"[^A-Za-z0-9]+", "_", label)
        caps = [self.capture(t.iface["lan_bridge"], f"cap-{fname}-lan", f"tcp port {d['port']}"),
                self.capture(t.iface["router_wan"], f"cap-{fname}-wan", wan_bpf)]
        r = self.cp({"op": "pairs", "url": d["ctrl"], "st": d["st"], "client": t.addr["host1"],
                     "port": PAIR_PORT, "count": count or self.pairs, "deadline_s": deadline_s or 1e9})
        time.sleep(0.3)
        pkts = []
        for proc, path in caps:
            proc.stop(signal.SIGINT)
            pkts += read_pcap(path)
        tx = transactions(pkts, d["port"], pcp_port)
        self.alive(d)
        out = {"client_add_ms": r["add_ms"], "client_del_ms": r["del_ms"], "errors": r["errors"],
               "first_error": r["first_error"], "connections": r["connections"], "server": tx,
               "mappings": self.count.get(d["name"], 0)}
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
    def sim_maps(self, lo, hi):
        """pcpsim's MAP mappings with internal port in [lo, hi)."""
        return [m for m in self.simctl.mappings()
                if m["kind"] == "map" and lo <= m["internal_port"] < hi]

    def top_up(self, d, first_free, real):
        """Fallback when the UPnP fill did not reach n_big: write a state file with n_big
        mappings.  A JSON state file (iwfd 0.1) keeps its real entries; any other format (the
        binary journal) is replaced by a version-1 JSON document built from pcpsim's table (real
        nonces) that the daemon imports.  The extra entries are copies with fresh nonces and
        ports from BASE_PORT + first_free up (no port a failed Add may have left on the carrier).
        Returns (the added nonces, how, path of the saved original or None)."""
        path = d["state"]
        try:
            with open(path) as f:
                st = json.load(f)
            if not isinstance(st, dict) or not isinstance(st.get("mappings"), list) or not st["mappings"]:
                raise ValueError("no mappings array")
            if os.environ.get("BENCH_TOPUP") == "synth":       # self-test of the path below
                raise ValueError("BENCH_TOPUP=synth")
            how, backup = "JSON state file topped up", None
        except (ValueError, UnicodeDecodeError, OSError) as e:
            backup = path + ".bench-orig"
            shutil.copyfile(path, backup)
            host = self.topo.addr["host1"]
            st = {"version": 1, "uuid": {"igd": str(uuid.uuid4()), "wan_device": str(uuid.uuid4()),
                                         "wan_connection_device": str(uuid.uuid4())},
                  "boot_id": 1, "system_update_id": 1,
                  "mappings": [{"protocol": "TCP", "external_port": m["external_port"],
                                "external_addr": m["external_addr"], "remote_host": "",
                                "internal_client": host, "internal_port": m["internal_port"],
                                "router_port": 0, "description": "bench", "owner": host,
                                "enabled": True, "lease_duration": 0, "lease_end": 0,
                                "nonce": m["nonce"]} for m in sorted(real, key=lambda m: m["internal_port"])],
                  "intents": []}
            how = (f"state file ({type(e).__name__}: {str(e)[:60]}) replaced by a "
                   f"version-1 JSON document built from pcpsim's {len(real):,} mappings plus copies")
            if not st["mappings"]:
                raise BenchError("top-up: no mapping to copy")
        tmpl = st["mappings"][0]
        used = {(m["protocol"], m["external_port"]) for m in st["mappings"]}
        port, added = BASE_PORT + first_free, []
        while len(st["mappings"]) < self.n_big:
            if ("TCP", port) not in used:
                m = dict(tmpl, external_port=port, internal_port=port, nonce=os.urandom(12).hex())
                st["mappings"].append(m)
                added.append(m["nonce"])
            port += 1
        for name in list(state_files(path)["files"]):
            full = os.path.join(os.path.dirname(path), name)
            if full != path and full != backup:
                os.unlink(full)           # a journal's companions must not outlive it
        with open(path, "w") as f:
            json.dump(st, f, indent=1)
        return added, how, backup

    def restart(self):
        """Workload 4 / acceptance (b): stop iwfd, start it on its saved state, and watch
        pcpsim's log until every stored mapping has been re-MAPped (by nonce)."""
        d = self.daemons["iwfd"]
        real = self.sim_maps(BASE_PORT, PAIR_PORT)
        expected = {m["nonce"] for m in real}
        t0 = time.monotonic()
        d["proc"].stop()
        stop_s = time.monotonic() - t0
        log(f"iwfd stopped in {stop_s:.2f} s (state saved); sim holds {len(real)} of its mappings")
        have = self.count["iwfd"]
        r = self.res["restart"] = {"filled_by_upnp": have, "stop_s": stop_s, "topped_up": 0,
                                   "storage_after_stop": state_files(d["state"])}
        backup = None
        if have < self.n_big:
            added, how, backup = self.top_up(d, self.next_port.get("iwfd", BASE_PORT + have) - BASE_PORT, real)
            expected |= set(added)
            r.update(topped_up=len(added), top_up_how=how)
            self.note(f"!!! restore: the UPnP fill reached only {have:,} of {self.n_big:,} mappings in its "
                      f"{self.fill_budget} s budget, so the restore is NOT of a state the daemon wrote: "
                      f"{how}: {len(added):,} synthetic mappings (copies of a real entry, fresh nonces)")
            self.count["iwfd"] = self.n_big
        want = self.n_big
        if len(expected) != want:
            self.note(f"restore: {len(expected):,} nonces expected (pcpsim held {len(real):,} of the "
                      f"{have:,} filled mappings)")
        r["mappings"] = want
        r["state_file_bytes"] = state_files(d["state"])["bytes"]
        self.simctl.reset_log()
        try:
            d = self.start_iwfd("iwfd", fresh=False, find=False)
        except harness.HarnessError as e:
            if not backup:
                raise
            self.note(f"!!! restore: iwfd did not start on the synthesized state file ({str(e)[:300]}); "
                      f"restored its own file with {have:,} mappings")
            os.replace(backup, d["state"])
            want = have
            expected = {m["nonce"] for m in real}
            r["mappings"], self.count["iwfd"] = want, have
            self.simctl.reset_log()
            d = self.start_iwfd("iwfd", fresh=False, find=False)
        t_spawn = d["t_spawn"]
        deadline = time.monotonic() + (30 if self.quick else 180)
        quiet_s = 5 if self.quick else 30
        # nonce -> CLOCK_MONOTONIC of its first SUCCESS answer (MAP, lifetime > 0, internal port
        # in the filled range); a restore re-MAPs a mapping with its stored nonce
        first = {}
        reqs, req_nonces = [], set()
        lo_port, hi_port = BASE_PORT, PAIR_PORT
        since, last_new = 0, time.monotonic()
        why = None
        with Sampler(d["pid"], period=0.1) as smp:
            while True:
                lg = self.simctl.log(since)
                for e in lg:
                    since = max(since, e["seq"])
                    f = e.get("fields") or {}
                    if f.get("opcode_name") != "MAP":
                        continue
                    reqs.append(e["t"])
                    nonce = f.get("nonce")
                    req_nonces.add(nonce)
                    if (e.get("result_name") == "SUCCESS" and f.get("lifetime", 0) > 0
                            and lo_port <= f.get("internal_port", 0) < hi_port and nonce not in first):
                        first[nonce] = e["sent"][0]["t"] if e.get("sent") else e["t"]
                if lg:
                    last_new = time.monotonic()
                if len(first) >= want:
                    break
                if time.monotonic() - last_new > quiet_s:
                    why = f"no PCP message for {quiet_s} s"
                    break
                if time.monotonic() > deadline:
                    why = f"{(30 if self.quick else 180)} s limit"
                    break
                time.sleep(0.25)
            time.sleep(0.5)
        for e in self.simctl.log(since):          # stragglers of the last half second
            f = e.get("fields") or {}
            if f.get("opcode_name") == "MAP":
                reqs.append(e["t"])
                req_nonces.add(f.get("nonce"))
        ts = sorted(t - t_spawn for t in first.values())
        done = len(ts) >= want

        def nth(q):
            k = math.ceil(q * want)
            return ts[k - 1] if 0 < k <= len(ts) else None
        cpu_end, _ = cpu_ns(d["pid"])
        r.update({
            "expected": len(expected), "remapped": len(first), "all_remapped": done,
            "remapped_with_stored_nonce": len(expected & set(first)),
            "all_remapped_s": ts[-1] if done else None, "wait_end": why,
            "remapped_50_s": nth(0.5), "remapped_90_s": nth(0.9), "remapped_99_s": nth(0.99),
            "last_remap_s": ts[-1] if ts else None,
            "iwfd_cpu_at_all_s": (smp.at(t_spawn + ts[-1]).get("cpu_ns", 0) / 1e9) if done else None,
            "iwfd_cpu_s": cpu_end / 1e9,
            "ready_s": d["t_ready"] - t_spawn,
            "first_map_s": (min(reqs) - t_spawn) if reqs else None,
            "last_map_s": (max(reqs) - t_spawn) if reqs else None,
            "pcp_requests": len(reqs), "distinct_nonces": len(req_nonces),
            "map_times_hist": self.hist([t - t_spawn for t in reqs]),
            "remap_hist": self.hist(ts),
            "iwfd_VmHWM_kB": kb(d["pid"], "VmHWM"),
            "sim_stats": self.simctl.stats(),
        })
        if not done:
            self.note(f"restore: only {len(first):,} of {want:,} mappings re-MAPped ({why})")
        log("restart: " + json.dumps({k: v for k, v in r.items() if k not in ("sim_stats", "storage_after_stop")}))

    @staticmethod
    def hist(ts, edges=(0.01, 0.1, 0.5, 1, 2, 3, 4, 6, 10, 30)):
        """How many of the times ts (s) fall below each edge (cumulative)."""
        return {f"<{e}s": sum(1 for t in ts if t < e) for e in edges}

    def wait_connected(self, d):
        """iwfd's probe MAP makes it Connected; wait until GetExternalIPAddress has an address."""
        deadline = time.monotonic() + 15
        while True:
            try:
                self.soap_check(d, "GetExternalIPAddress", "", r"NewExternalIPAddress>\d")
                return
            except BenchError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def forget_sim(self):
        """Drop every mapping and log entry in pcpsim (between phases with separate daemons)."""
        gone = self.simctl.command({"cmd": "forget", "kind": "map"}).get("forgotten")
        self.simctl.reset_log()
        log(f"pcpsim: forgot {gone} mappings")

    def mem_one(self, d, label, store):
        st = proc_status(d["pid"])
        store[label] = {"mappings": self.count[d["name"]], "process": d.get("runs", 1),
                        "VmHWM_kB": int(st["VmHWM"].split()[0]), "VmRSS_kB": int(st["VmRSS"].split()[0]),
                        "RssAnon_kB": int(st.get("RssAnon", "0 kB").split()[0])}
        log(f"memory {d['name']} {label}: " + json.dumps(store[label]))

    # -- acceptance (e): fsync & co. per Add, strace -c on a fresh iwfd
    def syscalls(self):
        strace = shutil.which("strace")
        if not strace:
            self.note("strace not installed: no fsync/fdatasync counts")
            return
        name = "iwfd-sys"
        self.count[name] = 0
        d = self.start_iwfd(name, port=SYS_PORT)
        self.wait_connected(d)
        out = os.path.join(self.topo.workdir, "strace-c.txt")
        st = subprocess.Popen([strace, "-c", "-w", "-f", "-e", "trace=" + ",".join(STRACE_SYSCALLS),
                               "-o", out, "-p", str(d["pid"])], stderr=subprocess.PIPE, text=True)
        harness.CLEANUP.push(lambda: st.poll() is None and (st.send_signal(signal.SIGINT), st.wait(10)),
                             f"strace ({st.pid})")
        line = st.stderr.readline()
        if "attached" not in line:
            st.kill()
            self.note(f"strace did not attach: {line.strip()}")
            d["proc"].stop()
            return
        time.sleep(0.2)
        st_before = state_files(d["state"])
        sec, n = self.fill(d, self.n_strace, series=f"{name} (under strace)", start_port=SYS_BASE)
        time.sleep(0.3)
        st.send_signal(signal.SIGINT)
        try:
            st.wait(15)
        except subprocess.TimeoutExpired:
            st.kill()
        calls = {}
        try:
            with open(out) as f:
                for l in f:
                    m = re.match(r"\s*([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(?:(\d+)\s+)?([a-z_0-9]+)\s*$", l)
                    if m and m.group(6) != "total":
                        calls[m.group(6)] = {"calls": int(m.group(4)), "errors": int(m.group(5) or 0),
                                             "seconds": float(m.group(2))}
        except OSError as e:
            self.note(f"strace wrote no summary: {e}")
        self.res["storage"]["strace"] = {"adds": n, "seconds": sec, "syscalls": calls,
                                         "traced": list(STRACE_SYSCALLS),
                                         "state_before": st_before, "state_after": state_files(d["state"])}
        log("strace: " + json.dumps(self.res["storage"]["strace"]))
        d["proc"].stop()

    # -- acceptance (d)/(a)/(e): the fill from 8 control points at once, fresh iwfd
    def fill8(self):
        name = "iwfd8"
        self.count[name] = 0
        d = self.start_iwfd(name, port=IWFD8_PORT)
        self.wait_connected(d)
        time.sleep(1)
        mem = self.res.setdefault("memory_8cp", {})
        self.mem_one(d, "idle (0 mappings)", mem)
        self.fill(d, self.n_big, self.fill_budget, workers=self.workers, start_port=FILL8_PORT,
                  series=f"iwfd, {self.workers} CP")
        if self.count[name] < self.n_big:
            self.note(f"iwfd ({self.workers} control points): the UPnP fill reached {self.count[name]:,} "
                      f"of {self.n_big:,} mappings in the {self.fill_budget} s budget")
        self.alive(d)
        self.mem_one(d, f"after the {self.workers}-CP fill", mem)
        self.res["storage"][f"after the {self.workers}-CP fill"] = state_files(d["state"])
        d["proc"].stop()

    # -- the run
    def run(self):
        self.describe_machine()
        log(f"machine: {self.res['meta']['cpu']}, {self.res['meta']['mem']}, kernel {self.res['meta']['kernel']}")
        self.topo = harness.Topology()
        self.topo.up()
        self.start_sim()
        self.start_iwfd("iwfd")
        self.start_miniupnpd()
        self.wait_connected(self.daemons["iwfd"])
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
        self.count["iwfd2"] = 0
        self.start_iwfd("iwfd2", port=IWFD2_PORT, server=self.topo.addr["carrier"])
        self.wait_connected(self.daemons["iwfd2"])
        self.run_pairs(self.daemons["iwfd2"], "iwfd -> miniupnpd PCP", 5351)
        self.daemons["iwfd2"]["proc"].stop()
        carrier.stop()
        # 3/(d): towards 10,000 mappings by UPnP from one control point, each daemon for at most
        # fill_budget seconds
        for name in ("iwfd", "miniupnpd"):
            self.fill(self.daemons[name], self.n_big - self.count[name], self.fill_budget)
            if self.count[name] < self.n_big:
                self.note(f"{name}: the UPnP fill reached {self.count[name]:,} of {self.n_big:,} mappings "
                          f"in the {self.fill_budget} s budget")
        self.mem("after the big fill (UPnP)")
        self.res["storage"]["after the 1-CP fill"] = state_files(self.daemons["iwfd"]["state"])
        # 4/(b): restart with n_big persisted mappings (the state file is topped up with synthetic
        # entries, loudly, only when the UPnP fill did not get there in its budget)
        self.restart()
        self.mem("after restart (restored)")
        # (c): Add/Delete with n_big mappings in the table (the restored daemon)
        self.run_pairs(self.daemons["iwfd"], f"iwfd -> pcpsim @{self.count['iwfd']:,}", SIM_PORT,
                       count=self.pairs_big, deadline_s=10 if self.quick else 45)
        self.daemons["iwfd"]["proc"].stop()
        self.daemons["iwfd"]["stopped"] = True
        # (e): fsync & co. per Add (fresh iwfd, its own ports), then (d): 8 control points
        self.forget_sim()
        self.syscalls()
        self.forget_sim()
        self.fill8()
        return self.res


# ------------------------------------------------------------------ report

def pair_stats(out, call):
    """Medians/p99s of one call of a pairs workload (server side from the capture, µs)."""
    tx = out["server"]
    sub = tx[0::2] if call == "Add" else tx[1::2]
    cl = out["client_add_ms"] if call == "Add" else out["client_del_ms"]
    g = lambda k: [x[k] for x in sub if k in x]
    return {"n": len(sub), "client_p50_ms": med(cl), "client_p99_ms": pct(cl, 99),
            "server_p50": med(g("total_us")), "rtt_p50": med(g("pcp_rtt_us")),
            "before_p50": med(g("before_pcp_us")), "before_p99": pct(g("before_pcp_us"), 99),
            "after_p50": med(g("after_pcp_us")), "after_p99": pct(g("after_pcp_us"), 99),
            "added_p50": med(g("added_us")), "added_p99": pct(g("added_us"), 99),
            "msgs": (sum(x["pcp_msgs"] for x in sub) / len(sub)) if sub else None}


def sizes(res):
    m = res.get("meta", {})
    if m.get("n_read"):
        return m["n_read"], m["n_big"]
    return (100, 300) if m.get("quick") else (1000, 10000)


def fill_series(res):
    """Fill series -> {"daemon", "workers", "reached", "seconds", "stages": {label: sums}, "curve"}.
    Runs before the stage split (no res["fills"]) give rates per stage from their chunk list."""
    out = {}
    if res.get("fills"):
        for key, ser in res["fills"].items():
            stages, total, curve, off = {}, {"adds": 0, "seconds": 0.0, "resp_bytes": 0}, [], 0.0
            for c in ser["chunks"]:
                for lab, part in c["stages"].items():
                    a = stages.setdefault(lab, {})
                    for k, v in part.items():
                        a[k] = a.get(k, 0) + v
                for k, v in (c.get("total") or {}).items():
                    total[k] = total.get(k, 0) + v
                total["adds"] += c["added"]
                total["seconds"] += c["seconds"]
                total["resp_bytes"] += c.get("resp_bytes", 0)
                total["failed"] = total.get("failed", 0) + c.get("errors", 0)
                curve += [[n, t + off] for n, t in c.get("curve", [])]
                off += c["seconds"]
            out[key] = {"daemon": ser["daemon"], "workers": ser["workers"], "stages": stages,
                        "total": total, "curve": curve,
                        "reached": max((c["from"] + c["added"] for c in ser["chunks"]), default=0)}
        return out
    n_read, n_big = sizes(res)
    bounds = [0, n_read, n_big]
    for f in res.get("meta", {}).get("fills", []):
        ser = out.setdefault(f"{f['daemon']}, 1 CP", {"daemon": f["daemon"], "workers": 1, "stages": {},
                                                     "total": {"adds": 0, "seconds": 0.0}, "curve": [],
                                                     "reached": 0})
        for a, z in zip(bounds, bounds[1:]):
            if a <= f["from"] < z:
                st = ser["stages"].setdefault(f"{a:,}->{z:,}", {"adds": 0, "seconds": 0.0})
                st["adds"] += f["added"]
                st["seconds"] += f["seconds"]
        ser["total"]["adds"] += f["added"]
        ser["total"]["seconds"] += f["seconds"]
        ser["reached"] = max(ser["reached"], f["from"] + f["added"])
    return out


def per_mapping(base, e):
    """(VmRSS at N - idle VmRSS) / N, bytes."""
    if not base or not e or not e.get("mappings"):
        return None
    return (e["VmRSS_kB"] - base["VmRSS_kB"]) * 1024 / e["mappings"]


def io_stages(series):
    """(series, stage, its numbers, Adds) of every iwfd fill stage with /proc/PID/io deltas,
    the whole fill last in each series."""
    for key, s in series.items():
        if s["daemon"] != "iwfd":
            continue
        for lab, st in list(s["stages"].items()) + [("whole fill", s["total"])]:
            n = st.get("adds")
            if n and "write_bytes" in st:
                yield key, lab, st, n


def metrics(res):
    """The comparable numbers of a run: [(key, value, decimals)], same keys in every run that has
    them (older JSONs have fewer).  Keys start with the issue's acceptance item (a)-(f)."""
    M = []
    add = lambda k, v, nd=0: M.append((k, v, nd)) if v is not None else None
    n_read, n_big = sizes(res)
    mem = res.get("memory", {})
    i, mu = mem.get("iwfd", {}), mem.get("miniupnpd", {})
    base = i.get("idle (0 mappings)")
    add("(a) iwfd idle VmRSS, kB", base and base["VmRSS_kB"])
    for lab, tag in (("after the big fill (UPnP)", "after the 1-CP UPnP fill"),
                     ("after restart (restored)", "restored")):
        e = i.get(lab)
        if e:
            add(f"(a) iwfd mappings {tag}", e["mappings"])
            add(f"(a) iwfd VmRSS {tag}, kB", e["VmRSS_kB"])
            add(f"(a) iwfd VmHWM {tag}, kB", e["VmHWM_kB"])
            add(f"(a) iwfd RSS per mapping {tag} (RSS - idle RSS) / n, B", per_mapping(base, e))
    m8 = res.get("memory_8cp", {})
    b8 = m8.get("idle (0 mappings)")
    for lab, e in m8.items():
        if lab.startswith("after"):
            add("(a) iwfd mappings after the 8-CP UPnP fill", e["mappings"])
            add("(a) iwfd VmRSS after the 8-CP UPnP fill, kB", e["VmRSS_kB"])
            add("(a) iwfd RSS per mapping after the 8-CP UPnP fill (RSS - idle RSS) / n, B", per_mapping(b8, e))
    mb = mu.get("idle (0 mappings)")
    add("(a) miniupnpd idle VmRSS, kB", mb and mb["VmRSS_kB"])
    e = mu.get("after the big fill (UPnP)")
    if e:
        add("(a) miniupnpd mappings after the UPnP fill", e["mappings"])
        add("(a) miniupnpd RSS per mapping after the UPnP fill, B", per_mapping(mb, e))
    r = res.get("restart") or {}
    if r:
        add("(b) restore: mappings stored", r.get("mappings"))
        add("(b) restore: of them from the UPnP fill", r.get("filled_by_upnp"))
        # runs before the by-nonce count counted distinct nonces requested (pcpsim answered all)
        add("(b) restore: mappings re-MAPped (distinct nonces)", r.get("remapped", r.get("distinct_nonces")))
        add("(b) restore: all re-MAPped after, s", r.get("all_remapped_s"), 3)
        add("(b) restore: 50% re-MAPped after, s", r.get("remapped_50_s"), 3)
        add("(b) restore: 90% re-MAPped after, s", r.get("remapped_90_s"), 3)
        add("(b) restore: iwfd CPU until all re-MAPped, s", r.get("iwfd_cpu_at_all_s"), 3)
        add("(b) restore: iwfd CPU at the end of the wait, s", r.get("iwfd_cpu_s"), 3)
        add("(b) restore: last MAP after, s", r.get("last_map_s"), 3)
        dn = r.get("remapped", r.get("distinct_nonces"))
        if r.get("pcp_requests") is not None and dn:
            add("(b) restore: MAP requests per mapping re-MAPped", r["pcp_requests"] / dn, 3)
        add("(b) restore: state file bytes", r.get("state_file_bytes"))
    for label, out in res.get("pairs", {}).items():
        for call in ("Add", "Delete"):
            p = pair_stats(out, call)
            for k, nm in (("added_p50", "added p50"), ("added_p99", "added p99"),
                          ("before_p50", "HTTP request -> MAP out p50"),
                          ("after_p50", "MAP answer -> HTTP answer p50"),
                          ("rtt_p50", "PCP RTT p50"), ("server_p50", "server p50")):
                add(f"(c) {label}: {call} {nm}, µs", p[k])
    series = {k: v for k, v in fill_series(res).items() if "strace" not in k}
    for key, s in series.items():
        for lab, st in s["stages"].items():
            if st.get("seconds"):
                add(f"(d) fill {key} {lab}: Adds/s", st["adds"] / st["seconds"], 1)
        add(f"(d) fill {key}: mappings reached", s["reached"])
        add(f"(d) fill {key}: failed Adds", s["total"].get("failed"))
    for key, lab, st, n in io_stages(series):
        add(f"(e) {key} {lab}: write_bytes per Add, B", st["write_bytes"] / n)
        add(f"(e) {key} {lab}: wchar per Add, B", st["wchar"] / n)
        if "log_bytes" in st:
            add(f"(e) {key} {lab}: log bytes per Add, B", st["log_bytes"] / n)
            add(f"(e) {key} {lab}: state wchar per Add (wchar - log - HTTP in wchar), B",
                (st["wchar"] - st["log_bytes"] - st.get("http_wchar_bytes", 0)) / n)
        add(f"(e) {key} {lab}: iwfd CPU per Add, µs", st["cpu_ns"] / n / 1e3)
    for lab, v in (res.get("storage") or {}).items():
        if lab.startswith("after") and isinstance(v, dict) and "bytes" in v:
            add(f"(e) state storage {lab}, bytes", v["bytes"])
    stc = (res.get("storage") or {}).get("strace")
    if stc and stc.get("adds"):
        for sc in ("fsync", "fdatasync", "rename", "openat"):
            c = stc["syscalls"].get(sc, {}).get("calls", 0)
            add(f"(e) strace: {sc} per Add", c / stc["adds"], 2)
    for key, s in res.get("reads", {}).items():
        for name in ("iwfd", "miniupnpd"):
            xs = s.get(name) or []
            if xs:
                tag = "(f) " if key.startswith("GetSpecificPortMappingEntry | keep-alive") else "reads: "
                add(f"{tag}{key}: {name} req/s median", med([x["rps"] for x in xs]))
                add(f"{tag}{key}: {name} p99 ms median", med([x["p99_us"] for x in xs]) / 1e3, 3)
                if tag.startswith("(f)"):
                    add(f"{tag}{key}: {name} req/s best round", max(x["rps"] for x in xs))
    for name, b in res.get("binary", {}).items():
        add(f"binary: {name} stripped, bytes", b.get("stripped"))
    for name, v in res.get("idle", {}).items():
        add(f"idle: {name} CPU ms over {v.get('seconds')} s", v.get("cpu_ms"), 3)
    pr = res.get("pcp_per_read") or {}
    add("PCP messages per UPnP read", pr.get("per_read"), 6)
    return M


def run_title(res, path=None):
    m = res.get("meta", {})
    return (f"{m.get('date_utc', '?')} UTC, commit {m.get('commit', '?')}"
            f"{', QUICK' if m.get('quick') else ''}{', ' + path if path else ''}")


def compare(old, new, old_path=None, new_path=None):
    """Side by side: every metric both runs have, then the ones only the new run has."""
    mo = {k: (v, nd) for k, v, nd in metrics(old)}
    mn = metrics(new)
    L = [f"Comparison  OLD: {run_title(old, old_path)}",
         f"            NEW: {run_title(new, new_path)}"]
    if bool(old.get("meta", {}).get("quick")) != bool(new.get("meta", {}).get("quick")):
        L.append("(one run is --quick, the other full: sizes differ)")
    rows, only = [], []
    for k, v, nd in mn:
        if k in mo:
            ov = mo[k][0]
            rows.append((k, fmt(ov, nd), fmt(v, nd),
                         f"{v / ov:.2f}x" if isinstance(ov, (int, float)) and ov else "n/a"))
        else:
            only.append((k, fmt(v, nd)))
    L += table(("metric", "OLD", "NEW", "NEW/OLD"), rows)
    if only:
        L.append("")
        L.append("Only in NEW (the older run did not measure these):")
        L += table(("metric", "NEW"), only)
    gone = [k for k in mo if k not in {k for k, _, _ in mn}]
    if gone:
        L.append("")
        L.append("Only in OLD: " + "; ".join(gone))
    return "\n".join(L) + "\n"


def report(res):
    L = []
    m = res["meta"]
    n_read, n_big = sizes(res)
    L.append(f"iwfd benchmarks vs miniupnpd — {m['date_utc']} UTC, commit {m['commit']}"
             f"{' (QUICK smoke run: numbers not meaningful)' if m['quick'] else ''}")
    L.append(f"machine: {m['cpu']}, {m['mem']}, kernel {m['kernel']}; {m['wrk']}; {m['miniupnpd']}")
    L.append(f"method: server on CPU {SERVER_CPU}, load generator on CPU {LOAD_CPU}; wrk -t1 "
             f"-c{m['connections']} -d{m['duration_s']}s; {m['rounds']} alternating rounds; medians")
    if m.get("pcp_simulator"):
        L.append(f"PCP server for iwfd: {m['pcp_simulator']}; state files on {m.get('state_dir_fs', '?')}; "
                 f"fill budget {m.get('fill_budget_s')} s per fill")
    loud = [n for n in res["notes"] if n.startswith("!!!")]
    if loud:
        L.append("")
        L += [f"WARNING {n[4:]}" for n in loud]
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
    hdr = ("path", "mappings", "call", "n", "client p50 ms", "client p99 ms", "server p50", "PCP RTT p50",
           "req->MAP p50", "req->MAP p99", "answer->HTTP p50", "answer->HTTP p99", "added p50",
           "added p99", "PCP msgs/call")
    rows = []
    for label, out in res["pairs"].items():
        for call in ("Add", "Delete"):
            p = pair_stats(out, call)
            rows.append((label, fmt(out.get("mappings")), call, str(p["n"]), fmt(p["client_p50_ms"], 2),
                         fmt(p["client_p99_ms"], 2), fmt(p["server_p50"], 0), fmt(p["rtt_p50"], 0),
                         fmt(p["before_p50"], 0), fmt(p["before_p99"], 0), fmt(p["after_p50"], 0),
                         fmt(p["after_p99"], 0), fmt(p["added_p50"], 0), fmt(p["added_p99"], 0),
                         fmt(p["msgs"], 2)))
    L += table(hdr, rows)
    L.append("client = Python http.client in host1 (includes its own overhead); server = router-side "
             "capture, last request byte in -> first response byte out; PCP RTT = MAP out -> answer in "
             "on the router's WAN; req->MAP = last request byte in -> MAP out (before PCP); "
             "answer->HTTP = MAP answer in -> first response byte out (after PCP); "
             "added = server - PCP RTT = req->MAP + answer->HTTP (iwfd's own time)")
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
    L.append("RSS per mapping = (VmRSS with n mappings - VmRSS of the same binary idle) / n "
             "(targets: idle <= 3 MiB = 3,072 kB; <= 6 MiB = 6,144 kB with 10,000; <= 1 KiB a mapping)")
    rows = []
    procs = [("iwfd", res["memory"].get("iwfd", {}), "first process"),
             ("miniupnpd", res["memory"].get("miniupnpd", {}), "")]
    if res.get("memory_8cp"):
        procs.insert(1, ("iwfd", res["memory_8cp"], "8-CP fill process"))
    for name, v, tag in procs:
        base = v.get("idle (0 mappings)")
        for k, e in v.items():
            if (base and e["mappings"] and k.startswith("after") and k != "after the read workloads"
                    and not (name == "miniupnpd" and k.startswith("after restart"))):
                rows.append((f"{name} {k}", fmt(e["mappings"]), fmt(base["VmRSS_kB"]) + (f" ({tag})" if tag else ""),
                             fmt(e["VmRSS_kB"]), fmt(e["VmHWM_kB"]), fmt(per_mapping(base, e), 0)))
    L += table(("daemon, moment", "n", "idle VmRSS kB", "VmRSS kB", "VmHWM kB", "RSS per mapping B"), rows)
    L.append("(the restored process is a new one: its idle baseline is the first process's idle VmRSS)")
    L.append("")
    L.append("Binary (bytes)")
    rows = []
    for name, b in res["binary"].items():
        rows.append((name, fmt(b["file"]), fmt(b["stripped"]), fmt(b["text"]), fmt(b["data"]), fmt(b["bss"]),
                     ", ".join(f"{l} {s // 1024} KiB" for l, s in b["libs"])))
    L += table(("daemon", "file", "stripped", "text", "data", "bss", "shared libraries (besides libc)"), rows)
    L.append("")
    r = res.get("restart") or {}
    if r and "pcp_requests" not in r:
        L.append("4. Restore: did not complete (see the notes); recorded: " +
                 json.dumps({k: v for k, v in r.items() if not isinstance(v, dict)}))
        L.append("")
        r = {}
    if r:
        src = (f"{r['filled_by_upnp']:,} added by UPnP" if r.get("filled_by_upnp") is not None else "")
        if r.get("topped_up"):
            src += f" + {r['topped_up']:,} SYNTHETIC (top-up: {r.get('top_up_how')})"
        L.append(f"4. Restore of {r['mappings']:,} persisted mappings ({src or 'state file'}); "
                 f"service_wait_s 0, replay_rate 0, PCP server pcpsim")
        if "remapped" in r:
            if r.get("all_remapped"):
                L.append(f"   re-MAPped: all {r['remapped']:,} (distinct nonces answered SUCCESS, lifetime > 0), "
                         f"the last {fmt(r['all_remapped_s'], 3)} s after spawn; 50% at "
                         f"{fmt(r.get('remapped_50_s'), 3)} s, 90% at {fmt(r.get('remapped_90_s'), 3)} s, "
                         f"99% at {fmt(r.get('remapped_99_s'), 3)} s")
                L.append(f"   iwfd CPU: {fmt(r.get('iwfd_cpu_at_all_s'), 3)} s from spawn until all were "
                         f"re-MAPped, {fmt(r['iwfd_cpu_s'], 3)} s at the end of the wait")
            else:
                L.append(f"   re-MAPped: only {r['remapped']:,} of {r['mappings']:,} (distinct nonces answered "
                         f"SUCCESS) when the wait ended ({r.get('wait_end')}); the last at "
                         f"{fmt(r.get('last_remap_s'), 3)} s after spawn; 50% at {fmt(r.get('remapped_50_s'), 3)} s, "
                         f"90% at {fmt(r.get('remapped_90_s'), 3)} s")
                L.append(f"   iwfd CPU: {fmt(r['iwfd_cpu_s'], 3)} s at the end of the wait (whole process life)")
            L.append(f"   of them with a nonce of the stored state (pcpsim's table before the stop, plus any "
                     f"top-up): {r.get('remapped_with_stored_nonce', 0):,} of {r.get('expected', 0):,}")
            if r.get("remap_hist"):
                L.append("   re-MAPped before (cumulative, after spawn): " +
                         ", ".join(f"{k} {v:,}" for k, v in r["remap_hist"].items()))
        else:
            L.append(f"   iwfd CPU {fmt(r.get('iwfd_cpu_s'), 3)} s (whole process life)")
        L.append(f"   after spawn: ready {fmt(r.get('ready_s'), 3)} s, first MAP {fmt(r.get('first_map_s'), 3)} s, "
                 f"last MAP {fmt(r.get('last_map_s'), 3)} s; VmHWM {fmt(r.get('iwfd_VmHWM_kB'))} kB")
        if r.get("map_times_hist"):
            L.append("   MAP requests sent before (cumulative, after spawn): " +
                     ", ".join(f"{k} {v:,}" for k, v in r["map_times_hist"].items()))
        L.append(f"   PCP requests {r['pcp_requests']:,} for {r['distinct_nonces']:,} nonces "
                 f"({r['pcp_requests'] / max(1, r['distinct_nonces']):.3f} per nonce); state file "
                 f"{fmt(r['state_file_bytes'])} bytes" +
                 (f"; stop (SIGTERM, save) took {r['stop_s']:.3f} s" if r.get("stop_s") is not None else ""))
        L.append("")
    L.append(f"5. Idle cost over {res['idle'].get('iwfd', {}).get('seconds', '?')} s with "
             f"{m.get('idle_mappings')} live mappings")
    rows = [(n, fmt(v["cpu_ms"], 3), str(v["wakeups"]), str(v["voluntary_cs"]))
            for n, v in res["idle"].items()]
    L += table(("daemon", "CPU ms", "times scheduled", "voluntary switches"), rows)
    series = fill_series(res)
    if res.get("fills"):
        L.append("")
        L.append("6. Fill rates: AddPortMapping/s by stage (mappings held), iwfd against the PCP server, "
                 "keep-alive; 'N CP' = N control points at once, each its own connection and ports")
        rows = []
        for key, s in series.items():
            for lab, st in list(s["stages"].items()) + [("whole fill", s["total"])]:
                if not st.get("adds"):
                    continue
                busy = lambda t: (f"{100 * st[t + '_busy'] / st[t + '_total']:.0f}%"
                                  if st.get(t + "_total") else "n/a")
                per = lambda k: fmt(st[k] / st["adds"] / 1e3, 0) if st.get(k) else "n/a"
                rows.append((key, lab, fmt(st["adds"]), fmt(st["seconds"], 2),
                             fmt(st["adds"] / st["seconds"] if st["seconds"] else None, 1),
                             per("cpu_ns"), per("client_cpu_ns"), per("sim_cpu_ns"),
                             busy("server"), busy("load"), fmt(st.get("failed")) if "failed" in st else ""))
        L += table(("daemon, control points", "stage", "Adds", "seconds", "Adds/s", "daemon CPU µs/Add",
                    "clients CPU µs/Add", "pcpsim CPU µs/Add", f"CPU {SERVER_CPU} busy", f"CPU {LOAD_CPU} busy",
                    "failed Adds"), rows)
        L.append(f"(seconds = time with a fill running; daemon/clients/pcpsim CPU: those processes' own CPU "
                 f"time; CPU {SERVER_CPU} (daemons) and CPU {LOAD_CPU} (control points, PCP server, captures) "
                 f"busy: whole-CPU, other tenants included. When clients + pcpsim CPU per Add approach "
                 f"1e6 / (Adds/s) µs, the load side limits the rate; CPUs busy without our processes' CPU "
                 f"mean a shared machine)")
        for key, s in series.items():
            c = s["curve"]
            if s["daemon"] != "iwfd" or len(c) < 2 or "strace" in key:
                continue
            pts, prev, step = [], (0, 0.0), 1000 if c[-1][0] >= 3000 else max(100, c[-1][0] // 5 // 100 * 100)
            for n, t in c:
                if n % step == 0 or (n, t) == tuple(c[-1]):
                    if n > prev[0] and t > prev[1]:
                        pts.append(f"{prev[0] // step * step:,}-{n:,}: {(n - prev[0]) / (t - prev[1]):.0f}")
                    prev = (n, t)
            L.append(f"   {key}, Adds/s per {step:,} added: " + ", ".join(pts))
    if res.get("fills") or res.get("storage"):
        L.append("")
        L.append("7. Storage writes per AddPortMapping (iwfd; /proc/PID/io deltas over the fill / Adds)")
        rows = []
        for key, lab, st, n in io_stages(series):
            http = st.get("resp_bytes", 0) / n
            http_w = st.get("http_wchar_bytes", 0) / n     # runs before the calibration: 0
            logb = st.get("log_bytes", 0) / n
            rows.append((key, lab, fmt(n), fmt(st["write_bytes"] / n, 0),
                         fmt(st["cancelled_write_bytes"] / n, 0), fmt(st["wchar"] / n, 0),
                         fmt(logb, 0), f"{fmt(http, 0)} ({fmt(http_w, 0) if 'http_wchar_bytes' in st else '?'})",
                         fmt(st["wchar"] / n - logb - http_w, 0), fmt(st["syscw"] / n, 2)))
        L += table(("daemon, control points", "stage", "Adds", "write_bytes/Add", "cancelled/Add", "wchar/Add",
                    "log/Add", "HTTP answers/Add (in wchar)", "state wchar/Add", "write calls/Add"), rows)
        L.append("write_bytes: bytes the process dirtied in the page cache (whole 4 KiB pages, the log "
                 "file's included); cancelled: dirty pages dropped by truncate/unlink/rename-over; wchar: "
                 "bytes through write()/writev() (state file, log file and HTTP answers on sockets; "
                 "sendto() of PCP is not counted); log = growth of iwfd's log file (stdout, --log-level "
                 "info); HTTP answers = bytes the control points received, in brackets the part wchar "
                 "counts (calibrated per process with 200 GetExternalIPAddress: write()/writev() are "
                 "counted, send()/sendmsg() are not); state wchar = wchar - log - that part, the state "
                 "storage's share")
        for lab, v in (res.get("storage") or {}).items():
            if lab.startswith("after") and isinstance(v, dict) and "bytes" in v:
                L.append(f"   state storage {lab}: {v['bytes']:,} bytes (" +
                         ", ".join(f"{k} {b:,}" for k, b in v["files"].items()) + ")")
        if r.get("storage_after_stop"):
            v = r["storage_after_stop"]
            L.append(f"   state storage after the SIGTERM before the restore: {v['bytes']:,} bytes")
        stc = (res.get("storage") or {}).get("strace")
        if stc and stc.get("adds"):
            parts = [f"{sc} {c['calls']:,} ({c['calls'] / stc['adds']:.2f}/Add, {c['seconds'] * 1e3:.1f} ms)"
                     for sc, c in sorted(stc["syscalls"].items(), key=lambda x: -x[1]["calls"])]
            L.append(f"   strace -c -w -f of a fresh iwfd over {stc['adds']:,} Adds from one control point "
                     f"(empty table; {stc['seconds']:.1f} s under strace): " + (", ".join(parts) or "no calls")
                     + f"; traced: {', '.join(stc['traced'])}")
    if m.get("fills"):
        L.append("")
        L.append("Fill chunks (AddPortMapping, keep-alive where the server allows it):")
        for f in m["fills"]:
            L.append(f"   {f['daemon']}: {f['from']:,} -> {f['from'] + f['added']:,} mappings in {f['seconds']:.1f} s "
                     f"({f['added'] / max(1e-9, f['seconds']):.0f}/s, {f.get('workers', 1)} control point(s))")
    conns = m.get("connection_header") or {}
    if conns:
        L.append("Connection header on a plain GET (keep-alive test): " +
                 ", ".join(f"{n}: {v}" for n, v in conns.items()))
    L.append("")
    L.append("Acceptance numbers (issue 7; the same keys as --compare):")
    L += [f"   {k}: {fmt(v, nd)}" for k, v, nd in metrics(res) if k.startswith("(")]
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
    ap.add_argument("--report", metavar="JSON", nargs="+",
                    help="only print the report of an earlier run's JSON; with two (OLD.json NEW.json): "
                         "print the two runs side by side for the metrics both have")
    ap.add_argument("--compare", metavar="OLD.json",
                    help="after the report (of this run, or of --report JSON), print it side by side "
                         "with an earlier run")
    ap.add_argument("--quick", action="store_true", help="smoke run (< 1 min), numbers not meaningful")
    ap.add_argument("--out", help="write the report here and the raw JSON to OUT.json")
    ap.add_argument("--iwfd", default=os.path.join(ROOT, "build-bench", "iwf", "iwfd"))
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=int, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--idle", type=int, help="idle measurement seconds")
    ap.add_argument("--fill-budget", type=int,
                    help="seconds each fill towards 10,000 mappings may take (each daemon from one "
                         "control point, then iwfd from --workers control points); default 180")
    ap.add_argument("--workers", type=int, default=WORKERS,
                    help=f"control points of the concurrent fill (default {WORKERS})")
    ap.add_argument("--plain-pcpsim", action="store_true",
                    help="use tests/pcpsim/pcpsim.py as it is instead of bench/fastsim.py")
    args = ap.parse_args()
    old = None
    if args.compare:
        with open(args.compare) as f:
            old = json.load(f)
    if args.report:
        if len(args.report) > 2:
            ap.error("--report takes one JSON, or two to compare")
        runs = []
        for path in args.report:
            with open(path) as f:
                runs.append(json.load(f))
        if len(runs) == 2:
            text = compare(runs[0], runs[1], args.report[0], args.report[1])
        else:
            text = report(runs[0])
            if old is not None:
                text += "\n" + compare(old, runs[0], args.compare, args.report[0])
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
    if args.out:                       # the raw data first: a report bug must not lose a run
        with open(args.out + ".json", "w") as f:
            json.dump(b.res, f, indent=1, default=str)
    try:
        text = report(b.res)
        if old is not None:
            text += "\n" + compare(old, b.res, args.compare, args.out and args.out + ".json")
    except Exception:
        import traceback
        text = "bench: the report failed (raw data in OUT.json):\n" + traceback.format_exc()
        rc = rc or 1
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return rc


if __name__ == "__main__":
    sys.exit(main())

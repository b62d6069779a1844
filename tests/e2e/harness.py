"""Network-namespace harness for iwfd's end-to-end tests (stdlib only, run as root).

Topology "routed" (issue 2; cascaded NAT = routed with router_nat=True; "dslite" below):

  host1 (eth0 192.168.77.11) --\\
                                 br-lan 192.168.77.1  [router: iwfd, routes, no NAT]  wan0 10.99.0.2
  host2 (eth0 192.168.77.12) --/                                                          |
                                                                                    cwan0 10.99.0.1
                                       [carrier: miniupnpd as PCP server]  ext0 11.22.33.44/32 <-> ext0p

Topology "dslite" (issue 6): same LAN; the router (B4) has an IPv6-only WAN (fd00:99::2 <->
fd00:99::1) and reaches the carrier (AFTR, miniupnpd serving PCP over IPv6) for IPv4 only through
the softwire sw0 (192.0.0.2 <-> 192.0.0.1), a VXLAN-over-IPv6 stand-in for RFC 6333's ipip6
tunnel (the test kernel has no ip6tnl); see _up_dslite_wan().

Topology "464xlat" (issue "NAT64 CPEs", case 1): same IPv4 LAN; the router is a 464XLAT CPE
(RFC 6877) with an IPv6-only WAN (fd00:99::2 <-> fd00:99::1).  Its CLAT is Debian's tayga as a
stateless SIIT: each LAN host 192.168.77.N is 2001:db8:c1a7::c0a8:4dNN (RFC 6052 /96 embedding
in the CLAT's dedicated prefix, RFC 6877 §6.3), IPv4 destinations are 64:ff9b::/96 + address.
The carrier is the PLAT: tayga again (the same host map, onto 10.64.0.0/24) with NAT44 in
nftables behind it onto 11.22.33.44 = a stateful NAT64 (RFC 6146); pcpsim serves PCP over IPv6
and its hook tests/pcpsim/hooks/nat64_forward.py installs each mapping as an nftables DNAT
11.22.33.44:port -> the tayga address of the internal IPv6 address; see _up_464xlat_wan().

Topology "nat64" (issue "NAT64 CPEs", case 2): the 464xlat topology (host1 and host2 IPv4
through the CLAT, the same PLAT) plus an IPv6 LAN: the router routes 2001:db8:77::/64 on br-lan
(2001:db8:77::1; the carrier routes it back via the router's WAN address) and host3 is an
IPv6-only LAN host (2001:db8:77::13, no IPv4 at all) that reaches IPv4 through the PLAT
(64:ff9b::/96).  The PLAT's tayga has a static map of host3's address onto its pool
(10.64.1.13), so an inbound mapping for host3 is the same DNAT in front of tayga (the
nat64_forward hook reads the map lines); see _up_nat64_lan().  Placeholders: {host3} (=
{host3_v6}), {host3_pool}, {router_lan_v6}, {lan_v6_net}.

Every namespace is named <prefix>-<role> with prefix "iwf<pid>" so parallel runs never collide;
interfaces are created directly inside their namespaces, so their short fixed names cannot clash
either.  Everything created is registered in a cleanup stack that runs on normal exit, on
exceptions, on SIGINT/SIGTERM/SIGHUP and (as a last resort) at interpreter exit.
"""
import atexit
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "ip"
NFT = "/usr/sbin/nft"
MINIUPNPD = "/usr/sbin/miniupnpd"
TCPDUMP = "/usr/bin/tcpdump"
PYTHON = "/usr/bin/python3"      # Debian's python3-miniupnpc lives here, not in pyenv
HERE = os.path.dirname(os.path.abspath(__file__))

LAN_NET = "192.168.77.0/24"
ADDR = {
    "host1": "192.168.77.11",
    "host2": "192.168.77.12",
    "router_lan": "192.168.77.1",
    "router_wan": "10.99.0.2",
    "carrier": "10.99.0.1",
    # miniupnpd refuses private/reserved external addresses (RFC 1918, 100.64/10, TEST-NETs,
    # 198.18/15 ...): a public-looking /32 that lives on a veth pair entirely inside the carrier
    # namespace.  No packet is ever sent to it.
    "ext": "11.22.33.44",
    # optional "Internet" host on the carrier's external side (Topology(internet=True))
    "internet": "11.22.99.99",
}
# DS-Lite (RFC 6333): the router (B4) has an IPv6-only WAN; IPv4 crosses a softwire to the AFTR
# (the "carrier" namespace).  192.0.0.0/29 is RFC 6333 §5.7's B4/AFTR softwire prefix.
ADDR_DSLITE = dict(ADDR, router_wan="fd00:99::2", carrier="fd00:99::1",
                   b4="192.0.0.2", aftr="192.0.0.1")
# 464XLAT (RFC 6877): router = CLAT (tayga, stateless), carrier = PLAT (tayga + NAT44).
ADDR_464XLAT = dict(ADDR, router_wan="fd00:99::2", carrier="fd00:99::1",
                    clat_prefix="2001:db8:c1a7::/96",        # the CLAT's dedicated prefix (§6.3)
                    host1_v6="2001:db8:c1a7::c0a8:4d0b",     # RFC 6052 /96: 192.168.77.11
                    host2_v6="2001:db8:c1a7::c0a8:4d0c",
                    clat_v4="192.0.0.1",                     # RFC 7335: the CLAT's own IPv4
                    nat64_prefix="64:ff9b::/96",              # RFC 6052 well-known prefix (PLAT)
                    plat_hosts="10.64.0.0/24",               # PLAT's IPv4 side for the CLAT prefix
                    plat_v4="10.64.255.1", plat_v6="fd00:64::1")
# NAT64 with IPv6-only LAN hosts (issue 15 case 2): 464XLAT's addresses plus a routed LAN prefix.
ADDR_NAT64 = dict(ADDR_464XLAT, lan_v6_net="2001:db8:77::/64", router_lan_v6="2001:db8:77::1",
                  host3="2001:db8:77::13", host3_v6="2001:db8:77::13",
                  host3_pool="10.64.1.13")               # tayga's static map of host3 (PLAT)
TAYGA = "/usr/sbin/tayga"
SOFTWIRE_IF = "sw0"
SOFTWIRE_VNI = 6333
IFACE = {"host": "eth0", "lan_bridge": "br-lan", "router_wan": "wan0", "carrier_lan": "cwan0",
         "carrier_ext": "ext0"}
ROLES = ("host1", "host2", "router", "carrier")   # plus "internet" when asked for


def _v4_hex(v4):
    """'192.168.77.0' -> 'c0a8:4d00' (the last 32 bits of an RFC 6052 /96 address)."""
    b = [int(x) for x in v4.split(".")]
    return f"{b[0] << 8 | b[1]:x}:{b[2] << 8 | b[3]:x}"


def log(msg):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class HarnessError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# cleanup stack + signals

class Cleanup:
    """LIFO of callables; run() is idempotent and shielded from further SIGINT/SIGTERM."""

    def __init__(self):
        self._stack = []
        self._lock = threading.Lock()

    def push(self, fn, what):
        with self._lock:
            self._stack.append((fn, what))

    def run(self):
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                old[sig] = signal.signal(sig, signal.SIG_IGN)
            except ValueError:        # not the main thread
                pass
        try:
            while True:
                with self._lock:
                    if not self._stack:
                        break
                    fn, what = self._stack.pop()
                try:
                    fn()
                except Exception as e:  # keep going: everything else must still be removed
                    log(f"cleanup of {what} failed: {e}")
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)


CLEANUP = Cleanup()
atexit.register(CLEANUP.run)


def _to_exit(signum, _frame):
    raise SystemExit(128 + signum)


def install_signal_handlers():
    """SIGTERM/SIGHUP unwind like an exception so `finally`/`with` blocks tear down."""
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even if our parent ignored it
    signal.signal(signal.SIGTERM, _to_exit)
    signal.signal(signal.SIGHUP, _to_exit)


# ---------------------------------------------------------------------------------------------
# small process helpers

def sh(argv, check=True, timeout=30, input=None):
    """Run argv in the root namespace; returns CompletedProcess (text)."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise HarnessError(f"{shlex.join(argv)} -> {p.returncode}: {p.stderr.strip()}")
    return p


def netns_list():
    p = sh([IP, "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def sweep_stale(log_fn=log):
    """Delete namespaces left by runs whose process is gone (names iwf<pid>-<role>)."""
    for ns in netns_list():
        m = re.fullmatch(r"iwf(\d+)-(host1|host2|router|carrier|internet)", ns)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
            continue
        pids = sh([IP, "netns", "pids", ns], check=False).stdout.split()
        if pids:
            # Deleting the name would hide these processes, not stop them; leave it to a human.
            log_fn(f"stale namespace {ns} (run {pid} is gone) still holds processes {pids}; "
                   f"stop them, then: ip netns delete {ns}")
            continue
        log_fn(f"removing stale namespace {ns} (run {pid} is gone)")
        sh([IP, "netns", "delete", ns], check=False)


class Proc:
    """A long-running process in a namespace whose output goes to a file we can read back."""

    def __init__(self, name, argv, logpath, env=None):
        self.name = name
        self.argv = argv
        self.logpath = logpath
        self._log = open(logpath, "w+b")
        self.p = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env)
        self.pid = self.p.pid
        CLEANUP.push(self.kill, f"process {name} ({self.pid})")

    def output(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def running(self):
        return self.p.poll() is None

    def wait_for(self, regex, timeout):
        """Wait until the output matches regex; returns the match or raises HarnessError."""
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.output())
            if m:
                return m
            if not self.running():
                raise HarnessError(f"{self.name} exited with {self.p.returncode} before "
                                   f"/{regex}/; output:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.name}: no /{regex}/ within {timeout}s; output:\n"
                                   f"{self.output()[-3000:]}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal our own child by pid; SIGKILL if it does not exit in time. Returns exit code."""
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self._log.close()
        return self.p.returncode

    def kill(self):
        if self.p.poll() is None:
            self.stop(signal.SIGTERM, timeout=5)
        if not self._log.closed:
            self._log.close()


# ---------------------------------------------------------------------------------------------
# topology

class Topology:
    """The routed (issue 2), cascaded (router_nat) or DS-Lite (kind="dslite") topology.
    Use as a context manager."""

    def __init__(self, keep=False, workdir=None, prefix=None, internet=False, router_nat=False,
                 kind="routed"):
        """internet=True: the carrier's external veth peer lives in an extra namespace
        "internet" (address {internet}) instead of inside the carrier, so data-path checks can
        send packets to the mapped external address and port."""
        self.prefix = prefix or f"iwf{os.getpid()}"
        self.roles = ROLES + (("internet",) if internet else ())
        self.internet = internet
        # router_nat=True: cascaded NAT (seed 004 §5.6): the router masquerades the LAN behind
        # its WAN address and the carrier has no route back to the LAN subnet.
        self.router_nat = router_nat
        self.ns = {r: f"{self.prefix}-{r}" for r in self.roles}
        self.keep = keep
        # kind "dslite": IPv6-only WAN router<->carrier, IPv4 over a softwire (see up_dslite).
        if kind not in ("routed", "dslite", "464xlat", "nat64"):
            raise HarnessError(f"unknown topology {kind!r}")
        if kind == "nat64":        # an IPv6-only LAN host beside the IPv4 ones
            self.roles = self.roles + ("host3",)
            self.ns = {r: f"{self.prefix}-{r}" for r in self.roles}
        if kind != "routed" and router_nat:
            raise HarnessError(f"{kind}: no NAT44 in the CPE (router_nat must be false)")
        self.kind = kind
        self.addr = dict({"dslite": ADDR_DSLITE, "464xlat": ADDR_464XLAT, "nat64": ADDR_NAT64}.get(kind, ADDR))
        self.iface = dict(IFACE)
        if kind == "dslite":
            self.iface["softwire"] = SOFTWIRE_IF
        # the router's IPv4 address as seen by the carrier (permission rules, canary)
        self.cpe_v4 = self.addr[{"dslite": "b4", "464xlat": "clat_v4", "nat64": "clat_v4"}.get(kind, "router_wan")]
        if kind in ("464xlat", "nat64"):
            self.iface.update(clat="clat", plat="nat64")
        self.lan_net = LAN_NET
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"{self.prefix}-")
        self._created = []

    # -- running things inside namespaces
    def argv(self, role, argv):
        return [IP, "netns", "exec", self.ns[role]] + list(argv)

    def run(self, role, argv, check=False, timeout=60, input=None):
        if isinstance(argv, str):
            argv = shlex.split(argv)
        return sh(self.argv(role, argv), check=check, timeout=timeout, input=input)

    def spawn(self, role, name, argv, env=None):
        logpath = os.path.join(self.workdir, f"{name}.log")
        return Proc(name, self.argv(role, argv), logpath, env=env)

    # -- bring up / tear down
    def _netns_add(self, role):
        ns = self.ns[role]
        sh([IP, "netns", "add", ns])
        self._created.append(ns)
        CLEANUP.push(lambda: self._netns_del(ns), f"namespace {ns}")
        self.run(role, [IP, "link", "set", "lo", "up"], check=True)
        # This topology is IPv4 only; keep IPv6 chatter (DAD, MLD, RS) out of the captures.
        self.run(role, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"], check=False)
        self.run(role, ["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"], check=False)

    def _netns_del(self, ns):
        if self.keep:
            log(f"--keep: leaving namespace {ns}")
            return
        # Processes we started are killed by their own cleanup entries (pushed later, so run
        # first); anything still inside would keep the namespace alive, so say so loudly.
        p = sh([IP, "netns", "pids", ns], check=False)
        if p.stdout.strip():
            log(f"namespace {ns} still has processes {p.stdout.split()}")
        sh([IP, "netns", "delete", ns], check=False)

    def _veth(self, role_a, name_a, role_b, name_b):
        sh([IP, "link", "add", name_a, "netns", self.ns[role_a], "type", "veth",
            "peer", "name", name_b, "netns", self.ns[role_b]])

    def up(self):
        install_signal_handlers()
        sweep_stale()
        if not self.keep:
            CLEANUP.push(lambda: shutil.rmtree(self.workdir, ignore_errors=True),
                         f"work dir {self.workdir}")
        log(f"topology {self.prefix}: namespaces {', '.join(self.ns.values())}; work dir {self.workdir}")
        for r in self.roles:
            self._netns_add(r)
        a, i = self.addr, self.iface
        # LAN: bridge in the router, one veth per host; snooping off so SSDP multicast floods.
        self.run("router", [IP, "link", "add", i["lan_bridge"], "type", "bridge",
                            "mcast_snooping", "0"], check=True)
        for n, host in ((1, "host1"), (2, "host2")):
            port = f"lan{n}"
            self._veth("router", port, host, i["host"])
            self.run("router", [IP, "link", "set", port, "master", i["lan_bridge"], "up"], check=True)
            self.run(host, [IP, "addr", "add", f"{a[host]}/24", "dev", i["host"]], check=True)
            self.run(host, [IP, "link", "set", i["host"], "up"], check=True)
            self.run(host, [IP, "route", "add", "default", "via", a["router_lan"]], check=True)
            self.run(host, [IP, "route", "add", "224.0.0.0/4", "dev", i["host"]], check=True)
        self.run("router", [IP, "addr", "add", f"{a['router_lan']}/24", "dev", i["lan_bridge"]], check=True)
        self.run("router", [IP, "link", "set", i["lan_bridge"], "up"], check=True)
        # WAN link router <-> carrier.
        self._veth("router", i["router_wan"], "carrier", i["carrier_lan"])
        if self.kind == "dslite":
            self._up_dslite_wan()
        elif self.kind in ("464xlat", "nat64"):
            self._up_464xlat_wan()
            if self.kind == "nat64":
                self._up_nat64_lan()
        else:
            self._up_routed_wan()
        self._up_carrier_ext()
        self._probe()
        return self

    def _up_routed_wan(self):
        a, i = self.addr, self.iface
        self.run("router", [IP, "addr", "add", f"{a['router_wan']}/24", "dev", i["router_wan"]], check=True)
        self.run("router", [IP, "link", "set", i["router_wan"], "up"], check=True)
        self.run("router", [IP, "route", "add", "default", "via", a["carrier"]], check=True)
        self.run("router", [IP, "route", "add", "224.0.0.0/4", "dev", i["lan_bridge"]], check=True)
        self.run("router", ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=True)
        self.run("carrier", [IP, "addr", "add", f"{a['carrier']}/24", "dev", i["carrier_lan"]], check=True)
        self.run("carrier", [IP, "link", "set", i["carrier_lan"], "up"], check=True)
        if not self.router_nat:
            self.run("carrier", [IP, "route", "add", self.lan_net, "via", a["router_wan"]], check=True)
        else:
            self.run("router", [NFT, "-f", "-"], check=True, input=(
                "table ip cpe_nat {\n"
                "  chain postrouting {\n"
                "    type nat hook postrouting priority 100; policy accept;\n"
                f"    oifname \"{i['router_wan']}\" ip saddr {self.lan_net} masquerade\n"
                "  }\n}\n"))
        self.run("carrier", [IP, "route", "add", "224.0.0.0/4", "dev", i["carrier_lan"]], check=True)

    def _up_dslite_wan(self):
        """DS-Lite: the WAN link carries IPv6 only; IPv4 between B4 and AFTR crosses a softwire.

        RFC 6333 encapsulates IPv4 directly in IPv6 (`ip -6 tunnel ... mode ipip6`).  The test
        kernel has no ip6tnl module (nor sit/gre), so the softwire here is a point-to-point
        VXLAN over the IPv6 WAN link: IPv4 inside Ethernet inside UDP/IPv6 (port 4789).  The
        WAN interfaces never get an IPv4 address; the only IPv4 path between router and carrier
        is the softwire.  A stand-in for the encapsulation, not for the architecture."""
        a, i = self.addr, self.iface
        sw = i["softwire"]
        for role, wan, me, peer, v4 in (("router", i["router_wan"], a["router_wan"], a["carrier"], a["b4"]),
                                        ("carrier", i["carrier_lan"], a["carrier"], a["router_wan"], a["aftr"])):
            for k in ("all", "default", wan):
                self.run(role, ["sysctl", "-q", "-w", f"net.ipv6.conf.{k}.disable_ipv6=0"], check=True)
            self.run(role, ["sysctl", "-q", "-w", f"net.ipv6.conf.{wan}.accept_ra=0"], check=False)
            self.run(role, [IP, "-6", "addr", "add", f"{me}/64", "dev", wan, "nodad"], check=True)
            self.run(role, [IP, "link", "set", wan, "up"], check=True)
            self.run(role, [IP, "link", "add", sw, "type", "vxlan", "id", str(SOFTWIRE_VNI),
                            "local", me, "remote", peer, "dstport", "4789", "dev", wan], check=True)
            self.run(role, [IP, "addr", "add", f"{v4}/29", "dev", sw], check=True)
            self.run(role, [IP, "link", "set", sw, "up"], check=True)
            self.run(role, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=True)
        # B4: all IPv4 into the softwire; AFTR: the subscriber's LAN behind this softwire.
        self.run("router", [IP, "route", "add", "default", "via", a["aftr"], "dev", sw], check=True)
        self.run("router", [IP, "route", "add", "224.0.0.0/4", "dev", i["lan_bridge"]], check=True)
        self.run("carrier", [IP, "route", "add", self.lan_net, "via", a["b4"], "dev", sw], check=True)
        self.run("carrier", [IP, "route", "add", "224.0.0.0/4", "dev", sw], check=True)

    def _up_464xlat_wan(self):
        """464XLAT (RFC 6877): an IPv6-only WAN; the LAN's IPv4 is translated twice.

        CLAT (router): Debian's tayga, stateless (SIIT, RFC 7915): the LAN /24 maps one to one
        onto the CLAT's dedicated prefix ({clat_prefix}, RFC 6877 §6.3; the host's address is
        its IPv4 address in the last 32 bits, RFC 6052 /96), IPv4 destinations onto the PLAT's
        prefix {nat64_prefix}; ports are kept.  PLAT (carrier): tayga with the same host map
        onto {plat_hosts}, then NAT44 (nftables masquerade) onto {ext}: tayga + NAT44 is the
        usual Linux stateful NAT64 (RFC 6146).  Inbound PCP mappings are DNATs in front of
        tayga, installed by pcpsim's hook (tests/pcpsim/hooks/nat64_forward.py)."""
        a, i = self.addr, self.iface
        for role, wan, me in (("router", i["router_wan"], a["router_wan"]),
                              ("carrier", i["carrier_lan"], a["carrier"])):
            for k in ("all", "default", wan):
                self.run(role, ["sysctl", "-q", "-w", f"net.ipv6.conf.{k}.disable_ipv6=0"], check=True)
            self.run(role, ["sysctl", "-q", "-w", f"net.ipv6.conf.{wan}.accept_ra=0"], check=False)
            self.run(role, [IP, "-6", "addr", "add", f"{me}/64", "dev", wan, "nodad"], check=True)
            self.run(role, [IP, "link", "set", wan, "up"], check=True)
            self.run(role, ["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"], check=True)
            self.run(role, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=True)
        lan24 = self.lan_net.split("/")[0]
        host_map = f"map {lan24}/24 {a['clat_prefix'].split('/')[0]}{_v4_hex(lan24)}/120"
        self.tayga("router", "clat", i["clat"], [
            f"ipv4-addr {a['clat_v4']}", f"prefix {a['nat64_prefix']}", host_map])
        self.run("router", [IP, "route", "add", "default", "dev", i["clat"]], check=True)
        self.run("router", [IP, "-6", "route", "add", a["clat_prefix"], "dev", i["clat"]], check=True)
        self.run("router", [IP, "-6", "route", "add", "default", "via", a["carrier"]], check=True)
        self.run("router", [IP, "route", "add", "224.0.0.0/4", "dev", i["lan_bridge"]], check=True)
        plat_map = f"map {a['plat_hosts']} {a['clat_prefix'].split('/')[0]}{_v4_hex(lan24)}/120"
        plat_lines = [f"ipv4-addr {a['plat_v4']}", f"ipv6-addr {a['plat_v6']}",
                      f"prefix {a['nat64_prefix']}", plat_map]
        if self.kind == "nat64":
            # the IPv6-only LAN host: a static one-to-one map onto the PLAT's pool (RFC 6146's
            # stateful NAT64 would bind it dynamically; a static binding keeps inbound mappings
            # a plain DNAT in front of tayga, like the CLAT addresses)
            plat_lines.append(f"map {a['host3_pool']} {a['host3_v6']}")
        self.tayga("carrier", "plat", i["plat"], plat_lines)
        self.run("carrier", [IP, "route", "add", "10.64.0.0/16", "dev", i["plat"]], check=True)
        self.run("carrier", [IP, "-6", "route", "add", a["nat64_prefix"], "dev", i["plat"]], check=True)
        self.run("carrier", [IP, "-6", "route", "add", a["clat_prefix"], "via", a["router_wan"]], check=True)
        self.run("carrier", [NFT, "-f", "-"], check=True, input=(
            "table ip plat_nat44 {\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority 100; policy accept;\n"
            f"    oifname \"{i['carrier_ext']}\" ip saddr 10.64.0.0/16 snat to {a['ext']}\n"
            "  }\n}\n"))

    def _up_nat64_lan(self):
        """The IPv6 LAN of the "nat64" topology: the router routes {lan_v6_net} on br-lan (its
        IPv6 WAN and forwarding come from _up_464xlat_wan), host3 is IPv6 only on it (default
        route via the router; NAT64 destinations 64:ff9b::/96 go the same way, to the PLAT), and
        the carrier routes the prefix back to the router's WAN address."""
        a, i = self.addr, self.iface
        br = i["lan_bridge"]
        for k in ("all", "default", br):
            self.run("router", ["sysctl", "-q", "-w", f"net.ipv6.conf.{k}.disable_ipv6=0"], check=True)
        self.run("router", ["sysctl", "-q", "-w", f"net.ipv6.conf.{br}.accept_dad=0"], check=False)
        self.run("router", [IP, "-6", "addr", "add", f"{a['router_lan_v6']}/64", "dev", br, "nodad"],
                 check=True)
        self._veth("router", "lan3", "host3", i["host"])
        self.run("router", [IP, "link", "set", "lan3", "master", br, "up"], check=True)
        self.run("host3", ["sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0"], check=False)
        for k in ("all", "default", i["host"]):
            self.run("host3", ["sysctl", "-q", "-w", f"net.ipv6.conf.{k}.disable_ipv6=0"], check=True)
        self.run("host3", ["sysctl", "-q", "-w", f"net.ipv6.conf.{i['host']}.accept_dad=0"], check=False)
        self.run("host3", ["sysctl", "-q", "-w", f"net.ipv6.conf.{i['host']}.accept_ra=0"], check=False)
        self.run("host3", [IP, "-6", "addr", "add", f"{a['host3_v6']}/64", "dev", i["host"], "nodad"],
                 check=True)
        self.run("host3", [IP, "link", "set", i["host"], "up"], check=True)
        self.run("host3", [IP, "-6", "route", "add", "default", "via", a["router_lan_v6"]], check=True)
        self.run("carrier", [IP, "-6", "route", "add", a["lan_v6_net"], "via", a["router_wan"]], check=True)

    def tayga(self, role, name, tun, lines):
        """Debian's tayga in role's namespace on a tun of its own, in the foreground."""
        if not os.path.exists(TAYGA):
            raise HarnessError(f"{TAYGA} is missing: apt-get install tayga (./dev.sh deps)")
        d = os.path.join(self.workdir, f"tayga-{name}")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "tayga.conf")
        with open(conf, "w") as f:
            f.write(f"# written by tests/e2e/harness.py for run {self.prefix}\n"
                    f"tun-device {tun}\ndata-dir {d}\n" + "\n".join(lines) + "\n")
        self.run(role, [TAYGA, "-c", conf, "--mktun"], check=True)
        self.run(role, [IP, "link", "set", tun, "up"], check=True)
        proc = self.spawn(role, f"tayga-{name}", [TAYGA, "-c", conf, "--nodetach"])
        setattr(self, f"tayga_{name}", proc)
        return proc

    def _up_carrier_ext(self):
        a, i = self.addr, self.iface
        if not self.internet:
            # Carrier's external side: a veth pair with both ends inside the carrier namespace.
            sh([IP, "-n", self.ns["carrier"], "link", "add", i["carrier_ext"], "type", "veth",
                "peer", "name", i["carrier_ext"] + "p"])
            self.run("carrier", [IP, "link", "set", i["carrier_ext"] + "p", "up"], check=True)
        else:
            # The peer is an "Internet" host namespace: still nothing leaves our namespaces.
            self._veth("carrier", i["carrier_ext"], "internet", i["host"])
            self.run("internet", [IP, "addr", "add", f"{a['internet']}/32", "dev", i["host"]], check=True)
            self.run("internet", [IP, "link", "set", i["host"], "up"], check=True)
            self.run("internet", [IP, "route", "add", f"{a['ext']}/32", "dev", i["host"]], check=True)
            self.run("internet", [IP, "route", "add", "default", "via", a["ext"], "dev", i["host"],
                                  "onlink"], check=True)
        self.run("carrier", [IP, "addr", "add", f"{a['ext']}/32", "dev", i["carrier_ext"]], check=True)
        self.run("carrier", [IP, "link", "set", i["carrier_ext"], "up"], check=True)
        if self.internet:
            self.run("carrier", [IP, "route", "add", f"{a['internet']}/32", "dev", i["carrier_ext"]],
                     check=True)
        self.run("carrier", ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=True)

    def _probe(self):
        a = self.addr
        # 464XLAT: through the CLAT and the PLAT to the carrier's own external address
        target = {"dslite": a.get("aftr"), "464xlat": a["ext"], "nat64": a["ext"]}.get(self.kind, a["carrier"])
        # Sanity: the LAN reaches the carrier through the router (no NAT).
        # (no ping on minimal Debian: a TCP connect to a closed port must be refused by the
        # carrier, which proves routing both ways without NAT)
        probe = ("import socket,sys\ns=socket.socket();s.settimeout(3)\n"
                 f"try: s.connect(('{target}', 9))\n"
                 "except ConnectionRefusedError: sys.exit(0)\nexcept OSError as e: sys.exit(str(e))\n")
        p = self.run("host1", [PYTHON, "-c", probe])
        if p.returncode != 0:
            raise HarnessError(f"host1 cannot reach the carrier ({target}): {p.stdout}{p.stderr}")
        if self.kind == "nat64":
            # host3 (IPv6 only) through the PLAT: {ext} as 64:ff9b::/96 + address (RFC 6052)
            v6 = "64:ff9b::" + _v4_hex(a["ext"])
            probe6 = probe.replace("socket.socket()", "socket.socket(socket.AF_INET6)").replace(
                f"('{target}', 9)", f"('{v6}', 9)")
            p = self.run("host3", [PYTHON, "-c", probe6])
            if p.returncode != 0:
                raise HarnessError(f"host3 cannot reach the carrier ({v6}): {p.stdout}{p.stderr}")

    def down(self):
        CLEANUP.run()

    def __enter__(self):
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc):
        self.down()
        return False

    def vars(self):
        """Placeholders for scenario strings."""
        v = dict(self.addr)
        v.update({f"ns_{r}": n for r, n in self.ns.items()})
        v.update({f"if_{k}": n for k, n in self.iface.items()})
        v.update(lan_net=self.lan_net, workdir=self.workdir, e2e=HERE, python=PYTHON,
                 cpe_v4=self.cpe_v4, topology=self.kind)
        return v


# ---------------------------------------------------------------------------------------------
# carrier: Debian's miniupnpd as the PCP server

NFT_TABLE = "filter"                 # miniupnpd 2.3.1 defaults, set explicitly in the config too
NFT_FORWARD_CHAIN = "miniupnpd"
NFT_NAT_CHAIN = "prerouting_miniupnpd"
NFT_POSTNAT_CHAIN = "postrouting_miniupnpd"

NFT_SKELETON = f"""\
table inet {NFT_TABLE} {{
    chain forward {{
        type filter hook forward priority 0; policy accept;
        jump {NFT_FORWARD_CHAIN}
    }}
    chain {NFT_FORWARD_CHAIN} {{
    }}
    chain prerouting {{
        type nat hook prerouting priority -100; policy accept;
        jump {NFT_NAT_CHAIN}
    }}
    chain postrouting {{
        type nat hook postrouting priority 100; policy accept;
        jump {NFT_POSTNAT_CHAIN}
    }}
    chain {NFT_NAT_CHAIN} {{
    }}
    chain {NFT_POSTNAT_CHAIN} {{
    }}
}}
"""


MINIUPNPD_DSLITE_LISTEN = "listening_ip={carrier_lan}"


class Miniupnpd:
    """miniupnpd 2.3.1 (nftables) in the carrier namespace, PCP only, foreground, own files."""

    def __init__(self, topo, min_lifetime=120, max_lifetime=86400, extra_conf=""):
        self.topo = topo
        self.dir = os.path.join(topo.workdir, "miniupnpd")
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "miniupnpd.conf")
        self.pidfile = os.path.join(self.dir, "miniupnpd.pid")
        self.proc = None
        self.min_lifetime = min_lifetime
        self.max_lifetime = max_lifetime
        self.extra_conf = extra_conf
        self._nft_ready = False

    def config_text(self):
        t = self.topo
        return f"""\
# written by tests/e2e/harness.py for run {t.prefix}
ext_ifname={t.iface['carrier_ext']}
# LAN side of the carrier = the link towards the CPE; PCP requests must come from this subnet.
{self.listening_lines()}
# HTTP port for UPnP; UPnP itself is disabled below, 0 = any free port.
port=0
enable_upnp=no
enable_natpmp=yes
pcp_allow_thirdparty=yes
secure_mode=no
ipv6_disable={'no' if t.kind == 'dslite' else 'yes'}
min_lifetime={self.min_lifetime}
max_lifetime={self.max_lifetime}
system_uptime=no
clean_ruleset_interval=0
uuid=8e3a1c5e-2f0b-4b8e-9d11-{abs(hash(t.prefix)) % 10**12:012d}
upnp_table_name={NFT_TABLE}
upnp_nat_table_name={NFT_TABLE}
upnp_forward_chain={NFT_FORWARD_CHAIN}
upnp_nat_chain={NFT_NAT_CHAIN}
upnp_nat_postrouting_chain={NFT_POSTNAT_CHAIN}
{self.extra_conf}
# Permission rules (internal address = the LAN host behind the CPE, or the CPE itself).
allow 1-65535 {t.lan_net} 1-65535
allow 1-65535 {t.cpe_v4}/32 1-65535
deny 0-65535 0.0.0.0/0 0-65535
"""

    def listening_lines(self):
        t = self.topo
        if t.kind != "dslite":
            return f"listening_ip={t.iface['carrier_lan']}"
        return MINIUPNPD_DSLITE_LISTEN.format(**t.iface)

    def nft_setup(self):
        """Create the table and chains miniupnpd expects (Debian's nft_init.sh is broken)."""
        if self._nft_ready:
            return
        self.topo.run("carrier", [NFT, "-f", "-"], check=True, input=NFT_SKELETON)
        self._nft_ready = True

    def nft_flush(self):
        """miniupnpd leaves its rules behind when it stops; flush its three chains."""
        for chain in (NFT_FORWARD_CHAIN, NFT_NAT_CHAIN, NFT_POSTNAT_CHAIN):
            self.topo.run("carrier", [NFT, "flush", "chain", "inet", NFT_TABLE, chain])

    def ruleset(self):
        p = self.topo.run("carrier", [NFT, "list", "table", "inet", NFT_TABLE])
        return p.stdout

    def nat_rules(self):
        p = self.topo.run("carrier", [NFT, "list", "chain", "inet", NFT_TABLE, NFT_NAT_CHAIN])
        return "\n".join(l.strip() for l in p.stdout.splitlines() if "dnat" in l)

    def start(self, timeout=10):
        self.nft_setup()
        with open(self.conf, "w") as f:
            f.write(self.config_text())
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        self.proc = self.topo.spawn("carrier", "miniupnpd",
                                    [MINIUPNPD, "-d", "-f", self.conf, "-P", self.pidfile])
        self.proc.wait_for(r"Listening for NAT-PMP/PCP traffic on port", timeout)
        if "Port forwarding is impossible" in self.proc.output():
            # a reserved/private external address: miniupnpd would answer NO_RESOURCES to all
            raise HarnessError("miniupnpd refuses the external address:\n" + self.proc.output())
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
        self.nft_flush()

    def running(self):
        return self.proc is not None and self.proc.running()


class Pcpsim:
    """The project's PCP server simulator (tests/pcpsim/pcpsim.py) in the carrier namespace,
    for faults miniupnpd cannot make (forced result codes, an older PCP version, dropped
    deletes ...).  It answers PCP only and installs no rule: no data path through it.  Its
    table and fault rules are read and changed over its control socket (ctl)."""

    PCPSIM = os.path.join(os.path.dirname(HERE), "pcpsim", "pcpsim.py")
    NAT64_HOOK = os.path.join(os.path.dirname(HERE), "pcpsim", "hooks", "nat64_forward.py")
    NAT64_TABLE = "pcpsim_nat64"

    def __init__(self, topo, settings=None):
        self.topo = topo
        self.settings = dict(settings or {})
        self.control = os.path.join(topo.workdir, "pcpsim.sock")
        self.proc = None
        self.starts = 0

    def start(self, timeout=10):
        import json
        c = self.topo.addr["carrier"]
        listen = f"[{c}]:5351" if ":" in c else f"{c}:5351"
        argv = [PYTHON, self.PCPSIM, "--listen", listen, "--external-ip", self.topo.addr["ext"],
                "--control", self.control]
        if self.settings:
            argv += ["--set", json.dumps(self.settings)]
        env = None
        if self.topo.kind in ("464xlat", "nat64"):
            # the PLAT: each MAP becomes a DNAT in front of the carrier's tayga (a data path)
            argv += ["--hook", self.NAT64_HOOK]
            env = dict(os.environ, PCPSIM_NAT64_TAYGA_CONF=os.path.join(
                self.topo.workdir, "tayga-plat", "tayga.conf"),
                PCPSIM_NAT64_EXT_IF=self.topo.iface["carrier_ext"],
                PCPSIM_NAT64_TABLE=self.NAT64_TABLE)
        self.starts += 1
        self.proc = self.topo.spawn("carrier", "pcpsim" if self.starts == 1 else
                                    f"pcpsim-{self.starts}", argv, env=env)
        self.proc.wait_for(r"pcpsim ready", timeout)
        return self

    def stop(self):
        """Stop it; its table is gone (a new start is a carrier that lost its state)."""
        if self.proc is not None:
            self.proc.stop()

    def running(self):
        return self.proc is not None and self.proc.running()

    def ctl(self, cmd):
        """One control command (dict) -> reply (dict); HarnessError when it cannot be sent."""
        if os.path.dirname(self.PCPSIM) not in sys.path:
            sys.path.insert(0, os.path.dirname(self.PCPSIM))
        import json
        import pcpsim
        try:
            return pcpsim.ctl(self.control, json.dumps(cmd))
        except (OSError, ValueError) as e:
            raise HarnessError(f"pcpsim control {cmd}: {e}")

    def table(self):
        """The carrier's table, one line per mapping:
        'TCP 192.168.77.11:40000 -> 11.22.33.44:40000 nonce <hex> left <s>s'."""
        r = self.ctl({"cmd": "mappings"})
        names = {6: "TCP", 17: "UDP"}
        return "\n".join(f"{names.get(m['protocol'], m['protocol'])} {m['internal_addr']}:"
                         f"{m['internal_port']} -> {m['external_addr']}:{m['external_port']} "
                         f"nonce {m['nonce']} left {m['lifetime_remaining']}s"
                         for m in r.get("mappings", []))

    def nat64_rules(self):
        """464XLAT: the NAT64's DNAT maps the hook keeps ('' elsewhere)."""
        if self.topo.kind not in ("464xlat", "nat64"):
            return ""
        return self.topo.run("carrier", [NFT, "list", "table", "ip", self.NAT64_TABLE]).stdout

    # the nft-step interface of Miniupnpd
    def ruleset(self):
        return self.table() + "\n" + self.nat64_rules()

    def nat_rules(self):
        return self.table()


# ---------------------------------------------------------------------------------------------
# router: iwfd

READY_RE = r"ready: (http://\S+/rootDesc\.xml)"


class Iwfd:
    def __init__(self, topo, exe, args=(), http_port=5000, config=None):
        """config: a dict written as iwfd's JSON config file (--config); flags still win."""
        self.topo = topo
        self.exe = os.path.abspath(exe)
        self.extra = list(args)
        # The scenarios are timed for a 5 s start-up wait (PCP_SERVICE_WAIT); iwfd's default is
        # sized for a fleet (60 s, bench/fleet.md), so say it unless the scenario does.
        config = dict(config or {})
        config["pcp"] = dict(config.get("pcp", {}))
        config["pcp"].setdefault("service_wait_s", 5)
        import json
        self.config = os.path.join(topo.workdir, "iwfd-config.json")
        with open(self.config, "w") as f:
            json.dump(config, f, indent=2)
        self.http_port = http_port
        self.state = os.path.join(topo.workdir, "iwfd-state.json")
        # iwfctl's socket in the run's own directory: parallel runs never share the default
        # /run/iwfd/control (the directory is made by iwfd, 0700)
        self.control = os.path.join(topo.workdir, "ctl", "control")
        self.proc = None
        self.url = None
        self.starts = 0

    def argv(self):
        t = self.topo
        base = [self.exe, "--foreground", "--lan-if", t.iface["lan_bridge"],
                "--lan-addr", t.addr["router_lan"], "--http-port", str(self.http_port),
                "--pcp-server", self.pcp_server()]
        if self.state is not None:   # None: no --state flag (iwfd's default place)
            base += ["--state", self.state]
        base += ["--log-level", "debug", "--control-socket", self.control]
        if self.config:
            base = base[:1] + ["--config", self.config] + base[1:]
        return base + self.extra   # later flags override earlier ones

    def pcp_server(self):
        c = self.topo.addr["carrier"]
        return f"[{c}]:5351" if ":" in c else c

    def start(self, timeout=15):
        self.starts += 1
        name = "iwfd" if self.starts == 1 else f"iwfd-{self.starts}"
        self.proc = self.topo.spawn("router", name, self.argv())
        self.url = self.proc.wait_for(READY_RE, timeout).group(1)
        return self

    def stop(self):
        return self.proc.stop() if self.proc else None

    def log_text(self):
        return self.proc.output() if self.proc else ""


# ---------------------------------------------------------------------------------------------
# packet capture on an interface of a namespace

class Capture:
    def __init__(self, topo, role, iface, name="capture", bpf="udp port 5351"):
        self.topo = topo
        self.role = role
        self.iface = iface
        self.path = os.path.join(topo.workdir, f"{name}.pcap")
        self.name = name
        self.bpf = bpf
        self.proc = None

    def start(self, timeout=10):
        # -U: write each packet at once; -n: no DNS; -s 0 full packets.
        self.proc = self.topo.spawn(self.role, self.name,
                                    [TCPDUMP, "-n", "-U", "--immediate-mode", "-s", "0", "-i", self.iface,
                                     "-w", self.path] + shlex.split(self.bpf))
        self.proc.wait_for(r"listening on", timeout)
        return self

    def stop(self):
        time.sleep(0.3)   # let the last packets reach the file
        if self.proc:
            self.proc.stop(signal.SIGINT)
        import pcpwire
        return pcpwire.pcp_messages_in_pcap(self.path)

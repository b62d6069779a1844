#!/usr/bin/python3
"""The README demo: one port mapping from a LAN host through iwfd to the carrier's PCP server.

  demo.py --build DIR [--iwfd PATH] [--keep]

Brings up the namespaces (two LAN hosts, the router running iwfd, the carrier running Debian's
miniupnpd as PCP server, an Internet host beyond the carrier), runs upnpc on LAN host 1 (add,
list, delete) and shows both sides: the UPnP answers, iwfd's log, PCP on the wire, the carrier's
mapping in its nftables ruleset, and a TCP connection from the Internet host that reaches LAN
host 1 through the mapping (and no longer does after the delete).  Everything is
torn down at the end, also on failure or Ctrl-C.  Exit status 0 only when every step did what
it should.
"""
import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

WIDTH = 78


def section(title):
    print()
    print("=" * WIDTH)
    print(f" {title}")
    print("=" * WIDTH, flush=True)


def show(text, prefix="  "):
    lines = text.rstrip().splitlines()
    # upnpc's banner says the same thing every time; keep the answers.
    lines = [l for l in lines if not re.match(r"(upnpc : |\s*\(c\) |Go to |for more information)", l)]
    print("\n".join(prefix + l for l in lines) if lines else prefix + "(nothing)", flush=True)


class LogTail:
    """Prints the iwfd log lines that appeared since the last call."""

    def __init__(self, proc):
        self.proc = proc
        self.seen = 0

    def new(self):
        lines = self.proc.output().splitlines()
        fresh = lines[self.seen:]
        self.seen = len(lines)
        return "\n".join(fresh)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="meson build directory (iwfd in DIR/iwf/iwfd)")
    ap.add_argument("--iwfd", help="path to iwfd (overrides --build)")
    ap.add_argument("--keep", action="store_true", help="leave namespaces up for inspection")
    a = ap.parse_args()
    exe = a.iwfd or os.path.join(a.build, "iwf", "iwfd")
    if not os.access(exe, os.X_OK):
        print(f"demo: no iwfd binary at {exe} (build first: ninja -C {a.build})", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("demo: needs root (it creates network namespaces)", file=sys.stderr)
        return 2

    failures = []

    def check(ok, what):
        print(f"  [{'ok' if ok else 'FAILED'}] {what}", flush=True)
        if not ok:
            failures.append(what)
        return ok

    try:
        with H.Topology(keep=a.keep, internet=True) as topo:
            ad = topo.addr
            section("Topology (network namespaces, created for this demo)")
            print(f"""\
  LAN host 1 {topo.ns['host1']:<18} {ad['host1']}
  LAN host 2 {topo.ns['host2']:<18} {ad['host2']}
  router     {topo.ns['router']:<18} br-lan {ad['router_lan']}, wan0 {ad['router_wan']}  (iwfd, no NAT)
  carrier    {topo.ns['carrier']:<18} {ad['carrier']} towards the router, external {ad['ext']}
             (Debian miniupnpd as the carrier's PCP server)
  Internet   {topo.ns['internet']:<18} {ad['internet']} (a host on the carrier's external side)""")

            carrier = H.Miniupnpd(topo).start()
            print(f"\n  miniupnpd started in the carrier (PCP on {ad['carrier']}:5351)")
            iwfd = H.Iwfd(topo, exe).start()
            tail = LogTail(iwfd.proc)
            print(f"  iwfd started in the router: {' '.join(iwfd.argv()[1:])}")
            section("iwfd log: start-up")
            show(tail.new())

            url = iwfd.url
            host = ad["host1"]
            cap = H.Capture(topo, "router", topo.iface["router_wan"], name="demo-wan").start()
            pcp_seen = [0]
            mtail = LogTail(carrier.proc)

            def pcp_on_wire():
                import pcpwire
                msgs = pcpwire.pcp_messages_in_pcap(cap.path)
                fresh = msgs[pcp_seen[0]:]
                pcp_seen[0] = len(msgs)
                print("\n  PCP on the router's WAN link (tcpdump, decoded by tests/e2e/pcpwire.py):")
                if not fresh:
                    print("    (no PCP packet)")
                for m in fresh:
                    arrow = f"{m['src']} > {m['dst']}"
                    print(f"    {arrow}: " + (f"INVALID {m['error']}" if "error" in m
                                               else pcpwire.describe(m)))
                lines = [l for l in mtail.new().splitlines() if "PCP" in l]
                print("\n  carrier miniupnpd log:")
                show("\n".join(lines) or "(nothing)", "    ")

            def upnpc(title, args):
                section(f"LAN host 1: upnpc {args}   ({title})")
                t0 = time.monotonic()
                p = topo.run("host1", ["upnpc", "-u", url] + args.split())
                show(p.stdout + p.stderr)
                print(f"  -> exit code {p.returncode} after {time.monotonic() - t0:.1f} s")
                time.sleep(0.3)
                log = tail.new().splitlines()
                print("\n  iwfd log:")
                if len(log) > 40:
                    print(f"    ... ({len(log) - 40} earlier lines in this step not shown)")
                show("\n".join(log[-40:]), "    ")
                pcp_on_wire()
                return p

            def data_path(title, expect):
                """Listener on LAN host 1 port 40000, connection from the Internet host."""
                section(f"Data path {title}: Internet host -> {ad['ext']}:40000")
                dp = os.path.join(H.HERE, "clients", "dataplane.py")
                lis = topo.spawn("host1", f"listener-{int(expect)}",
                                 [H.PYTHON, dp, "listen", "tcp", "40000", "--timeout", "4"])
                lis.wait_for("listening", 10)
                p = topo.run("internet", [H.PYTHON, dp, "send", "tcp", ad["ext"], "40000",
                                          "hello-from-the-internet", "--timeout", "2"])
                print(f"  Internet host: {p.stdout.strip()}")
                rc = lis.p.wait(15)
                print(f"  LAN host 1 listener: {lis.output().strip().splitlines()[-1]}")
                reached = p.returncode == 0 and rc == 0
                return reached == expect

            def carrier_view(title):
                section(f"Carrier (miniupnpd) mapping: {title}")
                rules = carrier.nat_rules()
                show(rules or "(no DNAT rules in the carrier)")
                return rules

            p = upnpc("AddPortMapping 40000/TCP", f"-a {host} 40000 40000 TCP")
            check(p.returncode == 0 and f"internal {host}:40000" in p.stdout,
                  "upnpc -a: iwfd accepted the mapping")
            rules = carrier_view("after the add")
            check(f"dport 40000 dnat ip to {host}:40000" in rules,
                  "the carrier's nftables hold DNAT 40000 -> LAN host 1")

            ok = data_path("after the add", expect=True)
            check(ok, f"a TCP connection from the Internet host to {ad['ext']}:40000 reaches LAN host 1")

            p = upnpc("GetGenericPortMappingEntry, from iwfd's own table", "-l")
            check(re.search(rf"TCP\s+40000->{re.escape(host)}:40000", p.stdout) is not None,
                  "upnpc -l lists the mapping")

            p = upnpc("DeletePortMapping 40000/TCP", "-d 40000 TCP")
            check("returned : 0" in p.stdout, "upnpc -d: iwfd deleted the mapping")
            rules = carrier_view("after the delete")
            check("dport 40000 dnat" not in rules, "the carrier's DNAT for 40000 is gone")
            ok = data_path("after the delete", expect=False)
            check(ok, f"{ad['ext']}:40000 no longer reaches LAN host 1")

            section("Tear-down")
            rc = iwfd.stop()
            check(rc == 0, f"iwfd exited on SIGTERM with status {rc}")
            show(tail.new())
            carrier.stop()
            print("  miniupnpd stopped; namespaces are removed next")
    except H.HarnessError as e:
        print(f"\ndemo: harness error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ndemo: interrupted; everything torn down", file=sys.stderr)
        return 130
    left = [n for n in H.netns_list() if n.startswith(f"iwf{os.getpid()}-")]
    if not a.keep:
        check(not left, "no namespace left behind")
    section("Result")
    if failures:
        print(f"  DEMO FAILED: {len(failures)} check(s) failed: " + "; ".join(failures))
        return 1
    print("  DEMO OK: the mapping travelled LAN -> iwfd -> carrier PCP server and back, and was removed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

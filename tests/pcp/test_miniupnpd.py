#!/usr/bin/python3
"""The real client code (tests/pcp/pcp_cli: engine + libevent adapter) against Debian's
miniupnpd 2.3.1 as the PCP server, in the network namespaces of tests/e2e/harness.py
(topology "routed": pcp_cli runs in the router, miniupnpd in the carrier).

Proves: MAP with THIRD_PARTY (and without, for the router itself) creates the carrier's DNAT;
renewal of a short lifetime at 1/2..5/8 of it with the same nonce (RFC 6887 §11.2.1); delete
with the right nonce removes it (§15); a delete with a wrong nonce is NOT_AUTHORIZED and changes
nothing; and miniupnpd's deviation: a MAP with a wrong nonce *takes the mapping over*
(SUCCESS) where §11.3 wants NOT_AUTHORIZED, after which the first nonce can no longer delete it.

usage: test_miniupnpd.py PCP_CLI        (root; exit 77 = skipped)
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)
import harness as H  # noqa: E402  (tests/e2e/harness.py)
import test_sim  # noqa: E402  (the Cli helper)

NONCE_A = "0102030405060708090a0b0c"
NONCE_B = "ffffffffffffffffffffff02"
TOPO = None
CARRIER = None


def cli(*args):
    """pcp_cli inside the router namespace, talking to miniupnpd on the carrier."""
    return test_sim.Cli("--server", TOPO.addr["carrier"], *args, prefix=TOPO.argv("router", []))


def dnat_rules():
    return CARRIER.nat_rules()


class MiniupnpdTest(unittest.TestCase):
    def run_cli(self, *args, timeout=30):
        c = cli(*args)
        try:
            rc = c.wait(timeout)
        finally:
            c.kill()
        return rc, c.lines

    def event(self, lines, word, **fields):
        for line in lines:
            parts = line.split()
            if len(parts) >= 2 and parts[1] == word:
                d = dict(kv.split("=", 1) for kv in parts[2:] if "=" in kv)
                d["_ms"] = int(parts[0])
                if all(d.get(k) == str(v) for k, v in fields.items()):
                    return d
        self.fail(f"no {word} {fields} in {lines}")

    def test_1_third_party_map_renew_delete(self):
        host1, ext = TOPO.addr["host1"], TOPO.addr["ext"]
        c = cli("--internal", host1, "--third-party", "--iport", 40000, "--eport", 40000, "--prefer-failure",
                "--lifetime", 8, "--nonce", NONCE_A, "--renewals", 1, "--delete")
        try:
            m = c.expect("MAPPED", timeout=15, renewal=0)
            self.assertEqual(m["external"], f"{ext}:40000")
            self.assertEqual(m["lifetime"], "8")
            self.assertEqual(m["nonce"], NONCE_A)
            self.assertIn(f"dnat ip to {host1}:40000", dnat_rules())
            r = c.expect("MAPPED", timeout=15, renewal=1)
            # §11.2.1: first renewal at 1/2..5/8 of 8 s, never less than 4 s after the request
            self.assertGreaterEqual(r["_ms"] - m["_ms"], 3900)
            self.assertLessEqual(r["_ms"] - m["_ms"], 5000 + 500)
            self.assertEqual(r["external"], f"{ext}:40000")
            self.assertEqual(r["nonce"], NONCE_A)
            d = c.expect("DELETED", timeout=15)
            self.assertEqual(d["result"], "SUCCESS")
            self.assertEqual(d["timeout"], "0")
            self.assertEqual(c.wait(10), 0)
        finally:
            c.kill()
        self.assertNotIn(f"{host1}:40000", dnat_rules())

    def test_2_map_for_the_router_itself(self):
        wan = TOPO.addr["router_wan"]
        rc, lines = self.run_cli("--internal", wan, "--iport", 40100, "--eport", 40100, "--lifetime", 600,
                                 "--protocol", "udp", "--hold-ms", 300, "--delete")
        self.assertEqual(rc, 0, lines)
        self.event(lines, "MAPPED", external=f"{TOPO.addr['ext']}:40100")
        self.event(lines, "DELETED", result="SUCCESS")

    def test_3_wrong_nonce(self):
        host1 = TOPO.addr["host1"]
        owner = cli("--internal", host1, "--third-party", "--iport", 40200, "--eport", 40200, "--lifetime", 600,
                    "--nonce", NONCE_A, "--hold-ms", 60000)
        try:
            owner.expect("MAPPED", timeout=15, renewal=0, nonce=NONCE_A)
            # a delete with a wrong nonce: NOT_AUTHORIZED (§15), the mapping stays
            rc, lines = self.run_cli("--internal", host1, "--third-party", "--iport", 40200, "--nonce", NONCE_B,
                                     "--delete-only")
            self.assertEqual(rc, 0, lines)
            self.event(lines, "DELETED", result="NOT_AUTHORIZED", timeout=0)
            self.assertIn(f"dnat ip to {host1}:40200", dnat_rules())
            # DEVIATION: a MAP with a wrong nonce succeeds and takes the mapping over
            # (RFC 6887 §11.3 wants NOT_AUTHORIZED)
            rc, lines = self.run_cli("--internal", host1, "--third-party", "--iport", 40200, "--eport", 40200,
                                     "--lifetime", 600, "--nonce", NONCE_B)
            self.assertEqual(rc, 0, lines)
            self.event(lines, "MAPPED", external=f"{TOPO.addr['ext']}:40200", nonce=NONCE_B)
            # ... so the first nonce can no longer delete it
            rc, lines = self.run_cli("--internal", host1, "--third-party", "--iport", 40200, "--nonce", NONCE_A,
                                     "--delete-only")
            self.event(lines, "DELETED", result="NOT_AUTHORIZED")
            self.assertIn(f"dnat ip to {host1}:40200", dnat_rules())
        finally:
            owner.kill()
        rc, lines = self.run_cli("--internal", host1, "--third-party", "--iport", 40200, "--nonce", NONCE_B,
                                 "--delete-only")
        self.event(lines, "DELETED", result="SUCCESS")
        self.assertNotIn(f"{host1}:40200", dnat_rules())


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    test_sim.PCP_CLI = os.path.abspath(sys.argv.pop(1))
    if os.geteuid() != 0 or not os.path.exists(H.MINIUPNPD):
        print("skipped: needs root and /usr/sbin/miniupnpd")
        sys.exit(77)
    global TOPO, CARRIER
    with H.Topology() as topo:
        TOPO = topo
        # lifetimes as short as 6 s so that a renewal happens within the test
        CARRIER = H.Miniupnpd(topo, min_lifetime=6).start()
        H.CLEANUP.push(CARRIER.stop, "miniupnpd")
        time.sleep(0.2)
        prog = unittest.main(verbosity=2, exit=False)
        ok = prog.result.wasSuccessful()
        if not ok:
            print("--- miniupnpd output ---\n" + CARRIER.proc.output())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

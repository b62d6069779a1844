#!/usr/bin/env python3
"""ab_reads.py - GetSpecificPortMappingEntry keep-alive throughput of two iwfd binaries,
measured in alternating rounds on the same topology (bench.py's), so that a shared, noisy
machine disturbs both alike. Root needed.

  bench/ab_reads.py --old /tmp/old-rel/iwf/iwfd --new build-bench/iwf/iwfd [--rounds 6]

Each binary gets 1,000 mappings from one control point (distinct port ranges), then each
round runs wrk (4 connections, 5 s) against one and then the other, the order swapped every
round. Prints requests/s per round, the median and the best round of each."""
import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--old", required=True)
ap.add_argument("--new", required=True)
ap.add_argument("--rounds", type=int, default=6)
a = ap.parse_args()
ns = argparse.Namespace(quick=False, rounds=1, duration=5, idle=3, fill_budget=400, iwfd=a.new,
                        connections=4, workers=8, plain_pcpsim=False, out=None, report=None, compare=None)
b = bench.Bench(ns)
b.topo = bench.harness.Topology()
b.topo.up()
try:
    b.start_sim()
    b.exe = os.path.abspath(a.new)
    b.start_iwfd("iwfd")
    new = b.daemons["iwfd"]
    b.wait_connected(new)
    b.exe = os.path.abspath(a.old)
    b.count["iwfd2"] = 0
    b.start_iwfd("iwfd2", port=bench.IWFD2_PORT)
    old = b.daemons["iwfd2"]
    b.wait_connected(old)
    base = {"new": bench.BASE_PORT, "old": 30000}
    b.fill(new, 1000)
    b.fill(old, 1000, start_port=base["old"])
    res = {"new": [], "old": []}
    for r in range(a.rounds):
        order = (("new", new), ("old", old)) if r % 2 == 0 else (("old", old), ("new", new))
        for name, d in order:
            x = b.wrk(d, "specific", "keep", base[name] + 500)
            res[name].append(x["rps"])
            print(f"round {r} {name}: {x['rps']:.0f} req/s, {x['errors']} errors", flush=True)
    for k, v in res.items():
        print(f"{k}: median {statistics.median(v):.0f} req/s, best {max(v):.0f}, rounds {[round(y) for y in v]}")
finally:
    for dd in b.daemons.values():
        try:
            dd["proc"].stop()
        except Exception:
            pass
    b.topo.down()

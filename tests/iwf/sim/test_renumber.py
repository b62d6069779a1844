#!/usr/bin/python3
"""RFC 6887 §14.2 (mapping update) end to end: the carrier renumbers its external pool and
tells iwfd with unsolicited MAP responses (pcpsim "renumber"). iwfd takes the new address at
once: GetExternalIPAddress (upnpc), the mapping table and the carrier's mapping follow
without a renewal, and later renewals suggest the new address and succeed."""

import json
import os
import re
import socket

from iwfsim import TCP, EXTERNAL_IP, Env, main, upnpc, wait_for

NEW_IP = "203.0.113.44"
NEWER_IP = "203.0.113.45"


def external_ip(env):
    rc, out = upnpc(env.url, "-s")
    m = re.search(r"ExternalIPAddress = (\S+)", out)
    return m.group(1) if m else None


def control(sock, req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(sock)
        f = s.makefile("rwb")
        f.write((json.dumps(req) + "\n").encode())
        f.flush()
        return json.loads(f.readline())
    finally:
        s.close()


def sim_map(env, port):
    maps = [m for m in env.sim.mappings() if m["protocol"] == TCP and m["internal_port"] == port]
    assert len(maps) == 1, env.sim.mappings()
    return maps[0]


def iwfd_maps(env, since, nonce):
    """MAP requests iwfd sent with this nonce after log seq `since`."""
    return [e for e in env.sim.user_maps(since) if e["fields"]["nonce"] == nonce]


def test_renumber_unsolicited_update(exe):
    # the carrier has been up a while, so that its Epoch reset (part 2) is visible
    env = Env(exe, start=False, sim_settings={"epoch": 100000})
    with env:
        sock = os.path.join(env.workdir, "control")
        env.iwfd.extra_args += ["--control-socket", sock]
        env.start()
        env.wait_connected()
        assert external_ip(env) == EXTERNAL_IP
        ports = {8020: 45020, 8021: 45021}
        nonces = {}
        for iport, eport in ports.items():
            assert env.add(eport, iport) == 0
            m = sim_map(env, iport)
            assert m["external_addr"] == EXTERNAL_IP and m["external_port"] == eport, m
            nonces[iport] = m["nonce"]

        # 1. The carrier moves both mappings, its Epoch running on (pcpsim epoch_reset false).
        # iwfd asked for 7200 s: no renewal is due for an hour.
        s0 = env.sim.last_seq()
        rep = env.sim.ctl.renumber(NEW_IP, epoch_reset=False)
        assert rep["moved"] == 2 and len(rep["sent"]) == 2, rep
        assert not [x for x in rep["sent"] if "error" in x], rep
        wait_for(lambda: external_ip(env) == NEW_IP, 10, interval=0.2,
                 what="GetExternalIPAddress reporting the renumbered address")
        wait_for(lambda: control(sock, {"command": "stats"})["pcp"]["updates"] == 2, 10,
                 interval=0.2, what="both updates taken (iwfctl stats pcp.updates)")
        # learnt from the updates alone: iwfd sent nothing for these mappings meanwhile
        for iport, eport in ports.items():
            sent = iwfd_maps(env, s0, nonces[iport])
            assert not sent, [e["fields"] for e in sent]
            assert (TCP, eport) in env.table(), env.table()
            held = sim_map(env, iport)
            assert (held["nonce"], held["external_addr"], held["external_port"]) == \
                (nonces[iport], NEW_IP, eport), held
        st = control(sock, {"command": "status"})
        assert NEW_IP in json.dumps(st), st
        # TR-181 Device.PCP. and the state journal follow too
        eip = "Device.PCP.Client.1.Server.1.ExternalIPAddress"
        rep = control(sock, {"op": "dm.get", "paths": [eip], "id": 1})
        assert rep["ok"] and {p["name"]: p["value"] for p in rep["params"]}[eip] == NEW_IP, rep
        # (the journal stores addresses as 16 bytes, IPv4 as ::ffff:a.b.c.d)
        v4mapped = bytes(10) + b"\xff\xff" + socket.inet_aton(NEW_IP)
        wait_for(lambda: v4mapped in open(env.iwfd.state, "rb").read(), 10,
                 interval=0.2, what="the new address in the state journal")

        # 2. Again, now with the Epoch reset RFC 6887 §8.5 asks for, 8 s left on each mapping
        # and at most 8 s granted from now on: the first update also reveals a lost state, so
        # iwfd re-creates the other mapping (no address suggested); both stay, and the
        # renewals (at 4..5 s) suggest the newer address and succeed.
        env.sim.set(min_lifetime=8, max_lifetime=8)
        s1 = env.sim.last_seq()
        rep = env.sim.ctl.renumber(NEWER_IP, lifetime=8)
        assert rep["moved"] == 2 and len(rep["sent"]) == 2, rep
        wait_for(lambda: external_ip(env) == NEWER_IP, 10, interval=0.2, what="the newer address")

        def renewed(iport, n):
            ok = [e for e in iwfd_maps(env, s1, nonces[iport])
                  if e.get("result_name") == "SUCCESS" and e["fields"]["lifetime"] != 0
                  and e["fields"]["suggested_addr"] == NEWER_IP]
            return ok if len(ok) >= n else None
        for iport, eport in ports.items():
            ok = wait_for(lambda: renewed(iport, 2), 30, interval=0.3,
                          what="two renewals of %d granted" % iport)
            for e in ok:
                assert e["fields"]["suggested_port"] == eport, e["fields"]
                assert e["response"]["external_addr"] == NEWER_IP, e["response"]
            bad = [e for e in iwfd_maps(env, s1, nonces[iport]) if e.get("result_name") != "SUCCESS"]
            assert not bad, [(e["fields"], e.get("result_name")) for e in bad]
            held = sim_map(env, iport)
            assert (held["nonce"], held["external_addr"], held["external_port"]) == \
                (nonces[iport], NEWER_IP, eport), held
            assert (TCP, eport) in env.table(), env.table()
        assert external_ip(env) == NEWER_IP
        pcp = control(sock, {"command": "stats"})["pcp"]
        assert pcp["lost_state_events"] >= 1 and pcp["updates"] >= 3, pcp
        assert "the PCP server moved" not in env.iwfd.log()


if __name__ == "__main__":
    main(globals())

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
    env = Env(exe, start=False)
    with env:
        sock = os.path.join(env.workdir, "control")
        env.iwfd.extra_args += ["--control-socket", sock]
        env.start()
        env.wait_connected()
        assert external_ip(env) == EXTERNAL_IP
        assert env.add(45020, 8020) == 0
        before = sim_map(env, 8020)
        nonce = before["nonce"]
        assert before["external_addr"] == EXTERNAL_IP and before["external_port"] == 45020, before
        # iwfd asked for 7200 s: no renewal for an hour. The carrier moves the mapping.
        s0 = env.sim.last_seq()
        rep = env.sim.ctl.renumber(NEW_IP)
        assert rep["moved"] == 1 and len(rep["sent"]) == 1 and "error" not in rep["sent"][0], rep
        wait_for(lambda: external_ip(env) == NEW_IP, 10, interval=0.2,
                 what="GetExternalIPAddress reporting the renumbered address")
        # learnt from the update alone: iwfd sent nothing for this mapping meanwhile
        assert not iwfd_maps(env, s0, nonce), [e["fields"] for e in iwfd_maps(env, s0, nonce)]
        assert (TCP, 45020) in env.table(), env.table()
        held = sim_map(env, 8020)
        assert (held["nonce"], held["external_addr"], held["external_port"]) == \
            (nonce, NEW_IP, 45020), held
        pcp = control(sock, {"command": "stats"})["pcp"]
        assert pcp["updates"] == 1, pcp
        st = control(sock, {"command": "status"})
        assert NEW_IP in json.dumps(st), st
        # TR-181 Device.PCP. and the state file follow too
        eip = "Device.PCP.Client.1.Server.1.ExternalIPAddress"
        rep = control(sock, {"op": "dm.get", "paths": [eip], "id": 1})
        assert rep["ok"] and {p["name"]: p["value"] for p in rep["params"]}[eip] == NEW_IP, rep
        # (the journal stores addresses as 16 bytes, IPv4 as ::ffff:a.b.c.d)
        v4mapped = bytes(10) + b"\xff\xff" + socket.inet_aton(NEW_IP)
        wait_for(lambda: v4mapped in open(env.iwfd.state, "rb").read(), 10,
                 interval=0.2, what="the new address in the state journal")

        # Renewals after it: the carrier renumbers again with 8 s left and grants at most 8 s
        # from now on; iwfd renews (at 4..5 s) suggesting the newer address and keeps it.
        env.sim.set(min_lifetime=8, max_lifetime=8)
        s1 = env.sim.last_seq()
        rep = env.sim.ctl.renumber(NEWER_IP, lifetime=8)
        assert rep["moved"] == 1 and len(rep["sent"]) == 1, rep
        wait_for(lambda: external_ip(env) == NEWER_IP, 10, interval=0.2, what="the newer address")

        def renewed(n):
            ok = [e for e in iwfd_maps(env, s1, nonce) if e.get("result_name") == "SUCCESS"
                  and e["fields"]["lifetime"] != 0]
            return ok if len(ok) >= n else None
        ok = wait_for(lambda: renewed(2), 30, interval=0.3, what="two renewals granted")
        for e in ok:
            f = e["fields"]
            assert f["suggested_addr"] == NEWER_IP and f["suggested_port"] == 45020, f
            assert e["response"]["external_addr"] == NEWER_IP, e["response"]
        bad = [e for e in iwfd_maps(env, s1, nonce) if e.get("result_name") != "SUCCESS"]
        assert not bad, [(e["fields"], e.get("result_name")) for e in bad]
        held = sim_map(env, 8020)
        assert (held["nonce"], held["external_addr"], held["external_port"]) == \
            (nonce, NEWER_IP, 45020), held
        assert (TCP, 45020) in env.table(), env.table()
        assert external_ip(env) == NEWER_IP
        assert "the PCP server moved" not in env.iwfd.log()


if __name__ == "__main__":
    main(globals())

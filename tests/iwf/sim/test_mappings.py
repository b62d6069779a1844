#!/usr/bin/python3
"""Seed 004 §5.5, §5.7 - §5.9, §7 end to end: creating, refreshing, reading, deleting and
expiring mappings through real control points, checked against what the PCP server saw."""

import time

from iwfsim import (TCP, UDP, Env, MUPnP, main, opt, opt_names, upnpc, wait_for)

THIRD = {"security": {"allow_third_party": True}}


def sim_maps_for(env, port, proto=TCP):
    return [m for m in env.sim.mappings() if m["protocol"] == proto and m["internal_port"] == port]


def all_requests(env, since):
    """Every request the simulator received after log seq `since` (any opcode)."""
    return env.sim.requests(since, opcode=None)


def create_nonce(env, since, port):
    """Nonce of the first non-delete MAP for internal port `port` after `since`."""
    for e in env.sim.user_maps(since):
        f = e["fields"]
        if f["internal_port"] == port and f["lifetime"] != 0:
            return f["nonce"]
    raise AssertionError("no MAP for internal port %d in the simulator log" % port)


# ------------------------------------------------------------------ §5.7.2 Figure 6

def test_local_conflict_no_pcp_traffic(exe):
    with Env(exe, igd=1, config=THIRD) as env:
        env.wait_connected()
        s0 = env.sim.last_seq()
        assert env.add(45000, 45000, client="127.0.0.2") == 0
        nonce = create_nonce(env, s0, 45000)
        s1 = env.sim.last_seq()
        # another internal client, same external port: 718 at once, nothing sent
        assert env.add(45000, 45000, client="127.0.0.3") == 718
        assert env.add(45000, 45001, client="127.0.0.3", proto="TCP") == 718
        mu = MUPnP(env.url)
        got, msg = mu.call("addportmapping", 45000, "TCP", "127.0.0.4", 45000, "x", "")
        assert got == 718, (got, msg)
        time.sleep(0.5)
        sent = all_requests(env, s1)
        assert not sent, "local conflict caused PCP traffic: %r" % [e["fields"] for e in sent]
        # the same client re-adding its own mapping: success, a refresh, no new nonce
        assert env.add(45000, 45000, client="127.0.0.2", desc="renamed") == 0
        time.sleep(0.5)
        for e in env.sim.user_maps(s1):
            assert e["fields"]["nonce"] == nonce, \
                "re-add sent a MAP with a new nonce: %r" % e["fields"]
            assert e["fields"]["lifetime"] != 0, "re-add deleted the mapping: %r" % e["fields"]
        on_sim = sim_maps_for(env, 45000)
        assert len(on_sim) == 1 and on_sim[0]["nonce"] == nonce, on_sim
        table = env.table()
        assert list(table) == [(TCP, 45000)], table
        assert table[(TCP, 45000)][0] == "127.0.0.2" and table[(TCP, 45000)][2] == "renamed", table


# ------------------------------------------------------------------ PREFER_FAILURE deviation

def check_deviation(igd, exe):
    with Env(exe, igd=igd, config=THIRD) as env:
        env.wait_connected()
        s0 = env.sim.last_seq()
        # the server hands out another port despite PREFER_FAILURE (Debian's miniupnpd)
        env.sim.fault("other_port", count=1, match={"opcode": "MAP", "internal_port": 45100})
        assert env.add(45100) == 718
        maps = [e for e in env.sim.user_maps(s0) if e["fields"]["internal_port"] == 45100]
        assert maps and "PREFER_FAILURE" in opt_names(maps[0]), "no PREFER_FAILURE on the MAP"
        nonce = maps[0]["fields"]["nonce"]
        # iwfd deletes the unwanted mapping again, with its nonce
        wait_for(lambda: not sim_maps_for(env, 45100), 5,
                 what="the wrongly-ported mapping deleted on the server")
        dels = [e for e in env.sim.user_maps(s0)
                if e["fields"]["internal_port"] == 45100 and e["fields"]["lifetime"] == 0]
        assert dels and dels[0]["fields"]["nonce"] == nonce, "delete without the create's nonce"
        assert dels[0].get("result_name") == "SUCCESS", dels[0]
        assert (TCP, 45100) not in env.table()


def test_prefer_failure_deviation_igd1(exe):
    check_deviation(1, exe)


def test_prefer_failure_deviation_igd2(exe):
    check_deviation(2, exe)


# ------------------------------------------------------------------ §5.7.1 AddAnyPortMapping

def test_add_any_port_mapping(exe):
    with Env(exe, igd=2, config=THIRD) as env:
        env.wait_connected()
        # free port: granted as asked
        s0 = env.sim.last_seq()
        code, port = env.add_any(46001)
        assert code == 0 and port == 46001, (code, port)
        # taken on the carrier: the server's choice comes back as NewReservedPort
        env.sim.cmd(cmd="reserve", protocol=TCP, port=46000)
        code, port = env.add_any(46000, 46000)
        assert code == 0, code
        assert port != 46000, "reserved port handed out"
        on_sim = sim_maps_for(env, 46000)
        assert len(on_sim) == 1 and on_sim[0]["external_port"] == port, (on_sim, port)
        for e in env.sim.user_maps(s0):
            assert "PREFER_FAILURE" not in opt_names(e), \
                "AddAnyPortMapping sent PREFER_FAILURE: %r" % e["fields"]
        table = env.table()
        assert (TCP, port) in table and table[(TCP, port)][1] == 46000, table
        # python3-miniupnpc's addanyportmapping returns the reserved port too
        env.sim.cmd(cmd="reserve", protocol=UDP, port=46002)
        mu = MUPnP(env.url)
        got, res = mu.call("addanyportmapping", 46002, "UDP", "127.0.0.1", 46002, "any", "")
        assert got == 0, res
        on_sim = sim_maps_for(env, 46002, UDP)
        assert len(on_sim) == 1 and int(res) == on_sim[0]["external_port"] != 46002, (res, on_sim)


def test_add_any_same_client_again(exe):
    """AddAnyPortMapping repeated by the same client for the same internal endpoint.

    PCP has one mapping per internal endpoint (RFC 6887 §11.3); a second MAP for it with a new
    nonce is refused NOT_AUTHORIZED.  The IWF must not turn a legitimate repeat into 606."""
    with Env(exe, igd=2, config=THIRD) as env:
        env.wait_connected()
        code, port = env.add_any(46100)
        assert code == 0 and port == 46100
        code, port2 = env.add_any(46100)
        assert code == 0, "second AddAnyPortMapping for the same endpoint -> %s" % code
        assert len(sim_maps_for(env, 46100)) == 1


def test_second_external_port_for_same_endpoint(exe):
    """UPnP may ask a second external port for an internal endpoint that already has one;
    PCP keys a mapping by its internal endpoint, so the IWF answers 718 locally (no MAP
    that the server would refuse as NOT_AUTHORIZED -> a misleading 606)."""
    for igd in (1, 2):
        with Env(exe, igd=igd, config=THIRD) as env:
            env.wait_connected()
            assert env.add(46200, 46200) == 0
            s0 = env.sim.last_seq()
            assert env.add(46201, 46200) == 718
            time.sleep(0.3)
            assert not all_requests(env, s0), "a second port for one endpoint reached PCP"
            assert len(env.entries()) == 1


# ------------------------------------------------------------------ §5.9 deletes

def test_delete(exe):
    with Env(exe, igd=1, config=THIRD) as env:
        env.wait_connected()
        s0 = env.sim.last_seq()
        assert env.delete(47000) == 714
        mu = MUPnP(env.url)
        got, msg = mu.call("deleteportmapping", 47000, "UDP")
        assert got == 714, (got, msg)
        time.sleep(0.3)
        assert not all_requests(env, s0), "delete of a missing entry caused PCP traffic"
        assert env.add(47001) == 0 and env.add(47002) == 0
        nonce = create_nonce(env, s0, 47001)
        s1 = env.sim.last_seq()
        assert env.delete(47001) == 0
        dels = [e for e in env.sim.user_maps(s1) if e["fields"]["internal_port"] == 47001]
        assert len(dels) == 1, [e["fields"] for e in dels]
        f = dels[0]["fields"]
        assert f["lifetime"] == 0 and f["nonce"] == nonce, f
        assert "THIRD_PARTY" in opt_names(dels[0]), "delete without THIRD_PARTY: %r" % f
        assert not sim_maps_for(env, 47001), "mapping still on the server"
        table = env.table()
        assert (TCP, 47001) not in table and (TCP, 47002) in table, table
        assert env.delete(47001) == 714


def test_delete_range(exe):
    with Env(exe, igd=2, config=THIRD) as env:
        env.wait_connected()
        s0 = env.sim.last_seq()
        assert env.delete_range(48000, 48100) == 730
        time.sleep(0.3)
        assert not all_requests(env, s0), "DeletePortMappingRange of nothing caused PCP traffic"
        for p in (48001, 48002, 48003, 48200):
            assert env.add(p) == 0
        assert env.add(48004, proto="UDP") == 0
        nonces = {p: create_nonce(env, s0, p) for p in (48001, 48002, 48003)}
        s1 = env.sim.last_seq()
        assert env.delete_range(48000, 48100, "TCP") == 0
        dels = [e["fields"] for e in env.sim.user_maps(s1) if e["fields"]["lifetime"] == 0]
        got = sorted((f["internal_port"], f["nonce"]) for f in dels)
        assert got == sorted(nonces.items()), "deletes sent: %r, want one per mapping %r" % (
            got, nonces)
        table = env.table()
        assert sorted(table) == [(TCP, 48200), (UDP, 48004)], table
        ports = sorted((m["protocol"], m["external_port"]) for m in env.sim.mappings())
        assert ports == [(TCP, 48200), (UDP, 48004)], ports


# ------------------------------------------------------------------ §5.8 reads

def test_reads_cause_no_pcp_traffic(exe):
    for igd in (1, 2):
        with Env(exe, igd=igd, config=THIRD) as env:
            env.wait_connected()
            assert env.add(49001) == 0 and env.add(49002, proto="UDP") == 0
            time.sleep(0.3)
            s0 = env.sim.last_seq()
            mu = MUPnP(env.url)
            for _ in range(3):
                assert len(mu.entries()) == 2
                assert mu.call("getspecificportmapping", 49001, "TCP")[1][0] == "127.0.0.1"
                assert mu.call("getspecificportmapping", 49009, "TCP")[1] is None
                assert mu.call("externalipaddress") == (0, "198.51.100.10")
                assert mu.call("statusinfo")[1][0] == "Connected"
                assert mu.call("connectiontype") == (0, "IP_Routed")
                assert mu.call("getportmappingnumberofentries")[0] in (0, 401, 402, 501, 606)
                rc, out = upnpc(env.url, "-l")
                assert "49001->127.0.0.1:49001" in out, out
                rc, out = upnpc(env.url, "-s")
                assert "Connected" in out
                if igd == 2:
                    upnpc(env.url, "-L")
            time.sleep(0.5)
            sent = all_requests(env, s0)
            assert not sent, "IGD:%d reads caused PCP traffic: %r" % (
                igd, [e["fields"] for e in sent])


def test_list_of_port_mappings_upnpc(exe):
    """upnpc -L (GetListOfPortMappings, IGD:2) shows the mappings (interop with libminiupnpc,
    whose portlisting parser reads the NewPortListing document as XML text)."""
    with Env(exe, igd=2, config=THIRD) as env:
        env.wait_connected()
        assert env.add(49101) == 0 and env.add(49102) == 0
        rc, out = upnpc(env.url, "-L")
        assert "49101" in out and "49102" in out, "upnpc -L lists nothing:\n" + out


def test_lan_never_blocked_while_server_silent(exe):
    """Issue 5 §6: while the PCP server does not answer, reads are answered at once and a
    pending AddPortMapping does not hold up other control points."""
    import threading
    with Env(exe, igd=1, config=THIRD, answer_deadline_ms=4000) as env:
        env.wait_connected()
        assert env.add(49501) == 0
        env.sim.set(drop_prob=1.0)
        box = {}
        t = threading.Thread(target=lambda: box.update(code=env.add(49502)))
        t.start()
        time.sleep(0.5)                      # the add now waits for its deadline
        t0 = time.monotonic()
        mu = MUPnP(env.url)
        assert [e[0] for e in mu.entries()] == [49501]
        assert mu.call("externalipaddress") == (0, "198.51.100.10")
        took = time.monotonic() - t0
        assert t.is_alive(), "the pending add answered before its deadline"
        assert took < 3, "reads waited %.1f s behind a pending PCP request" % took
        t.join(30)
        assert box.get("code") == 501, box


# ------------------------------------------------------------------ leases

def test_lease_expiry_igd1(exe):
    with Env(exe, igd=1, config=THIRD) as env:
        env.wait_connected()
        s0 = env.sim.last_seq()
        assert env.add(50001, lease=5) == 0
        assert env.add(50002, lease=0) == 0
        nonce = create_nonce(env, s0, 50001)
        assert sim_maps_for(env, 50001)
        t = env.table()
        assert 0 < t[(TCP, 50001)][3] <= 5, t
        assert t[(TCP, 50002)][3] == 0, "IGD:1 lease 0 must stay infinite (0): %r" % t
        wait_for(lambda: (TCP, 50001) not in env.table(), 15, interval=0.5,
                 what="expired entry gone from the table")
        wait_for(lambda: not sim_maps_for(env, 50001), 5, what="expired mapping deleted on the server")
        dels = [e["fields"] for e in env.sim.user_maps(s0)
                if e["fields"]["internal_port"] == 50001 and e["fields"]["lifetime"] == 0]
        assert dels and dels[0]["nonce"] == nonce, dels
        assert (TCP, 50002) in env.table()
        # the PCP lifetime asked never exceeds the remaining lease (issue 5 §4)
        for e in env.sim.user_maps(s0):
            f = e["fields"]
            if f["internal_port"] == 50001 and f["lifetime"]:
                assert f["lifetime"] <= 5, "PCP lifetime %d > lease 5" % f["lifetime"]


def test_lease_igd2_zero_is_a_week(exe):
    with Env(exe, igd=2, config=THIRD) as env:
        env.wait_connected()
        assert env.add(50101, lease=0) == 0
        assert env.add(50102, lease=10 ** 6) == 0
        assert env.add(50103, lease=3600) == 0
        t = env.table()
        for p in (50101, 50102):
            assert 604800 - 60 <= t[(TCP, p)][3] <= 604800, (p, t[(TCP, p)])
        assert 3600 - 60 <= t[(TCP, 50103)][3] <= 3600, t[(TCP, 50103)]


# ------------------------------------------------------------------ §7 security

def test_security_defaults(exe):
    for igd, refuse in ((1, 718), (2, 606)):
        with Env(exe, igd=igd) as env:
            env.wait_connected()
            s0 = env.sim.last_seq()
            # IGD:1 default security: only for oneself
            assert env.add(51001, client="127.0.0.2") == refuse
            mu = MUPnP(env.url)
            got, msg = mu.call("addportmapping", 51002, "TCP", "127.0.0.3", 51002, "x", "")
            assert got == refuse, (igd, got, msg)
            # ports below 1024: refused by the default rules
            assert env.add(80) == refuse
            assert env.add(1023, 8080) == refuse
            time.sleep(0.3)
            assert not all_requests(env, s0), "refused requests caused PCP traffic"
            assert env.add(1024) == 0
            assert env.add(51003) == 0
            assert sorted(env.table()) == [(TCP, 1024), (TCP, 51003)]


def test_description_stripped_and_capped(exe):
    with Env(exe, igd=1) as env:
        env.wait_connected()
        # control characters XML allows (TAB, LF, CR) and DEL: stored stripped
        assert env.add(51101, desc="ga\tme\nX\r\x7fY") == 0
        # characters XML 1.0 forbids make the envelope ill-formed: stripped or 402, never stored
        got = env.add(51102, desc="a\x01b\x1bc")
        assert got in (0, 402), got
        assert env.add(51103, desc="d" * 400) == 0
        t = env.table()
        assert t[(TCP, 51101)][2] == "gameXY", repr(t)
        if got == 0:
            assert t[(TCP, 51102)][2] == "abc", repr(t)
        d = t[(TCP, 51103)][2]
        assert 0 < len(d) <= 255 and set(d) == {"d"}, repr(d)


# ------------------------------------------------------------------ §5.5 THIRD_PARTY, FILTER

def test_third_party_and_filter(exe):
    with Env(exe, igd=1, config=THIRD) as env:
        env.wait_connected()
        s0 = env.sim.last_seq()
        assert env.add(52001) == 0
        assert env.add(52002, client="127.0.0.2") == 0
        assert env.add(52003, proto="UDP", client="127.0.0.3") == 0
        assert env.add(52004, remote="203.0.113.5") == 0
        assert env.delete(52001) == 0
        clients = {52001: "127.0.0.1", 52002: "127.0.0.2", 52003: "127.0.0.3",
                   52004: "127.0.0.1"}
        maps = env.sim.user_maps(s0)
        assert len(maps) >= 5
        for e in maps:
            tp = opt(e, "THIRD_PARTY")
            f = e["fields"]
            assert tp is not None, "MAP without THIRD_PARTY: %r" % f
            assert tp["internal_addr"] == clients[f["internal_port"]], (tp, f)
        filt = [opt(e, "FILTER") for e in maps if e["fields"]["internal_port"] == 52004]
        assert filt[0] is not None, "RemoteHost not sent as FILTER"
        assert filt[0]["remote_addr"] == "203.0.113.5" and filt[0]["prefix_length"] == 128, filt
        assert filt[0]["remote_port"] == 0, filt
        on_sim = sim_maps_for(env, 52004)
        assert on_sim and on_sim[0]["filters"] and \
            on_sim[0]["filters"][0]["remote_addr"] == "203.0.113.5", on_sim
        for p in (52001, 52002, 52003):
            assert all(opt(e, "FILTER") is None for e in maps if e["fields"]["internal_port"] == p)


def check_filter_refused(igd, want, exe):
    with Env(exe, igd=igd, config=THIRD, sim_settings={"filter": "unsupported"}) as env:
        env.wait_connected()
        assert env.add(52101, remote="203.0.113.7") == want
        assert (TCP, 52101) not in env.table()
        assert not sim_maps_for(env, 52101), "a wider (unfiltered) mapping was made"
        assert env.add(52102) == 0      # without RemoteHost all is well


def test_filter_refused_igd1(exe):
    check_filter_refused(1, 726, exe)


def test_filter_refused_igd2(exe):
    check_filter_refused(2, 501, exe)


if __name__ == "__main__":
    main(globals())

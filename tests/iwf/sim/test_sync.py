#!/usr/bin/python3
"""Seed 004 §5.4, §5.10 end to end: iwfd's table and the PCP server's table stay equal across
a kill -9 of iwfd (also in the middle of a burst of AddPortMapping), a restart of the server
with and without ANNOUNCE, and an unreadable state file."""

import atexit
import glob
import os
import threading
import time

from iwfsim import TCP, UDP, Env, MUPnP, Sim, main, upnpc, wait_for

THIRD = {"security": {"allow_third_party": True}}


def iwfd_view(env):
    """{(proto, ext port): (internal client, internal port)} from GetGenericPortMappingEntry."""
    return {k: (v[0], v[1]) for k, v in env.table().items()}


def sim_view(env):
    """The same view of the simulator's table, plus the nonces."""
    view, nonces = {}, {}
    for m in env.sim.mappings():
        k = (m["protocol"], m["external_port"])
        view[k] = (m["internal_addr"], m["internal_port"])
        nonces[k] = m["nonce"]
    return view, nonces


def create_nonces(env, since=0):
    """{(proto, internal client, internal port): nonce of its first creating MAP}."""
    out = {}
    for e in env.sim.user_maps(since):
        f = e["fields"]
        if f["lifetime"] == 0:
            continue
        tp = [o for o in f.get("options", []) if o.get("name") == "THIRD_PARTY"]
        client = tp[0]["internal_addr"] if tp else f["client_addr"]
        out.setdefault((f["protocol"], client, f["internal_port"]), f["nonce"])
    return out


def diff(a, b):
    only_a = {k: a[k] for k in a if k not in b or b[k] != a[k]}
    only_b = {k: b[k] for k in b if k not in a or a[k] != b[k]}
    return only_a, only_b


# ------------------------------------------------------------------ restart replays (§5.4)

def test_restart_replays_with_stored_nonces(exe):
    with Env(exe, igd=1, config=THIRD) as env:
        env.wait_connected()
        assert env.add(53001) == 0
        assert env.add(53002, proto="UDP", client="127.0.0.2") == 0
        assert env.add(53003, client="127.0.0.3", lease=3) == 0
        assert env.add(53004, remote="203.0.113.9") == 0
        before = create_nonces(env)
        env.iwfd.kill9()
        time.sleep(4)                       # 53003's lease ends while iwfd is down
        s0 = env.sim.last_seq()
        env.iwfd.start()
        # reads work at once, from the stored table
        want = {(TCP, 53001): ("127.0.0.1", 53001), (UDP, 53002): ("127.0.0.2", 53002),
                (TCP, 53004): ("127.0.0.1", 53004)}
        wait_for(lambda: iwfd_view(env) == want, 10, what="restored table %r" % want)
        # every unexpired one is re-MAPped with its stored nonce, the expired one deleted
        def replayed():
            seen = {}
            for e in env.sim.user_maps(s0):
                f = e["fields"]
                seen.setdefault((f["protocol"], f["internal_port"], f["lifetime"] == 0), f["nonce"])
            return seen
        got = wait_for(lambda: len(replayed()) >= 4 and replayed(), 15, what="replay")
        assert got.get((TCP, 53001, False)) == before[(TCP, "127.0.0.1", 53001)], got
        assert got.get((UDP, 53002, False)) == before[(UDP, "127.0.0.2", 53002)], got
        assert got.get((TCP, 53004, False)) == before[(TCP, "127.0.0.1", 53004)], got
        assert got.get((TCP, 53003, True)) == before[(TCP, "127.0.0.3", 53003)], \
            "expired mapping not deleted with its nonce at restart: %r" % got
        assert (TCP, 53003, False) not in got, "expired mapping replayed"
        for e in env.sim.user_maps(s0):
            if e["fields"]["internal_port"] == 53004 and e["fields"]["lifetime"]:
                opts = [o["name"] for o in e["fields"]["options"]]
                assert "FILTER" in opts, "replay lost the RemoteHost FILTER: %r" % opts
        view, nonces = sim_view(env)
        assert view == want, view


# ------------------------------------------------------------------ kill -9 in a burst

def burst(url, ports, results, stop, threads=8):
    """AddPortMapping for every port, `threads` control points in parallel (python-miniupnpc)."""
    lock = threading.Lock()
    todo = list(ports)

    def worker():
        try:
            mu = MUPnP(url)
        except Exception as exc:  # pragma: no cover
            with lock:
                results["setup_error"] = str(exc)
            return
        while not stop.is_set():
            with lock:
                if not todo:
                    return
                p = todo.pop(0)
            code, msg = mu.call("addportmapping", p, "TCP", "127.0.0.1", p, "burst", "")
            with lock:
                results[p] = code
    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    return ts


_BURST = {}


def burst_outcome(exe):
    """One kill -9 in the middle of 100 concurrent AddPortMapping calls, then a restart with
    the same --state; shared by the tests below (run once, checked from several angles)."""
    if "env" in _BURST:
        return _BURST
    env = Env(exe, igd=1, config=dict(THIRD, pcp={"lifetime": 120}))
    _BURST["env"] = env
    atexit.register(burst_close)
    env.wait_connected()
    ports = list(range(54000, 54100))
    results, stop = {}, threading.Event()
    ts = burst(env.url, ports, results, stop)
    wait_for(lambda: sum(1 for p in ports if results.get(p) == 0) >= 40, 60,
             interval=0.005, what="40 mappings added")
    env.iwfd.kill9()
    stop.set()
    for t in ts:
        t.join(30)
    _BURST["acked"] = sorted(p for p in ports if results.get(p) == 0)
    _BURST["before"] = create_nonces(env)
    _BURST["s0"] = env.sim.last_seq()
    env.iwfd.start()
    # settle: every restored mapping replayed (iwfd's table a subset of the server's)
    def settled():
        a = iwfd_view(env)
        b, _ = sim_view(env)
        replayed = {e["fields"]["internal_port"] for e in env.sim.user_maps(_BURST["s0"])
                    if e["fields"]["lifetime"] and e.get("result_name") == "SUCCESS"}
        return a and all(b.get(k) == v and v[1] in replayed for k, v in a.items())
    try:
        wait_for(settled, 30, interval=0.5, what="restored mappings replayed on the server")
    except AssertionError as exc:
        _BURST["settle_error"] = str(exc)
    return _BURST


def burst_close():
    env = _BURST.pop("env", None)
    if env is not None:
        env.close()


def test_kill9_burst_none_lost(exe):
    """What iwfd guarantees after kill -9 in a burst: every mapping it acknowledged survives,
    in its table and on the server, and every mapping it restored is re-MAPped with the nonce
    it was created with (RFC 6887 §11.2 refresh, seed 004 §5.4, §5.10)."""
    o = burst_outcome(exe)
    env = o["env"]
    assert "settle_error" not in o, o.get("settle_error")
    table = iwfd_view(env)
    server, nonces = sim_view(env)
    lost = [p for p in o["acked"] if (TCP, p) not in table or (TCP, p) not in server]
    assert not lost, "acknowledged mappings lost: %r" % lost
    only_iwfd = sorted(k for k in table if server.get(k) != table[k])
    assert not only_iwfd, "in iwfd's table but not on the server: %r" % only_iwfd
    for (proto, eport), (ic, iport) in table.items():
        assert nonces[(proto, eport)] == o["before"].get((proto, ic, iport)), \
            "mapping %d on the server with nonce %s, created with %s" % (
                eport, nonces[(proto, eport)], o["before"].get((proto, ic, iport)))
    replay = {e["fields"]["internal_port"]: e["fields"]["nonce"]
              for e in env.sim.user_maps(o["s0"]) if e["fields"]["lifetime"]}
    for (proto, eport), (ic, iport) in table.items():
        assert replay.get(iport) == o["before"][(proto, ic, iport)], \
            "restored mapping %d not re-MAPped with its nonce" % eport


def test_kill9_burst_none_orphaned(exe):
    """Issue 5 acceptance, strictly: after the restart iwfd's table EQUALS the carrier's, i.e.
    no mapping the server granted for a request iwfd had sent before dying is left on the
    server; and the control point that retries such an AddPortMapping gets it."""
    o = burst_outcome(exe)
    env = o["env"]
    try:
        def same():
            a = iwfd_view(env)
            b, _ = sim_view(env)
            return a == b and a
        try:
            wait_for(same, 10, interval=0.5, what="iwfd table == PCP server table")
        except AssertionError:
            a = iwfd_view(env)
            b, _ = sim_view(env)
            only_iwfd, only_sim = diff(a, b)
            retry = {}
            for proto, port in sorted(only_sim)[:5]:
                retry[port] = env.add(port)
            raise AssertionError(
                "after kill -9 during the burst (%d acked) the tables differ:\n"
                "  on iwfd only (lost on the carrier): %r\n"
                "  on the carrier only (orphaned, iwfd has no record of their nonces): %r\n"
                "  the client retrying AddPortMapping for those gets: %r"
                % (len(o["acked"]), sorted(only_iwfd), sorted(only_sim), retry))
    finally:
        burst_close()


# ------------------------------------------------------------------ server restart (§5.10)

def setup_five(env):
    specs = [(55001, "TCP", "127.0.0.1"), (55002, "UDP", "127.0.0.1"), (55003, "TCP", "127.0.0.2"),
             (55004, "UDP", "127.0.0.3"), (55005, "TCP", "127.0.0.4")]
    for port, proto, client in specs:
        assert env.add(port, proto=proto, client=client) == 0
    view, nonces = sim_view(env)
    assert len(view) == 5, view
    return view, nonces


def check_back(env, view, nonces, timeout, what):
    def back():
        v, n = sim_view(env)
        return v == view and n == nonces
    try:
        wait_for(back, timeout, interval=0.2, what=what)
    except AssertionError:
        v, n = sim_view(env)
        raise AssertionError("%s: server has %r\n nonces %r\n want %r\n nonces %r"
                             % (what, v, n, view, nonces))
    assert iwfd_view(env) == view, iwfd_view(env)


EPOCH = {"epoch": 100000}   # the server has been up a while: a restart's Epoch 0 is visible


def test_server_restart_with_announce(exe):
    with Env(exe, igd=1, config=THIRD, sim_settings=EPOCH) as env:
        env.wait_connected()
        view, nonces = setup_five(env)
        r = env.sim.restart(announce="unicast")
        assert r.get("announce"), "simulator sent no ANNOUNCE: %r" % r
        # No check that the simulator is empty here: iwfd may already have re-created
        # everything (the ANNOUNCE is unicast and answered within milliseconds). The
        # simulator forgot every mapping at restart, so each one check_back finds again was
        # re-created by iwfd.
        check_back(env, view, nonces, 10, "mappings back after restart + ANNOUNCE")


def test_server_restart_without_announce_renewal(exe):
    """No ANNOUNCE: the Epoch reset is seen at the next renewal (server grants 10 s)."""
    with Env(exe, igd=1, config=dict(THIRD, pcp={"lifetime": 60}),
             sim_settings=dict(EPOCH, min_lifetime=10, max_lifetime=10)) as env:
        env.wait_connected()
        view, nonces = setup_five(env)
        env.sim.restart(announce="none")
        assert not env.sim.mappings()
        # renewals come at about half of 10 s; the Epoch then shows the lost state
        check_back(env, view, nonces, 25, "mappings back after a silent restart (renewal)")


def test_server_restart_without_announce_next_add(exe):
    """No ANNOUNCE, long lifetimes: the next MAP's response carries the reset Epoch."""
    with Env(exe, igd=1, config=THIRD, sim_settings=EPOCH) as env:
        env.wait_connected()
        view, nonces = setup_five(env)
        env.sim.restart(announce="none")
        assert env.add(55010) == 0
        v, n = sim_view(env)
        view = dict(view)
        view[(TCP, 55010)] = v.get((TCP, 55010))
        nonces = dict(nonces)
        nonces[(TCP, 55010)] = n.get((TCP, 55010))
        check_back(env, view, nonces, 10, "mappings back after a silent restart (next ADD)")


# ------------------------------------------------------------------ DHCP hand-over (RFC 7291)

def test_servers_file_handover(exe):
    """Issue 3 §3: the router's DHCP client writes the PCP servers to a file iwfd watches;
    the file wins over --pcp-server, and a change moves every mapping to the new server
    with its own nonce, without losing any."""
    sim2 = Sim()
    try:
        with Env(exe, igd=1, config=THIRD, start=False) as env:
            path = os.path.join(env.workdir, "pcp-servers")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("# from DHCPv4 option 158\n%s\n" % env.sim.server)
            # the configured server is a dead port: only the file makes this work
            env.iwfd.server = "127.0.0.1:9"
            env.iwfd.extra_args += ["--pcp-servers-file", path]
            env.start()
            env.wait_connected()
            assert env.add(45500) == 0
            assert env.add(45501, proto="UDP") == 0
            view, nonces = sim_view(env)
            assert len(view) == 2, view
            with open(path + ".new", "w", encoding="utf-8") as fh:
                fh.write("%s\n" % sim2.server)
            os.rename(path + ".new", path)

            def moved():
                m = {(x["protocol"], x["external_port"]): x["nonce"] for x in sim2.mappings()
                     if x.get("kind") == "map"}
                return all(m.get(k) == nonces[k] for k in nonces)
            wait_for(moved, 15, interval=0.3, what="mappings re-created on the new server")
            assert len(env.entries()) == 2
            assert "(file)" in env.iwfd.log()
    finally:
        sim2.stop()


# ------------------------------------------------------------------ refused renewal / replay

def test_renewal_refused_removes_entry(exe):
    """Issue 5 §4: a mapping the server refuses to renew is removed locally, and logged."""
    with Env(exe, igd=1, config=dict(THIRD, pcp={"lifetime": 60}),
             sim_settings={"min_lifetime": 10, "max_lifetime": 10}) as env:
        env.wait_connected()
        assert env.add(57001) == 0 and env.add(57002) == 0
        env.sim.fault("result", value="NOT_AUTHORIZED",
                      match={"opcode": "MAP", "internal_port": 57001})
        wait_for(lambda: (TCP, 57001) not in env.table(), 20, interval=0.5,
                 what="refused mapping removed from the table")
        assert (TCP, 57002) in env.table()
        assert "57001" in env.iwfd.log() and "refused" in env.iwfd.log()


def test_replay_refused_or_moved_removes_entry(exe):
    """Seed 004 §5.10 / issue 5 §6: a replay refused, or answered with another external port,
    removes the mapping locally (and the moved one is not left on the server)."""
    with Env(exe, igd=1, config=THIRD, sim_settings=EPOCH) as env:
        env.wait_connected()
        for p in (57101, 57102, 57103):
            assert env.add(p) == 0
        env.iwfd.kill9()
        env.sim.restart(announce="none")            # the server forgot everything too
        env.sim.fault("result", value="NOT_AUTHORIZED",
                      match={"opcode": "MAP", "internal_port": 57101})
        env.sim.fault("other_port", count=1, match={"opcode": "MAP", "internal_port": 57102})
        env.iwfd.start()
        wait_for(lambda: sorted(env.table()) == [(TCP, 57103)], 15, interval=0.3,
                 what="only the good replay left in the table")
        wait_for(lambda: sorted(sim_view(env)[0]) == [(TCP, 57103)], 10, interval=0.3,
                 what="the moved replay deleted on the server")


# ------------------------------------------------------------------ unreadable state (§5.4)

def test_corrupt_state_file(exe):
    with Env(exe, igd=1, config=THIRD, start=False) as env:
        garbage = b"{\"version\": 1, \"mappings\": [ garbage \x00\xff"
        with open(env.iwfd.state, "wb") as fh:
            fh.write(garbage)
        env.start()
        kept = glob.glob(env.iwfd.state + ".corrupt-*")
        assert len(kept) == 1, "bad state file not kept aside: %r" % os.listdir(env.workdir)
        with open(kept[0], "rb") as fh:
            assert fh.read() == garbage, "the kept file is not the bad file"
        log = env.iwfd.log()
        assert kept[0] in log or os.path.basename(kept[0]) in log, \
            "the log does not name the kept file:\n" + log
        env.wait_connected()
        assert not env.table()
        assert env.add(56001) == 0
        env.iwfd.kill9()
        env.start()
        assert (TCP, 56001) in env.table(), "the fresh state file is not used after restart"
        assert len(glob.glob(env.iwfd.state + ".corrupt-*")) == 1


if __name__ == "__main__":
    main(globals())

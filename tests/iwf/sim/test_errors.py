#!/usr/bin/python3
"""Seed 004 §4.3 end to end: each PCP result code from the server -> the UPnP error a real
control point (upnpc and python3-miniupnpc) sees, for IGD:1 and IGD:2; no answer -> 501 and
ConnectionStatus Disconnected, Connected again once the server answers."""

import time

from iwfsim import TCP, Env, MUPnP, main, mupnp_matches, wait_for

# seed 004 §4.3: PCP result code -> (IGD:1, IGD:2)
TABLE = {
    1: (501, 501),    # UNSUPP_VERSION
    2: (718, 606),    # NOT_AUTHORIZED
    3: (501, 501),    # MALFORMED_REQUEST
    4: (501, 501),    # UNSUPP_OPCODE
    5: (501, 501),    # UNSUPP_OPTION
    6: (501, 501),    # MALFORMED_OPTION
    7: (501, 501),    # NETWORK_FAILURE
    8: (501, 728),    # NO_RESOURCES
    9: (501, 501),    # UNSUPP_PROTOCOL
    10: (501, 728),   # USER_EX_QUOTA
    11: (718, 718),   # CANNOT_PROVIDE_EXTERNAL
    12: (501, 501),   # ADDRESS_MISMATCH
    13: (501, 501),   # EXCESSIVE_REMOTE_PEERS
}
CFG = {"security": {"allow_third_party": True}}


def force(env, code, port):
    """Every MAP for internal port `port` answered with `code` (retries included)."""
    env.sim.clear_faults()
    env.sim.fault("result", value=code, match={"opcode": "MAP", "internal_port": port})


def check_table(igd, exe):
    failures = []
    with Env(exe, igd=igd, config=CFG) as env:
        env.wait_connected()
        mu = MUPnP(env.url)
        for code, want in sorted(TABLE.items()):
            expect = want[igd - 1]
            # upnpc
            port = 41000 + code
            force(env, code, port)
            got = env.add(port)
            if got != expect:
                failures.append("upnpc: PCP %d -> UPnP %s, want %d" % (code, got, expect))
            # python3-miniupnpc
            port = 42000 + code
            force(env, code, port)
            got, msg = mu.call("addportmapping", port, "TCP", "127.0.0.1", port, "t", "")
            if not mupnp_matches(got, expect):
                failures.append("miniupnpc: PCP %d -> %s (%s), want %d" % (code, got, msg, expect))
            env.sim.clear_faults()
            if code == 7:
                # §4.3: NETWORK_FAILURE -> 501 with ConnectionStatus Disconnected
                st = env.status()
                if st != "Disconnected":
                    failures.append("after NETWORK_FAILURE GetStatusInfo says %s" % st)
                if env.add(43000) != 0:
                    failures.append("add after NETWORK_FAILURE failed")
                st = env.status()
                if st != "Connected":
                    failures.append("after a successful MAP GetStatusInfo says %s" % st)
        # nothing half-created: no local entry, no mapping left on the server
        table = env.table()
        stray = [k for k in table if k[1] != 43000]
        if stray:
            failures.append("entries left in the table after errors: %r" % stray)
        sim_stray = [m["external_port"] for m in env.sim.mappings()
                     if m["protocol"] == TCP and m["external_port"] != 43000]
        if sim_stray:
            failures.append("mappings left on the PCP server after errors: %r" % sim_stray)
    assert not failures, "IGD:%d\n  " % igd + "\n  ".join(failures)


def test_error_table_igd1(exe):
    check_table(1, exe)


def test_error_table_igd2(exe):
    check_table(2, exe)


def check_no_answer(igd, exe):
    deadline_ms = 2000
    with Env(exe, igd=igd, config=CFG, answer_deadline_ms=deadline_ms) as env:
        env.wait_connected()
        assert env.status() == "Connected"
        env.sim.set(drop_prob=1.0)          # the server answers nothing
        t0 = time.monotonic()
        got = env.add(44000)
        took = time.monotonic() - t0
        assert got == 501, "no answer -> UPnP %s, want 501" % got
        # generous bound: the deadline plus upnpc's own start-up and reads
        assert took < deadline_ms / 1000 + 8, "501 took %.1f s" % took
        assert env.status() == "Disconnected", "GetStatusInfo not Disconnected after no answer"
        # python3-miniupnpc sees the same
        mu = MUPnP(env.url)
        got, msg = mu.call("addportmapping", 44001, "TCP", "127.0.0.1", 44001, "t", "")
        assert got == 501, "miniupnpc: no answer -> %s (%s)" % (got, msg)
        ok, st = mu.call("statusinfo")
        assert ok == 0 and st[0] == "Disconnected", st
        assert not env.table(), "a mapping without an answer is in the table: %r" % env.table()
        # the server comes back: a MAP is answered -> Connected again
        env.sim.set(drop_prob=0)
        assert env.add(44002) == 0
        wait_for(lambda: env.status() == "Connected", 10, what="Connected again")


def test_no_answer_igd1(exe):
    check_no_answer(1, exe)


def test_no_answer_igd2(exe):
    check_no_answer(2, exe)


if __name__ == "__main__":
    main(globals())

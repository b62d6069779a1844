#!/usr/bin/python3
"""Self-tests of the PCP server simulator (tests/pcpsim/pcpsim.py).

Run all:            /usr/bin/python3 tests/pcpsim/test_pcpsim.py
Run one group:      /usr/bin/python3 tests/pcpsim/test_pcpsim.py -v ServerTest
Groups: CodecTest (golden bytes), ServerTest (the PCP logic with a fake clock, every result
code), DaemonTest (the daemon over loopback UDP + control socket, fault injection, restart
and ANNOUNCE), LibraryTest (in-process Simulator).  Loopback only; ports chosen at run time.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import client  # noqa: E402
import pcpsim  # noqa: E402
from pcpsim import (OP_MAP, OP_PEER, SUCCESS, UNSUPP_VERSION, NOT_AUTHORIZED,  # noqa: E402
                    MALFORMED_REQUEST, UNSUPP_OPCODE, UNSUPP_OPTION, MALFORMED_OPTION,
                    NETWORK_FAILURE, NO_RESOURCES, UNSUPP_PROTOCOL, USER_EX_QUOTA,
                    CANNOT_PROVIDE_EXTERNAL, ADDRESS_MISMATCH)

NONCE = bytes(range(1, 13))
NONCE2 = bytes(range(101, 113))
SRC = ("192.0.2.33", 40001)
LOCAL = ("192.0.2.1", 5351)
EXT = "198.51.100.1"
PF = pcpsim.option_prefer_failure()


# --------------------------------------------------------------------------- codec

class CodecTest(unittest.TestCase):
    # RFC 6887 §7.1 + §11.1 + §13.2, computed by hand from the packet diagrams.
    MAP_REQ = bytes.fromhex(
        "0201" "0000" "00001c20"                        # v2, MAP, reserved, lifetime 7200
        "00000000000000000000ffffc0000221"              # client ::ffff:192.0.2.33
        "0102030405060708090a0b0c"                      # nonce
        "06" "000000" "1f90" "1f90"                     # TCP, reserved, 8080 -> 8080
        "00000000000000000000ffff00000000"              # suggested ::ffff:0.0.0.0
        "02000000")                                     # PREFER_FAILURE, length 0

    def test_map_request_golden(self):
        got = pcpsim.build_map_request("192.0.2.33", NONCE, 6, 8080, 7200, 8080, options=PF)
        self.assertEqual(got.hex(), self.MAP_REQ.hex())
        f = pcpsim.parse_request(got)
        self.assertEqual((f["opcode"], f["lifetime"], f["client_addr"], f["nonce"],
                          f["protocol"], f["internal_port"], f["suggested_port"],
                          f["suggested_addr"]),
                         (OP_MAP, 7200, "192.0.2.33", NONCE.hex(), 6, 8080, 8080, "0.0.0.0"))
        self.assertEqual(f["_options"], [(2, b"")])

    def test_peer_request_golden(self):
        got = pcpsim.build_peer_request("2001:db8::2", NONCE, 17, 5000, 600, "203.0.113.9",
                                        3478, 5000, suggested_addr="::")
        want = bytes.fromhex(
            "0202" "0000" "00000258" "20010db8000000000000000000000002"
            "0102030405060708090a0b0c" "11000000" "1388" "1388" + "00" * 16
            + "0d96" "0000" "00000000000000000000ffffcb007109")
        self.assertEqual(got.hex(), want.hex())
        self.assertEqual(len(got), 24 + 56)
        f = pcpsim.parse_request(got)
        self.assertEqual((f["remote_port"], f["remote_addr"], f["client_addr"]),
                         (3478, "203.0.113.9", "2001:db8::2"))

    def test_options_golden(self):
        # RFC 6887 §7.3: unpadded length in the header, data padded to 4 octets.
        self.assertEqual(pcpsim.option_description("abcde").hex(),
                         "80000005" "6162636465" "000000")
        self.assertEqual(pcpsim.option_third_party("10.0.0.7").hex(),
                         "01000010" "00000000000000000000ffff0a000007")
        self.assertEqual(pcpsim.option_filter("203.0.113.0", 120, 443).hex(),
                         "03000014" "0078" "01bb" "00000000000000000000ffffcb007100")
        opts = pcpsim.parse_options(pcpsim.option_description("abcde") + PF, 0)
        self.assertEqual(opts, [(128, b"abcde"), (2, b"")])
        with self.assertRaises(pcpsim.PcpError) as cm:
            pcpsim.parse_options(bytes.fromhex("80000009" "61626364"), 0)
        self.assertEqual(cm.exception.code, MALFORMED_OPTION)

    def test_response_parse(self):
        srv = pcpsim.Server(1000.0, epoch=77)
        out = srv.handle(self.MAP_REQ, SRC, LOCAL, 1005.5)
        self.assertEqual(len(out), 1)
        raw = out[0].data
        want = bytes.fromhex(
            "02810000" "00001c20" "00000052" + "00" * 12      # R|MAP, SUCCESS, 7200, epoch 82
            + "0102030405060708090a0b0c" "06000000" "1f90" "1f90"
            "00000000000000000000ffffc6336401" "02000000")    # 198.51.100.1, PF echoed
        self.assertEqual(raw.hex(), want.hex())
        r = pcpsim.parse_response(raw)
        self.assertEqual((r["result"], r["lifetime"], r["epoch"], r["external_port"],
                          r["external_addr"]), (0, 7200, 82, 8080, EXT))

    def test_addresses(self):
        self.assertEqual(pcpsim.addr_to16("192.0.2.1").hex(), "00000000000000000000ffffc0000201")
        self.assertEqual(pcpsim.addr_from16(pcpsim.addr_to16("192.0.2.1")), "192.0.2.1")
        self.assertEqual(pcpsim.addr_from16(pcpsim.addr_to16("2001:db8::1")), "2001:db8::1")
        self.assertTrue(pcpsim.addr_is_unspecified(bytes(16)))
        self.assertEqual(pcpsim.parse_listen("[::1]:99"), ("::1", 99))
        self.assertEqual(pcpsim.parse_listen("127.0.0.1"), ("127.0.0.1", 5351))
        self.assertEqual(pcpsim.parse_listen("::1"), ("::1", 5351))
        self.assertEqual(pcpsim.result_code("usér_ex_quota".replace("é", "e")), USER_EX_QUOTA)


# --------------------------------------------------------------------------- server logic

class ServerTest(unittest.TestCase):
    """The Server core with a fake clock: every behaviour and result code."""

    def setUp(self):
        self.now = 1000.0
        self.srv = pcpsim.Server(self.now, external_ip=EXT, seed=1)

    def send(self, data, src=SRC, dt=0.0):
        self.now += dt
        out = self.srv.handle(data, src, LOCAL, self.now)
        if not out:
            return None
        self.assertEqual(out[0].dest, src)
        r = pcpsim.parse_response(out[0].data)
        r["_raw"] = out[0].data
        return r

    def map(self, iport=8080, lifetime=3600, sport=0, nonce=NONCE, proto=6, options=b"",
            src=SRC, client_addr=None, dt=0.0, saddr="::ffff:0.0.0.0"):
        return self.send(pcpsim.build_map_request(client_addr or src[0], nonce, proto, iport,
                                                  lifetime, sport, saddr, options), src, dt)

    def assertResult(self, r, code):
        self.assertIsNotNone(r, "no response")
        self.assertEqual(r["result_name"], pcpsim.result_name(code), r)

    def assertErrorCopy(self, r, req, code, lifetime):
        """RFC 6887 §7.2/§8.2: error = response header + copy of the request body."""
        self.assertResult(r, code)
        self.assertEqual(r["lifetime"], lifetime)
        self.assertEqual(r["_raw"][24:], req[24:])
        self.assertEqual(r["_raw"][1], 0x80 | req[1])

    # MAP basics and lifetime clamping (RFC 6887 §11.3, §15)
    def test_map_success_and_clamping(self):
        r = self.map(lifetime=3600, sport=8080)
        self.assertResult(r, SUCCESS)
        self.assertEqual((r["lifetime"], r["external_port"], r["external_addr"], r["nonce"]),
                         (3600, 8080, EXT, NONCE.hex()))
        self.assertEqual(self.map(lifetime=5)["lifetime"], 120)           # raised to min
        self.assertEqual(self.map(lifetime=10 ** 9)["lifetime"], 86400)   # cut to max
        self.srv.apply_settings({"min_lifetime": 300, "max_lifetime": 600}, self.now)
        self.assertEqual(self.map(lifetime=1)["lifetime"], 300)
        self.assertEqual(self.map(lifetime=7000)["lifetime"], 600)
        self.assertEqual(len(self.srv.mappings), 1)
        m = self.srv.mappings_json(self.now)[0]
        self.assertEqual((m["internal_addr"], m["external_port"], m["subscriber"]),
                         ("192.0.2.33", 8080, "192.0.2.33/32"))

    def test_mapping_expires(self):
        self.map(lifetime=120)
        self.now += 119
        self.assertEqual(len(self.srv.mappings_json(self.now)), 1)
        self.now += 2
        self.assertEqual(self.srv.mappings_json(self.now), [])

    def test_refresh_keeps_port(self):
        p = self.map(sport=0)["external_port"]
        r = self.map(sport=0, dt=10)
        self.assertEqual(r["external_port"], p)
        self.assertEqual(len(self.srv.mappings), 1)

    # PREFER_FAILURE (RFC 6887 §13.2)
    def test_prefer_failure_conflict(self):
        self.assertResult(self.map(iport=80, sport=8080, nonce=NONCE2,
                                   src=("192.0.2.50", 1)), SUCCESS)
        req = pcpsim.build_map_request(SRC[0], NONCE, 6, 8080, 3600, 8080, options=PF)
        self.assertErrorCopy(self.send(req), req, CANNOT_PROVIDE_EXTERNAL, 30)
        r = self.map(sport=8080)                          # without PREFER_FAILURE
        self.assertResult(r, SUCCESS)
        self.assertNotEqual(r["external_port"], 8080)
        self.assertTrue(1024 <= r["external_port"] <= 65535)

    def test_prefer_failure_reserved_and_out_of_range(self):
        self.srv.reserved.add((17, 4000))
        self.assertResult(self.map(proto=17, sport=4000, options=PF), CANNOT_PROVIDE_EXTERNAL)
        self.assertResult(self.map(proto=6, sport=4000, options=PF), SUCCESS)  # TCP is free
        self.assertResult(self.map(iport=81, sport=80, options=PF), CANNOT_PROVIDE_EXTERNAL)
        self.assertResult(self.map(iport=82, sport=9000, options=PF,
                                   saddr="203.0.113.1"), CANNOT_PROVIDE_EXTERNAL)
        r = self.map(iport=82, sport=9000, saddr="203.0.113.1")
        self.assertEqual((r["result"], r["external_addr"]), (SUCCESS, EXT))

    def test_sctp_implies_prefer_failure(self):
        self.srv.reserved.add((132, 9899))
        self.assertResult(self.map(proto=132, sport=9899), CANNOT_PROVIDE_EXTERNAL)
        self.assertResult(self.map(proto=17, sport=9899), SUCCESS)

    def test_prefer_failure_on_existing_mapping_other_port(self):
        self.map(sport=8080)
        self.assertResult(self.map(sport=8080, options=PF), SUCCESS)
        self.assertResult(self.map(sport=9090, options=PF), CANNOT_PROVIDE_EXTERNAL)

    def test_sequential_allocation(self):
        self.srv.apply_settings({"alloc": "sequential", "port_min": 2000, "port_max": 2002},
                                self.now)
        ports = [self.map(iport=i, nonce=NONCE)["external_port"] for i in (1, 2, 3)]
        self.assertEqual(ports, [2000, 2001, 2002])
        self.assertResult(self.map(iport=4), NO_RESOURCES)   # port space exhausted

    # nonce checks (RFC 6887 §11.3, §15)
    def test_nonce_mismatch(self):
        self.map(lifetime=3600, sport=8080)
        req = pcpsim.build_map_request(SRC[0], NONCE2, 6, 8080, 3600, 8080)
        r = self.send(req, dt=100)
        self.assertErrorCopy(r, req, NOT_AUTHORIZED, 3500)   # remaining mapping lifetime
        dreq = pcpsim.build_map_request(SRC[0], NONCE2, 6, 8080, 0, 0)
        self.assertErrorCopy(self.send(dreq), dreq, NOT_AUTHORIZED, 3500)
        self.assertEqual(len(self.srv.mappings), 1)

    # deletion (RFC 6887 §15)
    def test_delete(self):
        self.map(sport=8080)
        r = self.map(lifetime=0)
        self.assertEqual((r["result"], r["lifetime"], r["external_port"]), (SUCCESS, 0, 8080))
        self.assertEqual(self.srv.mappings, {})
        r = self.map(lifetime=0, sport=1234)                 # absent: still SUCCESS
        self.assertEqual((r["result"], r["lifetime"], r["external_port"]), (SUCCESS, 0, 1234))

    def test_delete_all_ports_with_nonce(self):
        for p in (1, 2, 3):
            self.map(iport=p)
        self.map(iport=4, nonce=NONCE2)
        self.assertResult(self.map(iport=0, lifetime=0), SUCCESS)
        self.assertEqual([m.internal_port for m in self.srv.mappings.values()], [4])

    # quota, switches
    def test_quota(self):
        self.srv.apply_settings({"quota": 2}, self.now)
        self.assertResult(self.map(iport=1), SUCCESS)
        self.assertResult(self.map(iport=2), SUCCESS)
        req = pcpsim.build_map_request(SRC[0], NONCE, 6, 3, 3600, 0)
        self.assertErrorCopy(self.send(req), req, USER_EX_QUOTA, 30)
        self.assertResult(self.map(iport=3, src=("192.0.2.34", 1)), SUCCESS)  # other subscriber
        self.assertResult(self.map(iport=1), SUCCESS)          # a refresh is not a new mapping
        self.assertResult(self.map(iport=1, lifetime=0), SUCCESS)
        self.assertResult(self.map(iport=3), SUCCESS)

    def test_subscriber_prefix(self):
        self.srv.apply_settings({"quota": 1, "subscriber_prefix4": 24}, self.now)
        self.assertResult(self.map(iport=1, src=("192.0.2.33", 1)), SUCCESS)
        self.assertResult(self.map(iport=2, src=("192.0.2.34", 1)), USER_EX_QUOTA)

    def test_no_resources_and_network_failure(self):
        self.map(iport=1)
        self.srv.apply_settings({"no_resources": True}, self.now)
        req = pcpsim.build_map_request(SRC[0], NONCE, 6, 2, 3600, 0)
        self.assertErrorCopy(self.send(req), req, NO_RESOURCES, 30)
        self.assertResult(self.map(iport=1), SUCCESS)         # refresh unaffected
        self.srv.apply_settings({"no_resources": False, "network_failure": True}, self.now)
        self.assertErrorCopy(self.send(req), req, NETWORK_FAILURE, 30)

    def test_protocols(self):
        self.assertResult(self.map(proto=47), UNSUPP_PROTOCOL)
        self.assertResult(self.map(proto=0, iport=0), UNSUPP_PROTOCOL)
        self.assertResult(self.map(proto=17, iport=0), NOT_AUTHORIZED)  # all ports, policy
        self.srv.apply_settings({"allow_all_protocols": True}, self.now)
        r = self.map(proto=0, iport=0)
        self.assertEqual((r["result"], r["external_port"]), (SUCCESS, 0))

    # THIRD_PARTY (RFC 6887 §13.1)
    def test_third_party(self):
        tp = pcpsim.option_third_party("10.1.2.3")
        r = self.map(options=tp)
        self.assertResult(r, SUCCESS)
        self.assertEqual(r["options"][0]["internal_addr"], "10.1.2.3")   # echoed
        m = self.srv.mappings_json(self.now)[0]
        self.assertEqual((m["internal_addr"], m["third_party"], m["subscriber"]),
                         ("10.1.2.3", True, "192.0.2.33/32"))
        self.srv.apply_settings({"third_party": "not_authorized"}, self.now)
        req = pcpsim.build_map_request(SRC[0], NONCE, 6, 9, 3600, 0, options=tp)
        self.assertErrorCopy(self.send(req), req, NOT_AUTHORIZED, 1800)
        self.srv.apply_settings({"third_party": "unsupported"}, self.now)
        self.assertErrorCopy(self.send(req), req, UNSUPP_OPTION, 1800)

    # FILTER (RFC 6887 §13.3)
    def test_filter(self):
        flt = pcpsim.option_filter("203.0.113.0", 120, 443)
        r = self.map(options=flt)
        self.assertResult(r, SUCCESS)
        self.assertEqual(r["options"][0]["prefix_length"], 120)
        m = self.srv.mappings_json(self.now)[0]
        self.assertEqual(m["filters"], [{"prefix_length": 120, "remote_port": 443,
                                         "remote_addr": "203.0.113.0"}])
        self.map(options=pcpsim.option_filter("::", 0))       # prefix 0 clears the filters
        self.assertEqual(self.srv.mappings_json(self.now)[0]["filters"], [])
        self.assertResult(self.map(options=pcpsim.option_filter("203.0.113.0", 50)),
                          MALFORMED_OPTION)
        # EXCESSIVE_REMOTE_PEERS (RFC 6887 §7.4) beyond max_filters, no state change.
        self.srv.apply_settings({"max_filters": 2}, self.now)
        two = pcpsim.option_filter("203.0.113.1", 128) + pcpsim.option_filter("203.0.113.2", 128)
        self.assertResult(self.map(options=two), SUCCESS)
        req = pcpsim.build_map_request(SRC[0], NONCE, 6, 8080, 3600, 0,
                                       options=pcpsim.option_filter("203.0.113.3", 128))
        self.assertErrorCopy(self.send(req), req, pcpsim.EXCESSIVE_REMOTE_PEERS, 1800)
        self.assertEqual(len(self.srv.mappings_json(self.now)[0]["filters"]), 2)
        self.assertResult(self.map(iport=9, options=two + pcpsim.option_filter("::1", 128)),
                          pcpsim.EXCESSIVE_REMOTE_PEERS)
        self.assertResult(self.map(options=pcpsim.option_filter("::", 0)
                                   + pcpsim.option_filter("203.0.113.3", 128)), SUCCESS)
        self.srv.apply_settings({"filter": "unsupported"}, self.now)
        req = pcpsim.build_map_request(SRC[0], NONCE, 6, 8080, 3600, 0, options=flt)
        self.assertErrorCopy(self.send(req), req, UNSUPP_OPTION, 1800)

    def test_description_and_unknown_options(self):
        r = self.map(options=pcpsim.option_description("game") + pcpsim.encode_option(200, b"xy"))
        self.assertResult(r, SUCCESS)
        self.assertEqual([o["name"] for o in r["options"]], ["DESCRIPTION"])  # 200 not echoed
        self.assertEqual(self.srv.mappings_json(self.now)[0]["description"], "game")
        req = pcpsim.build_map_request(SRC[0], NONCE, 6, 8081, 3600, 0,
                                       options=pcpsim.encode_option(99, b"1234"))
        self.assertErrorCopy(self.send(req), req, UNSUPP_OPTION, 1800)

    # ADDRESS_MISMATCH (RFC 6887 §8.2)
    def test_address_mismatch(self):
        req = pcpsim.build_map_request("192.0.2.99", NONCE, 6, 8080, 3600, 0)
        self.assertErrorCopy(self.send(req), req, ADDRESS_MISMATCH, 1800)
        # Checked before the options (RFC 6887 §8.2 header checks come first).
        bad = pcpsim.build_map_request("192.0.2.99", NONCE, 6, 8080, 3600, 0,
                                       options=pcpsim.encode_option(99, b""))
        self.assertResult(self.send(bad), ADDRESS_MISMATCH)
        self.srv.apply_settings({"address_mismatch": False}, self.now)
        self.assertResult(self.send(req), SUCCESS)
        self.assertEqual(self.srv.mappings_json(self.now)[0]["internal_addr"], "192.0.2.33")

    # malformed requests (RFC 6887 §8.2, §7.3)
    def test_silently_dropped(self):
        good = pcpsim.build_map_request(SRC[0], NONCE, 6, 8080, 3600, 0)
        self.assertIsNone(self.send(b"\x02"))                          # < 2 octets
        self.assertIsNone(self.send(b"\x02\x81" + good[2:]))           # R bit set
        self.assertIsNone(self.send(good[:20]))                        # < 24 octets
        self.assertEqual(self.srv.mappings, {})
        self.assertEqual(self.srv.stats["dropped"], 3)

    def test_unsupp_version(self):
        for version in (0, 1, 3):
            req = bytes([version]) + pcpsim.build_map_request(SRC[0], NONCE, 6, 80, 60, 0)[1:]
            r = self.send(req)
            self.assertResult(r, UNSUPP_VERSION)
            self.assertEqual((r["version"], r["length"], r["lifetime"]), (2, 24, 1800))

    def test_older_server_version(self):
        # setting "version": a server that speaks only version 1 answers a version-2 MAP
        # with UNSUPP_VERSION in a version-1 header (RFC 6887 §9), no state change
        self.srv.apply_settings({"version": 1}, self.now)
        req = pcpsim.build_map_request(SRC[0], NONCE, 6, 80, 60, 0)
        out = self.srv.handle(req, SRC, LOCAL, self.now)
        raw = out[0].data
        self.assertEqual(len(raw), 24)
        self.assertEqual((raw[0], raw[1], raw[3]), (1, 0x81, UNSUPP_VERSION))
        self.assertEqual(struct.unpack_from("!I", raw, 4)[0], 1800)
        self.assertEqual(self.srv.mappings, {})
        self.assertEqual(self.srv.log[-1]["result_name"], "UNSUPP_VERSION")
        # NAT-PMP only: RFC 6886 §3.5's 8 octets (version 0, 128 + op, result 1, Epoch)
        self.srv.apply_settings({"version": 0}, self.now)
        raw = self.srv.handle(req, SRC, LOCAL, self.now + 7)[0].data
        self.assertEqual(raw[:4], bytes([0, 0x81, 0, UNSUPP_VERSION]))
        self.assertEqual((len(raw), struct.unpack_from("!I", raw, 4)[0]), (8, 7))
        for bad in (3, -1, True, "1"):
            with self.assertRaises(ValueError):
                self.srv.apply_settings({"version": bad}, self.now)
        self.srv.apply_settings({"version": 2}, self.now)
        self.assertResult(self.send(req), SUCCESS)

    def test_malformed_request(self):
        good = pcpsim.build_map_request(SRC[0], NONCE, 6, 8080, 3600, 0)
        for bad in (good[:28], good + b"\x00\x00",                      # short body, not /4
                    good + pcpsim.encode_option(200, bytes(1100))):     # > 1100 octets
            r = self.send(bad)
            self.assertResult(r, MALFORMED_REQUEST)
            self.assertEqual(r["lifetime"], 1800)
            self.assertEqual(r["length"] % 4, 0)
            self.assertLessEqual(r["length"], 1100)
        peer = pcpsim.build_peer_request(SRC[0], NONCE, 6, 8080, 3600, "203.0.113.1", 0)
        self.assertErrorCopy(self.send(peer), peer, MALFORMED_REQUEST, 1800)
        self.assertEqual(self.srv.mappings, {})

    def test_unsupp_opcode(self):
        req = bytes([2, 5]) + pcpsim.build_map_request(SRC[0], NONCE, 6, 80, 60, 0)[2:]
        self.assertErrorCopy(self.send(req), req, UNSUPP_OPCODE, 1800)
        self.srv.apply_settings({"peer": "unsupported"}, self.now)
        peer = pcpsim.build_peer_request(SRC[0], NONCE, 6, 8080, 3600, "203.0.113.1", 80)
        self.assertErrorCopy(self.send(peer), peer, UNSUPP_OPCODE, 1800)

    def test_malformed_option(self):
        cases = [
            pcpsim.encode_option(1, bytes(4)),                        # THIRD_PARTY length 4
            PF + PF,                                                  # PREFER_FAILURE twice
            pcpsim.encode_option(2, b"\x00\x00\x00\x00"),             # PREFER_FAILURE length
            pcpsim.encode_option(3, bytes(16)),                       # FILTER length 16
            bytes.fromhex("80000020") + bytes(8),                     # overruns the packet
            pcpsim.option_third_party("::"),                          # unspecified address
        ]
        for opts in cases:
            req = pcpsim.build_map_request(SRC[0], NONCE, 6, 8080, 3600, 0, options=opts)
            self.assertErrorCopy(self.send(req), req, MALFORMED_OPTION, 1800)
        peer = pcpsim.build_peer_request(SRC[0], NONCE, 6, 8080, 3600, "203.0.113.1", 80,
                                         options=PF)                  # not valid for PEER
        self.assertErrorCopy(self.send(peer), peer, MALFORMED_OPTION, 1800)
        self.assertEqual(self.srv.mappings, {})

    # PEER (RFC 6887 §12.3)
    def test_peer(self):
        m = self.map(sport=7000)
        peer = pcpsim.build_peer_request(SRC[0], NONCE2, 6, 8080, 600, "203.0.113.1", 80)
        r = self.send(peer)
        self.assertResult(r, SUCCESS)
        self.assertEqual((r["external_port"], r["remote_port"], r["remote_addr"]),
                         (m["external_port"], 80, "203.0.113.1"))   # same endpoint, same port
        other = pcpsim.build_peer_request(SRC[0], NONCE, 6, 8080, 600, "203.0.113.1", 80)
        self.assertResult(self.send(other), NOT_AUTHORIZED)
        self.assertResult(self.send(pcpsim.build_peer_request(SRC[0], NONCE2, 6, 8080, 0,
                                                              "203.0.113.1", 80)), SUCCESS)
        self.assertEqual(len(self.srv.peers), 0)
        # A suggested port held by someone else (RFC 6887 §7.4 CANNOT_PROVIDE_EXTERNAL).
        self.srv.reserved.add((17, 3478))
        peer = pcpsim.build_peer_request(SRC[0], NONCE, 17, 5000, 600, "203.0.113.1", 80, 3478)
        self.assertResult(self.send(peer), CANNOT_PROVIDE_EXTERNAL)
        self.srv.apply_settings({"peer_unavailable": "other_port"}, self.now)
        r = self.send(peer)
        self.assertResult(r, SUCCESS)
        self.assertNotEqual(r["external_port"], 3478)

    def test_announce_request(self):
        r = self.send(pcpsim.build_announce_request(SRC[0]), dt=42)
        self.assertEqual((r["result"], r["opcode"], r["lifetime"], r["epoch"], r["length"]),
                         (SUCCESS, 0, 0, 42, 24))

    # Epoch (RFC 6887 §8.5)
    def test_epoch_and_restart(self):
        self.assertEqual(self.map()["epoch"], 0)
        self.assertEqual(self.map(dt=10.7)["epoch"], 10)
        self.srv.apply_settings({"epoch": 5000}, self.now)
        self.assertEqual(self.map(dt=3)["epoch"], 5003)
        self.srv.restart(self.now)
        self.assertEqual(self.srv.mappings, {})
        self.assertEqual(self.map(dt=2)["epoch"], 2)
        self.assertEqual(pcpsim.parse_response(self.srv.announce_packet(self.now))["epoch"], 2)

    # faults in the core
    def test_force_result_with_match(self):
        self.srv.apply_settings({"force_result": {"code": "USER_EX_QUOTA", "count": 2,
                                                  "match": {"internal_port": 7777},
                                                  "lifetime": 5}}, self.now)
        self.assertResult(self.map(iport=1), SUCCESS)
        r = self.map(iport=7777)
        self.assertEqual((r["result"], r["lifetime"]), (USER_EX_QUOTA, 5))
        self.assertResult(self.map(iport=7777), USER_EX_QUOTA)
        self.assertResult(self.map(iport=7777), SUCCESS)                  # count used up
        f = self.srv.add_fault({"action": "result", "value": 2, "match": {"delete": True}})
        self.assertResult(self.map(iport=7777, lifetime=0), NOT_AUTHORIZED)
        self.assertEqual(f.fired, 1)

    def test_other_port_despite_prefer_failure(self):
        self.srv.apply_settings({"force_other_port": 1}, self.now)
        r = self.map(sport=5000, options=PF)
        self.assertResult(r, SUCCESS)
        self.assertNotEqual(r["external_port"], 5000)
        self.assertEqual(self.srv.mappings_json(self.now)[0]["external_port"], r["external_port"])
        self.assertEqual(self.map(iport=9, sport=5000, options=PF)["external_port"], 5000)

    def test_wrong_nonce_and_epoch_override(self):
        self.srv.apply_settings({"wrong_nonce": 1, "epoch_override": 123456}, self.now)
        r = self.map()
        self.assertNotEqual(r["nonce"], NONCE.hex())
        self.assertEqual(r["epoch"], 123456)
        self.srv.apply_settings({"epoch_override": None}, self.now)
        r = self.map()
        self.assertEqual((r["nonce"], r["epoch"]), (NONCE.hex(), 0))

    def test_drop_prob_is_seeded(self):
        self.srv.apply_settings({"drop_prob": 0.5, "seed": 7}, self.now)
        got = [self.map() is None for _ in range(200)]
        self.assertTrue(40 < sum(got) < 160, sum(got))
        self.srv.apply_settings({"drop_prob": 0}, self.now)
        self.assertIsNotNone(self.map())

    def test_shorthands_are_independent(self):
        self.srv.apply_settings({"drop_next": 1, "delay_ms": 5}, self.now)
        self.srv.apply_settings({"drop_prob": 0}, self.now)      # leaves drop_next alone
        self.assertEqual(sorted(f.action for f in self.srv.faults), ["delay", "drop"])
        self.assertIsNone(self.map())
        out = self.srv.handle(pcpsim.build_map_request(SRC[0], NONCE, 6, 1, 60, 0), SRC, LOCAL,
                              self.now)
        self.assertEqual(out[0].delay_ms, 5)
        for bad in ({"client": "nope"}, {"nonce": "12"}, {"protocol": "tcp"},
                    {"delete": 1}, {"colour": "red"}):
            with self.assertRaises(ValueError, msg=bad):
                self.srv.add_fault({"action": "drop", "match": bad})
        f = self.srv.add_fault({"action": "drop", "match": {"nonce": NONCE2.hex().upper()}})
        self.assertIsNotNone(self.map())
        self.assertIsNone(self.map(nonce=NONCE2))
        self.assertEqual(f.fired, 1)

    def test_forget(self):
        self.map(iport=1)
        self.map(iport=2, proto=17)
        self.assertEqual(self.srv.forget({"protocol": 17}, self.now), 1)
        self.assertEqual([m.internal_port for m in self.srv.mappings.values()], [1])
        with self.assertRaises(ValueError):
            self.srv.forget({"colour": 1}, self.now)
        self.assertEqual(self.map(iport=1, dt=5)["epoch"], 5)     # no Epoch reset

    def test_renumber_and_update_packet(self):
        """RFC 6887 §14.2: every mapping moves to the new address with its port; the
        unsolicited response carries its nonce, protocol, internal port, THIRD_PARTY."""
        self.map(iport=8080, sport=8080, lifetime=600)
        tp = pcpsim.option_third_party("192.168.1.10")
        self.srv.apply_settings({"third_party": "allow"}, self.now)
        self.map(iport=5000, sport=5000, proto=17, nonce=NONCE2, options=tp, lifetime=600)
        self.srv.take_events()
        moved = self.srv.renumber("203.0.113.9", self.now + 100, epoch_reset=False)
        self.assertEqual(len(moved), 2)
        self.assertEqual(self.srv.config["external_ip"], "203.0.113.9")
        self.assertEqual([(e, r) for e, _m, r in self.srv.take_events()],
                         [("delete", "renumbered"), ("add", "renumbered")] * 2)
        by_port = {m.ext_port: m for m in moved}
        r = pcpsim.parse_response(self.srv.update_packet(by_port[8080], self.now + 100))
        self.assertEqual((r["result"], r["opcode"], r["nonce"], r["protocol"], r["internal_port"],
                          r["external_port"], r["external_addr"], r["lifetime"]),
                         (SUCCESS, pcpsim.OP_MAP, NONCE.hex(), 6, 8080, 8080, "203.0.113.9", 500))
        self.assertEqual(r["options"], [])
        r = pcpsim.parse_response(self.srv.update_packet(by_port[5000], self.now + 100))
        self.assertEqual((r["nonce"], r["protocol"], r["external_port"]), (NONCE2.hex(), 17, 5000))
        self.assertEqual(r["options"][0]["internal_addr"], "192.168.1.10")
        self.assertEqual(r["epoch"], 100)
        # a refresh after it: the same port, the new address
        r = self.map(iport=8080, sport=8080, lifetime=600, dt=101, saddr="203.0.113.9",
                     options=PF)
        self.assertEqual((r["result"], r["external_port"], r["external_addr"]),
                         (SUCCESS, 8080, "203.0.113.9"))
        self.assertEqual(self.srv.renumber("203.0.113.9", self.now), [])   # nothing moves
        with self.assertRaises(ValueError):
            self.srv.renumber("not-an-address", self.now)
        # RFC 6887 §8.5: by default the Epoch restarts with the new address
        moved = self.srv.renumber("203.0.113.10", self.now, lifetime=30)
        r = pcpsim.parse_response(self.srv.update_packet(moved[0], self.now + 3))
        self.assertEqual((r["external_addr"], r["lifetime"], r["epoch"]), ("203.0.113.10", 27, 3))
        with self.assertRaises(ValueError):
            self.srv.renumber("203.0.113.11", self.now, lifetime=0)

    def test_mutated_requests_never_crash_and_errors_change_nothing(self):
        """Seeded mutation fuzzing: every answer is a well-formed response of at most 1100
        octets, and an error answer leaves the table untouched (RFC 6887 §7.3)."""
        import random
        rng = random.Random(2024)
        seeds = [pcpsim.build_map_request(SRC[0], NONCE, 6, 80, 600, 80,
                                          options=PF + pcpsim.option_filter("203.0.113.1", 128)
                                          + pcpsim.option_description("x")),
                 pcpsim.build_map_request(SRC[0], NONCE, 17, 81, 0, 0),
                 pcpsim.build_peer_request(SRC[0], NONCE, 17, 80, 600, "203.0.113.1", 5,
                                           options=pcpsim.option_third_party("10.0.0.1")),
                 pcpsim.build_announce_request(SRC[0])]
        answered = 0
        for i in range(5000):
            d = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                op = rng.random()
                if op < 0.6 and d:
                    d[rng.randrange(len(d))] = rng.randrange(256)
                elif op < 0.8:
                    d = d[:rng.randrange(len(d) + 1)]
                else:
                    d += bytes(rng.randrange(256) for _ in range(rng.choice((1, 2, 4, 8))))
            if len(d) > 1 and rng.random() < 0.7:
                d[0], d[1] = 2, d[1] & 0x7F
            self.now += 0.5
            self.srv.expire(self.now)
            before = {k: (m.nonce, m.ext_port, m.expires, tuple(m.filters))
                      for t in (self.srv.mappings, self.srv.peers) for k, m in t.items()}
            outs = self.srv.handle(bytes(d), SRC, LOCAL, self.now)
            for o in outs:
                self.assertLessEqual(len(o.data), 1100)
                self.assertEqual(len(o.data) % 4, 0)
                r = pcpsim.parse_response(o.data)
                answered += 1
                if r["result"] != SUCCESS:
                    after = {k: (m.nonce, m.ext_port, m.expires, tuple(m.filters))
                             for t in (self.srv.mappings, self.srv.peers)
                             for k, m in t.items()}
                    self.assertEqual(before, after, bytes(d).hex())
        self.assertGreater(answered, 1000)

    def test_events_for_the_hook(self):
        self.srv.take_events()
        self.map(iport=1, lifetime=120)
        self.map(iport=1, lifetime=120)                          # refresh: no event
        self.map(iport=2)
        self.map(iport=2, lifetime=0)
        self.map(iport=3, nonce=NONCE2)
        self.map(iport=3, lifetime=0)                            # wrong nonce: no event
        self.now += 121
        self.srv.expire(self.now)
        self.srv.restart(self.now)
        got = [(e, m["internal_port"], why) for e, m, why in self.srv.take_events()]
        self.assertEqual(got, [("add", 1, "created"), ("add", 2, "created"),
                               ("delete", 2, "deleted"), ("add", 3, "created"),
                               ("delete", 1, "expired"), ("delete", 3, "restart")])
        self.assertEqual(self.srv.take_events(), [])

    def test_bad_settings_rejected(self):
        for bad in ({"third_party": "maybe"}, {"min_lifetime": -1}, {"nosuch": 1},
                    {"min_lifetime": 500, "max_lifetime": 100}, {"force_result": "NOPE"},
                    {"port_min": 0}):
            with self.assertRaises(ValueError, msg=bad):
                self.srv.apply_settings(bad, self.now)
        self.assertEqual(self.srv.config["min_lifetime"], 120)


# --------------------------------------------------------------------------- the daemon

def free_udp_port(addr="127.0.0.1"):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class DaemonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = client.spawn(["127.0.0.1:0", "[::1]:0"], external_ip=EXT)

    @classmethod
    def tearDownClass(cls):
        stats = cls.sim.ctl.stats()
        cls.sim.stop()
        if stats["internal_errors"]:
            raise AssertionError("pcpsim reported %d internal errors" % stats["internal_errors"])
        cls.assertFalse(cls, os.path.exists(cls.sim.control))

    def setUp(self):
        self.ctl = self.sim.ctl
        self.ctl.clear_faults()
        self.ctl.restart(announce=False)
        self.ctl.set(quota=64, third_party="allow", filter="honour", address_mismatch=True)
        self.ctl.reset_log()
        self.c = client.PcpUdpClient(self.sim.listen[0])

    def tearDown(self):
        self.c.close()

    def test_map_v4_and_v6(self):
        r = self.c.map(NONCE, 6, 8080, 3600, 8080, options=PF)
        self.assertEqual((r["result"], r["external_port"], r["external_addr"]), (0, 8080, EXT))
        self.assertEqual(r["_src"], self.sim.listen[0])
        c6 = client.PcpUdpClient(self.sim.listen[1])
        try:
            # DS-Lite style: PCP over IPv6, the IPv4 internal host named by THIRD_PARTY.
            r = c6.map(NONCE2, 17, 5000, 600, 5000,
                       options=pcpsim.option_third_party("192.168.1.10"))
            self.assertEqual((r["result"], r["external_port"]), (0, 5000))
            self.assertEqual(r["_src"], self.sim.listen[1])
        finally:
            c6.close()
        maps = {(m["internal_addr"], m["protocol"]): m for m in self.ctl.mappings()}
        self.assertEqual(maps[("192.168.1.10", 17)]["subscriber"], "::1/128")
        self.assertEqual(maps[("127.0.0.1", 6)]["nonce"], NONCE.hex())
        log = self.ctl.log()
        self.assertEqual(log[0]["response"]["external_port"], 8080)
        self.assertEqual([e["fields"]["opcode_name"] for e in log], ["MAP", "MAP"])
        self.assertEqual(log[1]["fields"]["options"][0]["internal_addr"], "192.168.1.10")

    def test_renumber_sends_unsolicited_map(self):
        r = self.c.map(NONCE, 6, 8080, 3600, 8080, options=PF)
        self.assertEqual(r["external_addr"], EXT)
        try:
            rep = self.ctl.renumber("203.0.113.9", count=2, interval_ms=200)
            self.assertEqual((rep["moved"], len(rep["sent"])), (1, 1))
            for _ in range(2):
                got = self.c.recv(5.0)
                self.assertIsNotNone(got)
                self.assertEqual(got[1], self.sim.listen[0])      # from the server's port
                u = pcpsim.parse_response(got[0])
                self.assertEqual((u["result"], u["nonce"], u["internal_port"], u["external_port"],
                                  u["external_addr"]), (SUCCESS, NONCE.hex(), 8080, 8080,
                                                        "203.0.113.9"))
            self.assertEqual(self.ctl.mappings()[0]["external_addr"], "203.0.113.9")
            self.assertEqual(self.ctl.stats()["updates_sent"], 2)
            self.assertFalse(self.ctl.command({"cmd": "renumber"}, check=False)["ok"])
        finally:
            self.ctl.set(external_ip=EXT)

    def test_drop_first_two(self):
        self.ctl.set(drop_next=2)
        req = pcpsim.build_map_request("127.0.0.1", NONCE, 6, 8080, 3600, 8080)
        sends = []
        for gap in (0.3, 0.6):
            sends.append(self.c.send(req))
            self.assertIsNone(self.c.recv(gap))
        sends.append(self.c.send(req))
        got = self.c.recv(5.0)
        self.assertIsNotNone(got)
        self.assertEqual(pcpsim.parse_response(got[0])["result"], SUCCESS)
        log = self.ctl.log()
        self.assertEqual(len(log), 3)
        self.assertEqual([e.get("dropped") for e in log],
                         ["fault: request dropped", "fault: request dropped", None])
        self.assertEqual([len(e["sent"]) for e in log], [0, 0, 1])
        for sent_at, e in zip(sends, log):
            self.assertGreaterEqual(e["t"], sent_at)        # receive time after the send
            self.assertLessEqual(e["t"], got[2])
        self.assertLess(log[0]["t"], log[1]["t"])
        self.assertLess(log[1]["t"], log[2]["t"])
        # The gaps the client used are visible in the log.
        print("drop-first-2 gaps seen by the server: %.3f s, %.3f s"
              % (log[1]["t"] - log[0]["t"], log[2]["t"] - log[0]["t"]), file=sys.stderr)

    def test_drop_response_then_retransmit(self):
        self.ctl.set(drop_response_next=1)
        self.assertIsNone(self.c.map(NONCE, 6, 8080, 3600, 8080, timeout=0.3))
        self.assertEqual(len(self.ctl.mappings()), 1)          # processed, answer lost
        r = self.c.map(NONCE, 6, 8080, 3600, 8080)
        self.assertEqual((r["result"], r["external_port"]), (0, 8080))
        self.assertEqual([e["detail"] for e in self.ctl.log()], ["created", "refreshed"])

    def test_wrong_nonce(self):
        self.ctl.set(wrong_nonce=1)
        r = self.c.map(NONCE, 6, 8080, 3600, 0)
        self.assertNotEqual(r["nonce"], NONCE.hex())
        r = self.c.map(NONCE, 6, 8080, 3600, 0)
        self.assertEqual(r["nonce"], NONCE.hex())
        self.assertEqual(self.ctl.log()[0]["actions"], ["wrong_nonce"])

    def test_wrong_source(self):
        self.ctl.set(wrong_source=1)
        r = self.c.map(NONCE, 6, 8080, 3600, 0)
        self.assertEqual(r["_src"][0], self.sim.listen[0][0])
        self.assertNotEqual(r["_src"][1], self.sim.listen[0][1])
        e = self.ctl.log()[0]
        self.assertEqual(tuple(e["sent"][0]["from"]), r["_src"])
        r = self.c.map(NONCE, 6, 8080, 3600, 0)
        self.assertEqual(r["_src"], self.sim.listen[0])
        # Another address altogether (127.0.0.2 is local on Linux loopback).
        self.ctl.set(wrong_source=1, wrong_source_addr="127.0.0.2")
        try:
            r = self.c.map(NONCE, 6, 8080, 3600, 0)
            self.assertEqual(r["_src"][0], "127.0.0.2")
        finally:
            self.ctl.set(wrong_source_addr="")

    def test_delay(self):
        self.ctl.set(delay_ms=300)
        t0 = self.c.send(pcpsim.build_map_request("127.0.0.1", NONCE, 6, 80, 600, 0))
        got = self.c.recv(5.0)
        self.assertIsNotNone(got)
        self.assertGreaterEqual(got[2] - t0, 0.3)
        e = self.ctl.log()[0]
        self.assertGreaterEqual(e["sent"][0]["t"] - e["t"], 0.3)
        self.ctl.set(delay_ms=0)
        self.assertEqual(self.ctl.faults(), [])

    def test_duplicate(self):
        self.ctl.set(duplicate=2)
        self.c.send(pcpsim.build_map_request("127.0.0.1", NONCE, 6, 80, 600, 0))
        got = [self.c.recv(5.0) for _ in range(3)]
        self.assertTrue(all(g is not None for g in got))
        self.assertEqual(got[0][0], got[1][0])
        self.assertEqual(got[0][0], got[2][0])
        self.assertIsNone(self.c.recv(0.2))

    def test_reorder(self):
        self.ctl.set(reorder=1)
        self.c.send(pcpsim.build_map_request("127.0.0.1", NONCE, 6, 1001, 600, 0))
        self.assertIsNone(self.c.recv(0.3))                    # held back
        self.c.send(pcpsim.build_map_request("127.0.0.1", NONCE2, 6, 1002, 600, 0))
        first, second = self.c.recv(5.0), self.c.recv(5.0)
        self.assertEqual(pcpsim.parse_response(first[0])["internal_port"], 1002)
        self.assertEqual(pcpsim.parse_response(second[0])["internal_port"], 1001)

    def test_reorder_hold_times_out(self):
        self.ctl.set(reorder=1, reorder_hold_ms=200)
        try:
            r = self.c.map(NONCE, 6, 1001, 600, 0, timeout=5.0)
            self.assertEqual(r["result"], SUCCESS)
        finally:
            self.ctl.set(reorder_hold_ms=10000)

    def test_force_result_and_other_port(self):
        self.ctl.fault("result", value="NO_RESOURCES", count=1, match={"opcode": "map"})
        r = self.c.map(NONCE, 6, 8080, 3600, 8080, options=PF)
        self.assertEqual((r["result_name"], r["lifetime"]), ("NO_RESOURCES", 30))
        self.ctl.set(force_other_port=1)
        r = self.c.map(NONCE, 6, 8080, 3600, 8080, options=PF)
        self.assertEqual(r["result"], SUCCESS)
        self.assertNotEqual(r["external_port"], 8080)

    def test_prefer_failure_conflict_over_udp(self):
        self.ctl.reserve(6, 6000)
        try:
            r = self.c.map(NONCE, 6, 8080, 3600, 6000, options=PF)
            self.assertEqual(r["result"], CANNOT_PROVIDE_EXTERNAL)
            r = self.c.map(NONCE, 6, 8080, 3600, 6000)
            self.assertEqual(r["result"], SUCCESS)
            self.assertNotEqual(r["external_port"], 6000)
        finally:
            self.ctl.unreserve(6, 6000)

    def test_restart_epoch_reset_and_unicast_announce(self):
        port = free_udp_port()
        listener = client.PcpUdpClient(self.sim.listen[0], bind_port=port)
        try:
            self.ctl.set(epoch=1000, announce_port=port)
            r = listener.map(NONCE, 6, 8080, 3600, 0)
            self.assertGreaterEqual(r["epoch"], 1000)
            self.assertEqual(len(self.ctl.mappings()), 1)
            reply = self.ctl.restart(announce="unicast")
            self.assertTrue(any(a["to"] == ["127.0.0.1", port] for a in reply["announce"]))
            got = listener.recv(5.0)
            self.assertIsNotNone(got, "no ANNOUNCE received")
            a = pcpsim.parse_response(got[0])
            self.assertEqual((a["opcode"], a["r"], a["result"], a["lifetime"], a["length"]),
                             (0, 1, SUCCESS, 0, 24))
            self.assertLess(a["epoch"], 1000)
            self.assertEqual(got[1], self.sim.listen[0])
            self.assertEqual(self.ctl.mappings(), [])
            r = listener.map(NONCE2, 6, 8080, 3600, 0)
            self.assertEqual(r["result"], SUCCESS)
            self.assertLess(r["epoch"], 1000)
        finally:
            listener.close()
            self.ctl.set(announce_port=5350)

    def test_multicast_announce(self):
        port = free_udp_port("0.0.0.0")
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            r.bind(("224.0.0.1", port))
            try:
                r.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                             socket.inet_aton("224.0.0.1") + socket.inet_aton("127.0.0.1"))
            except OSError as exc:
                self.skipTest("cannot join 224.0.0.1 on loopback: %s" % exc)
            self.ctl.set(announce_port=port, announce_count=2, announce_interval_ms=100)
            reply = self.ctl.restart(announce="multicast")
            self.assertIn(["224.0.0.1", port], [a["to"] for a in reply["announce"]])
            r.settimeout(5.0)
            for _ in range(2):
                data, src = r.recvfrom(100)
                a = pcpsim.parse_response(data)
                self.assertEqual((a["opcode"], a["result"], a["lifetime"]), (0, SUCCESS, 0))
                self.assertEqual(src, self.sim.listen[0])
        finally:
            r.close()
            self.ctl.set(announce_port=5350, announce_count=1)

    def test_malformed_over_udp(self):
        good = pcpsim.build_map_request("127.0.0.1", NONCE, 6, 8080, 3600, 0)
        self.c.send(b"\x02\x81" + good[2:])                     # R bit: ignored
        r = self.c.request(good + b"\x00\x00")
        self.assertEqual(r["result"], MALFORMED_REQUEST)
        r = self.c.request(bytes([1]) + good[1:])
        self.assertEqual((r["result"], r["length"]), (UNSUPP_VERSION, 24))
        r = self.c.map(NONCE, 6, 8080, 3600, 0, client_addr="127.0.0.2")
        self.assertEqual(r["result"], ADDRESS_MISMATCH)
        log = self.ctl.log()
        self.assertEqual(log[0]["dropped"], "ignored: R bit set")
        self.assertEqual([e.get("result_name") for e in log[1:]],
                         ["MALFORMED_REQUEST", "UNSUPP_VERSION", "ADDRESS_MISMATCH"])

    def test_quota_and_third_party_refused(self):
        self.ctl.set(quota=1, third_party="not_authorized")
        self.assertEqual(self.c.map(NONCE, 6, 1, 600, 0)["result"], SUCCESS)
        self.assertEqual(self.c.map(NONCE, 6, 2, 600, 0)["result"], USER_EX_QUOTA)
        r = self.c.map(NONCE, 6, 1, 600, 0, options=pcpsim.option_third_party("10.0.0.2"))
        self.assertEqual(r["result"], NOT_AUTHORIZED)

    def test_ctl_cli(self):
        script = os.path.join(HERE, "pcpsim.py")
        p = subprocess.run(["/usr/bin/python3", script, "ctl", self.sim.control,
                            '{"cmd":"set","quota":7}'], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["config"]["quota"], 7)
        p = subprocess.run(["/usr/bin/python3", script, "ctl", self.sim.control, "-"],
                           input='{"cmd":"ping"}\n\n{"cmd":"stats"}\n', capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        replies = [json.loads(x) for x in p.stdout.splitlines()]
        self.assertEqual(len(replies), 2)
        self.assertIn("stats", replies[1])
        p = subprocess.run(["/usr/bin/python3", script, "ctl", self.sim.control,
                            '{"cmd":"bogus"}'], capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertFalse(json.loads(p.stdout)["ok"])
        reply = self.ctl.command({"cmd": "set", "quota": "x"}, check=False)
        self.assertFalse(reply["ok"])
        self.assertEqual(self.ctl.config()["config"]["quota"], 7)

    def test_control_garbage(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.sim.control)
        f = s.makefile("rwb")
        try:
            for line in (b"not json", b"[1,2]", b'{"cmd":42}', b'{"cmd":"set","quota":-1}',
                         b'{"cmd":"fault","action":"drop","count":"x"}',
                         b'{"cmd":"reserve"}', b"\xff\xfe", b'{"cmd":"log","since":"a"}',
                         b'{"cmd":"' + b"A" * 200000 + b'"}'):
                f.write(line + b"\n")
                f.flush()
                reply = json.loads(f.readline())
                self.assertFalse(reply["ok"], line[:40])
            f.write(b'{"cmd":"ping"}\n')
            f.flush()
            self.assertTrue(json.loads(f.readline())["ok"])
        finally:
            f.close()
            s.close()

    def test_after_ms(self):
        self.assertEqual(self.c.map(NONCE, 6, 1, 600, 0)["result"], SUCCESS)
        self.ctl.command({"cmd": "restart", "announce": False, "after_ms": 200})
        deadline = time.monotonic() + 5
        while self.ctl.mappings() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.ctl.mappings(), [])
        self.assertEqual(self.ctl.stats()["restarts"] >= 1, True)


class ScriptAndSignalTest(unittest.TestCase):
    def test_script_file_and_sigterm(self):
        fd, path = tempfile.mkstemp(suffix=".jsonl")
        with os.fdopen(fd, "w") as fh:
            fh.write('# start-up script\n{"cmd":"set","quota":1,"filter":"unsupported"}\n'
                     '{"cmd":"reserve","protocol":17,"port":5555}\n')
        try:
            sim = client.spawn(["127.0.0.1:0"], script=path)
        finally:
            os.unlink(path)
        try:
            cfg = sim.ctl.config()["config"]
            self.assertEqual((cfg["quota"], cfg["filter"]), (1, "unsupported"))
            c = client.PcpUdpClient(sim.listen[0])
            try:
                r = c.map(NONCE, 17, 5555, 600, 5555, options=PF)
                self.assertEqual(r["result"], CANNOT_PROVIDE_EXTERNAL)
                r = c.map(NONCE, 17, 5555, 600, 0,
                          options=pcpsim.option_filter("203.0.113.1", 128))
                self.assertEqual(r["result"], UNSUPP_OPTION)
            finally:
                c.close()
            sim.proc.terminate()
            self.assertEqual(sim.proc.wait(5), 0)
            self.assertFalse(os.path.exists(sim.control))
        finally:
            sim.stop()

    def test_taken_port_fails_start(self):
        sim = client.spawn(["127.0.0.1:0"])
        try:
            with self.assertRaises(RuntimeError):
                client.spawn(["127.0.0.1:%d" % sim.listen[0][1]])
            self.assertEqual(sim.ctl.ping()["ok"], True)
        finally:
            sim.stop()

    def test_bad_script_fails_start(self):
        fd, path = tempfile.mkstemp(suffix=".jsonl")
        with os.fdopen(fd, "w") as fh:
            fh.write('{"cmd":"set","third_party":"perhaps"}\n')
        try:
            with self.assertRaises(RuntimeError):
                client.spawn(["127.0.0.1:0"], script=path)
        finally:
            os.unlink(path)


class HookTest(unittest.TestCase):
    def test_hook_sees_every_add_and_delete_before_the_answer(self):
        tmp = tempfile.mkdtemp(prefix="pcpsim-hook.")
        out = os.path.join(tmp, "events")
        hook = os.path.join(tmp, "hook.sh")
        with open(hook, "w") as fh:
            fh.write("#!/bin/sh\necho \"$1 $PCPSIM_REASON $PCPSIM_PROTOCOL $PCPSIM_INTERNAL_ADDR "
                     "$PCPSIM_INTERNAL_PORT $PCPSIM_EXTERNAL_ADDR $PCPSIM_EXTERNAL_PORT\" >> %s\n"
                     % out)
        os.chmod(hook, 0o755)
        sim = client.spawn(["127.0.0.1:0"], extra_args=["--hook", hook])
        try:
            c = client.PcpUdpClient(sim.listen[0])
            try:
                self.assertEqual(c.map(NONCE, 6, 8080, 600, 8080)["result"], SUCCESS)
                with open(out) as fh:                      # already there at the answer
                    self.assertEqual(fh.read().split("\n")[0],
                                     "add created 6 127.0.0.1 8080 %s 8080" % EXT)
                self.assertEqual(c.map(NONCE, 17, 53, 600, 5353)["result"], SUCCESS)
                self.assertEqual(c.map(NONCE, 6, 8080, 0, 0)["result"], SUCCESS)
            finally:
                c.close()
            sim.ctl.restart(announce=False)
            sim.ctl.set(hook="/nonexistent/hook")
            c = client.PcpUdpClient(sim.listen[0])
            try:
                self.assertEqual(c.map(NONCE, 6, 1, 600, 0)["result"], SUCCESS)
            finally:
                c.close()
            stats = sim.ctl.stats()
            self.assertEqual((stats["hook_runs"], stats["hook_failures"]), (5, 1))
            # Expiry reaches the hook without any request or command (1 s tick).
            sim.ctl.set(hook=hook, min_lifetime=1)
            c = client.PcpUdpClient(sim.listen[0])
            try:
                self.assertEqual(c.map(NONCE, 17, 7, 1, 7007)["lifetime"], 1)
            finally:
                c.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with open(out) as fh:
                    if "delete expired 17" in fh.read():
                        break
                time.sleep(0.1)
            with open(out) as fh:
                lines = fh.read().splitlines()
            self.assertEqual(lines, [
                "add created 6 127.0.0.1 8080 %s 8080" % EXT,
                "add created 17 127.0.0.1 53 %s 5353" % EXT,
                "delete deleted 6 127.0.0.1 8080 %s 8080" % EXT,
                "delete restart 17 127.0.0.1 53 %s 5353" % EXT,
                "add created 17 127.0.0.1 7 %s 7007" % EXT,
                "delete expired 17 127.0.0.1 7 %s 7007" % EXT])
        finally:
            sim.stop()
            for name in os.listdir(tmp):
                os.unlink(os.path.join(tmp, name))
            os.rmdir(tmp)


class LibraryTest(unittest.TestCase):
    def test_in_process(self):
        sim = pcpsim.Simulator([("127.0.0.1", 0)], external_ip="203.0.113.200",
                               settings={"alloc": "sequential", "port_min": 40000})
        sim.start()
        try:
            c = client.PcpUdpClient(sim.addresses[0])
            try:
                r = c.map(NONCE, 6, 22, 600, 0)
                self.assertEqual((r["result"], r["external_port"], r["external_addr"]),
                                 (SUCCESS, 40000, "203.0.113.200"))
                r = c.peer(NONCE, 17, 53, 600, "203.0.113.5", 53)
                self.assertEqual((r["result"], r["external_port"]), (SUCCESS, 40001))
            finally:
                c.close()
            maps = sim.command({"cmd": "mappings"})["mappings"]
            self.assertEqual(sorted(m["kind"] for m in maps), ["map", "peer"])
            self.assertFalse(sim.command({"cmd": "fault", "action": "explode"})["ok"])
        finally:
            sim.stop()


if __name__ == "__main__":
    unittest.main()

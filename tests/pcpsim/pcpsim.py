#!/usr/bin/python3
"""pcpsim - a carrier-grade-NAT PCP server simulator for fault injection (test tool only).

It speaks PCP version 2 (RFC 6887) on the wire, keeps a per-subscriber mapping table like
a CGN would, and misbehaves on request: dropped, delayed, duplicated or reordered
responses, wrong nonces, answers from a wrong address, forced result codes, restarts with
an Epoch reset and ANNOUNCE.  It does NOT forward any traffic: it is the PCP half of a
carrier NAT, never a substitute for Debian's miniupnpd in tests that need a data path.

Three ways to use it (docs/pcpsim.md has every knob):
  * as a daemon:   /usr/bin/python3 pcpsim.py --listen 127.0.0.1:5351 --listen [::1]:5351 \
                       --external-ip 198.51.100.1 --control /run/pcpsim.sock [--script FILE]
  * from a shell:  /usr/bin/python3 pcpsim.py ctl /run/pcpsim.sock '{"cmd":"mappings"}'
  * as a library:  sim = pcpsim.Simulator(listen=[("127.0.0.1", 0)]); sim.start();
                   sim.command({"cmd": "set", "quota": 2}); ...; sim.stop()

The codec helpers (build_*_request, parse_response, ...) are a tiny PCP client usable by
tests.  Standard library only.  Times are time.monotonic() seconds (CLOCK_MONOTONIC on
Linux, the clock the C code uses).
"""

import argparse
import heapq
import ipaddress
import json
import os
import random
import selectors
import socket
import struct
import sys
import threading
import time

# --------------------------------------------------------------------------- constants

VERSION = 2                 # RFC 6887 §7.1
SERVER_PORT = 5351          # RFC 6887 §19.1
CLIENT_PORT = 5350          # RFC 6887 §14.1.3 (ANNOUNCE destination)
MAX_PACKET = 1100           # RFC 6887 §7
HEADER_LEN = 24             # RFC 6887 §7.1, §7.2
MAP_LEN = 36                # RFC 6887 §11.1
PEER_LEN = 56               # RFC 6887 §12.1
NONCE_LEN = 12

OP_ANNOUNCE, OP_MAP, OP_PEER = 0, 1, 2
OPCODE_NAMES = {OP_ANNOUNCE: "ANNOUNCE", OP_MAP: "MAP", OP_PEER: "PEER"}

OPT_THIRD_PARTY, OPT_PREFER_FAILURE, OPT_FILTER, OPT_DESCRIPTION = 1, 2, 3, 128
OPTION_NAMES = {OPT_THIRD_PARTY: "THIRD_PARTY", OPT_PREFER_FAILURE: "PREFER_FAILURE",
                OPT_FILTER: "FILTER", OPT_DESCRIPTION: "DESCRIPTION"}

# RFC 6887 §7.4.  Each code with its name and whether it is a long-lifetime error.
RESULTS = {
    0: ("SUCCESS", False),
    1: ("UNSUPP_VERSION", True),
    2: ("NOT_AUTHORIZED", True),
    3: ("MALFORMED_REQUEST", True),
    4: ("UNSUPP_OPCODE", True),
    5: ("UNSUPP_OPTION", True),
    6: ("MALFORMED_OPTION", True),
    7: ("NETWORK_FAILURE", False),
    8: ("NO_RESOURCES", False),
    9: ("UNSUPP_PROTOCOL", True),
    10: ("USER_EX_QUOTA", False),
    11: ("CANNOT_PROVIDE_EXTERNAL", False),
    12: ("ADDRESS_MISMATCH", True),
    13: ("EXCESSIVE_REMOTE_PEERS", True),
}
RESULT_CODES = {name: code for code, (name, _) in RESULTS.items()}
(SUCCESS, UNSUPP_VERSION, NOT_AUTHORIZED, MALFORMED_REQUEST, UNSUPP_OPCODE, UNSUPP_OPTION,
 MALFORMED_OPTION, NETWORK_FAILURE, NO_RESOURCES, UNSUPP_PROTOCOL, USER_EX_QUOTA,
 CANNOT_PROVIDE_EXTERNAL, ADDRESS_MISMATCH, EXCESSIVE_REMOTE_PEERS) = range(14)


def result_name(code):
    return RESULTS.get(code, ("RESULT_%d" % code, False))[0]


def result_code(value):
    """A result code from an int or a name ("NOT_AUTHORIZED")."""
    if isinstance(value, bool):
        raise ValueError("result code must be a number or a name")
    if isinstance(value, int):
        if not 0 <= value <= 255:
            raise ValueError("result code out of range: %d" % value)
        return value
    if isinstance(value, str) and value.upper() in RESULT_CODES:
        return RESULT_CODES[value.upper()]
    raise ValueError("unknown result code %r" % (value,))


# --------------------------------------------------------------------------- addresses

V4MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"


def addr_to16(text):
    """'192.0.2.1' -> ::ffff:192.0.2.1 as 16 bytes (RFC 6887 §5); IPv6 text as is."""
    ip = ipaddress.ip_address(text.split("%", 1)[0])
    if ip.version == 4:
        return V4MAPPED_PREFIX + ip.packed
    return ip.packed


def addr_from16(raw):
    """16 bytes -> text; IPv4-mapped addresses come back as dotted quads."""
    if len(raw) != 16:
        raise ValueError("address must be 16 bytes")
    if raw[:12] == V4MAPPED_PREFIX:
        return str(ipaddress.IPv4Address(raw[12:]))
    return str(ipaddress.IPv6Address(raw))


def is_v4mapped(raw):
    return raw[:12] == V4MAPPED_PREFIX


def addr_is_unspecified(raw):
    """'No preference': :: or ::ffff:0.0.0.0 (RFC 6887 §11.1)."""
    return raw == bytes(16) or raw == V4MAPPED_PREFIX + bytes(4)


# --------------------------------------------------------------------------- codec: build

def encode_option(code, data=b""):
    """RFC 6887 §7.3: code, reserved, length (unpadded), data padded to 4 octets."""
    pad = (-len(data)) % 4
    return struct.pack("!BBH", code, 0, len(data)) + data + b"\x00" * pad


def option_third_party(internal_addr):
    return encode_option(OPT_THIRD_PARTY, addr_to16(internal_addr))


def option_prefer_failure():
    return encode_option(OPT_PREFER_FAILURE)


def option_filter(remote_addr, prefix_len, remote_port=0):
    """RFC 6887 §13.3: reserved, prefix length, remote peer port, remote peer address."""
    return encode_option(OPT_FILTER, struct.pack("!BBH", 0, prefix_len, remote_port)
                         + addr_to16(remote_addr))


def option_description(text):
    """RFC 7220: UTF-8 text."""
    return encode_option(OPT_DESCRIPTION, text.encode("utf-8"))


def build_request_header(opcode, lifetime, client_addr, version=VERSION):
    """RFC 6887 §7.1: version, R=0|opcode, 16 reserved bits, lifetime, client address."""
    return struct.pack("!BBHI", version, opcode & 0x7F, 0, lifetime) + addr_to16(client_addr)


def build_map_request(client_addr, nonce, protocol, internal_port, lifetime,
                      suggested_port=0, suggested_addr="::ffff:0.0.0.0", options=b""):
    """A MAP request (RFC 6887 §11.1).  nonce: 12 bytes.  options: encoded bytes."""
    if len(nonce) != NONCE_LEN:
        raise ValueError("nonce must be 12 bytes")
    return (build_request_header(OP_MAP, lifetime, client_addr) + nonce
            + struct.pack("!B3xHH", protocol, internal_port, suggested_port)
            + addr_to16(suggested_addr) + options)


def build_peer_request(client_addr, nonce, protocol, internal_port, lifetime, remote_addr,
                       remote_port, suggested_port=0, suggested_addr="::ffff:0.0.0.0",
                       options=b""):
    """A PEER request (RFC 6887 §12.1)."""
    if len(nonce) != NONCE_LEN:
        raise ValueError("nonce must be 12 bytes")
    return (build_request_header(OP_PEER, lifetime, client_addr) + nonce
            + struct.pack("!B3xHH", protocol, internal_port, suggested_port)
            + addr_to16(suggested_addr)
            + struct.pack("!HH", remote_port, 0) + addr_to16(remote_addr) + options)


def build_announce_request(client_addr):
    """An ANNOUNCE request (RFC 6887 §14.1): the header alone, lifetime 0."""
    return build_request_header(OP_ANNOUNCE, 0, client_addr)


def new_nonce():
    return os.urandom(NONCE_LEN)


# --------------------------------------------------------------------------- codec: parse

class Drop(Exception):
    """The request is silently dropped (RFC 6887 §8.2)."""


class PcpError(Exception):
    """The request is answered with an error result code."""

    def __init__(self, code, detail, lifetime=None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.lifetime = lifetime


def parse_options(data, offset):
    """List of (code, payload) from data[offset:]; raises PcpError(MALFORMED_OPTION)."""
    opts = []
    while offset < len(data):
        if len(data) - offset < 4:
            raise PcpError(MALFORMED_OPTION, "truncated option header")  # RFC 6887 §7.3
        code, _reserved, length = struct.unpack_from("!BBH", data, offset)
        offset += 4
        padded = length + (-length) % 4
        if padded > len(data) - offset:
            raise PcpError(MALFORMED_OPTION, "option %d length %d overruns the packet"
                           % (code, length))  # RFC 6887 §7.3
        opts.append((code, bytes(data[offset:offset + length])))
        offset += padded
    return opts


def decode_option(code, payload):
    """A JSON-friendly view of one option, for logs and tests."""
    out = {"code": code, "name": OPTION_NAMES.get(code, "OPTION_%d" % code),
           "length": len(payload)}
    try:
        if code == OPT_THIRD_PARTY and len(payload) == 16:
            out["internal_addr"] = addr_from16(payload)
        elif code == OPT_FILTER and len(payload) == 20:
            out["prefix_length"] = payload[1]
            out["remote_port"] = struct.unpack_from("!H", payload, 2)[0]
            out["remote_addr"] = addr_from16(payload[4:20])
        elif code == OPT_DESCRIPTION:
            out["text"] = payload.decode("utf-8", "replace")
        else:
            out["hex"] = payload.hex()
    except ValueError:
        out["hex"] = payload.hex()
    return out


def _parse_common_body(data, opcode, out):
    """MAP / PEER opcode-specific fields, shared by requests and responses."""
    body = HEADER_LEN
    out["nonce"] = bytes(data[body:body + 12]).hex()
    out["protocol"] = data[body + 12]
    out["internal_port"], port2 = struct.unpack_from("!HH", data, body + 16)
    raw_addr = bytes(data[body + 20:body + 36])
    out["_ext_addr16"] = raw_addr
    if opcode == OP_PEER:
        out["remote_port"] = struct.unpack_from("!H", data, body + 36)[0]
        out["_remote16"] = bytes(data[body + 40:body + 56])
        out["remote_addr"] = addr_from16(out["_remote16"])
    return port2, addr_from16(raw_addr)


def parse_request(data):
    """Decode a request as far as RFC 6887 §8.2 allows.

    Returns a dict of fields (internal keys start with '_').  Raises Drop for packets the
    server must ignore, PcpError for packets to answer with an error; in both cases the
    exception carries the partial dict as .fields.
    """
    fields = {"length": len(data)}
    try:
        if len(data) < 2:
            raise Drop("shorter than 2 octets")                      # RFC 6887 §8.2
        fields["version"] = data[0]
        fields["r"] = data[1] >> 7
        fields["opcode"] = data[1] & 0x7F
        fields["opcode_name"] = OPCODE_NAMES.get(fields["opcode"], str(fields["opcode"]))
        if fields["r"]:
            raise Drop("R bit set")                                  # RFC 6887 §8.2
        if data[0] != VERSION:
            raise PcpError(UNSUPP_VERSION, "version %d" % data[0])   # RFC 6887 §8.2, §9
        if len(data) < HEADER_LEN:
            raise Drop("shorter than the 24-octet header")           # RFC 6887 §8.2
        fields["lifetime"] = struct.unpack_from("!I", data, 4)[0]
        fields["_client16"] = bytes(data[8:24])
        fields["client_addr"] = addr_from16(fields["_client16"])
        if len(data) > MAX_PACKET:
            raise PcpError(MALFORMED_REQUEST, "longer than 1100 octets")   # RFC 6887 §8.2
        if len(data) % 4:
            raise PcpError(MALFORMED_REQUEST, "not a multiple of 4 octets")  # RFC 6887 §8.2
        opcode = fields["opcode"]
        need = {OP_ANNOUNCE: 0, OP_MAP: MAP_LEN, OP_PEER: PEER_LEN}.get(opcode)
        if need is None:
            raise PcpError(UNSUPP_OPCODE, "opcode %d" % opcode)      # RFC 6887 §8.2
        if len(data) < HEADER_LEN + need:
            raise PcpError(MALFORMED_REQUEST, "too short for %s" % fields["opcode_name"])
        if opcode in (OP_MAP, OP_PEER):
            fields["suggested_port"], fields["suggested_addr"] = \
                _parse_common_body(data, opcode, fields)
        opts = parse_options(data, HEADER_LEN + need)
        fields["_options"] = opts
        fields["options"] = [decode_option(c, p) for c, p in opts]
        fields["_raw"] = bytes(data)
        return fields
    except (Drop, PcpError) as exc:
        exc.fields = fields
        raise


def parse_response(data):
    """Decode a response (for the tests' tiny client).  Raises ValueError when malformed."""
    if len(data) < HEADER_LEN or len(data) % 4 or len(data) > MAX_PACKET:
        raise ValueError("bad response length %d" % len(data))
    out = {"version": data[0], "r": data[1] >> 7, "opcode": data[1] & 0x7F,
           "result": data[3], "lifetime": struct.unpack_from("!I", data, 4)[0],
           "epoch": struct.unpack_from("!I", data, 8)[0], "length": len(data)}
    out["result_name"] = result_name(out["result"])
    if not out["r"]:
        raise ValueError("R bit clear")
    need = {OP_ANNOUNCE: 0, OP_MAP: MAP_LEN, OP_PEER: PEER_LEN}.get(out["opcode"], 0)
    if len(data) < HEADER_LEN + need:
        out["options"] = []
        return out
    if out["opcode"] in (OP_MAP, OP_PEER):
        out["external_port"], out["external_addr"] = _parse_common_body(data, out["opcode"], out)
        out.pop("_ext_addr16", None)
        out.pop("_remote16", None)
    try:
        opts = parse_options(data, HEADER_LEN + need)
    except PcpError as exc:
        if out["result"] == SUCCESS:
            raise ValueError(str(exc)) from None
        # An error response copies the request, which may itself be malformed (§8.2).
        out["options_error"] = str(exc)
        opts = []
    out["options"] = [decode_option(c, p) for c, p in opts]
    return out


# --------------------------------------------------------------------------- configuration

DEFAULTS = {
    "external_ip": "198.51.100.1",     # the CGN's public address (documentation range)
    "version": VERSION,                # the version the server speaks: 2; 1 = an older PCP
                                       # server, 0 = NAT-PMP only (RFC 6886): every version-2
                                       # request is answered UNSUPP_VERSION in that version
                                       # (RFC 6887 §9; NAT-PMP's 8-octet form, RFC 6886 §3.5)
    "min_lifetime": 120,               # RFC 6887 §15: minimum SHOULD be 120 s
    "max_lifetime": 86400,             # 24 h, a common CGN ceiling
    "error_lifetime_long": 1800,       # RFC 6887 §7.4 "long lifetime" errors (30 min)
    "error_lifetime_short": 30,        # RFC 6887 §7.4 "short lifetime" errors (30 s)
    "quota": 64,                       # MAP+PEER mappings per subscriber; 0 = unlimited
    "port_min": 1024,                  # external ports the CGN hands out
    "port_max": 65535,
    "alloc": "random",                 # "random" | "sequential" choice of another port
    "protocols": [6, 17, 33, 132],     # TCP, UDP, DCCP, SCTP
    "allow_all_protocols": False,      # protocol 0 in MAP (RFC 6887 §11.1)
    "no_resources": False,             # new mappings -> NO_RESOURCES
    "network_failure": False,          # every MAP/PEER -> NETWORK_FAILURE
    "third_party": "allow",            # "allow" | "not_authorized" | "unsupported"
    "filter": "honour",                # "honour" | "unsupported"
    "max_filters": 8,                  # FILTERs a mapping may hold (EXCESSIVE_REMOTE_PEERS)
    "prefer_failure": "honour",        # "honour" | "unsupported"
    "peer": "allow",                   # "allow" | "unsupported" (UNSUPP_OPCODE)
    "peer_unavailable": "fail",        # PEER's suggested port taken: "fail" | "other_port"
    "address_mismatch": True,          # check header client address vs packet source
    "subscriber_prefix4": 32,          # subscriber = source address masked to this length
    "subscriber_prefix6": 128,
    "announce_port": CLIENT_PORT,      # where unicast/multicast ANNOUNCE goes
    "announce": "unicast",             # default for restart: none|unicast|multicast|both
    "announce_count": 1,               # ANNOUNCE repetitions
    "announce_interval_ms": 250,       # first gap between repetitions (doubles)
    "announce_if6": "",                # interface name for ff02::1 ("" = no IPv6 multicast)
    "wrong_source_addr": "",           # bind address of the wrong-source socket ("" = same)
    "reorder_hold_ms": 10000,          # a held (reordered) response goes out at the latest
    "seed": None,                      # random seed (None = from the OS)
    "hook": "",                        # program run on every mapping add/delete ("" = none)
    "hook_timeout_ms": 5000,           # a hook running longer is killed (and counted)
    "log_limit": 100000,               # oldest log entries are discarded beyond this
}

CHOICES = {
    "alloc": ("random", "sequential"),
    "third_party": ("allow", "not_authorized", "unsupported"),
    "filter": ("honour", "unsupported"),
    "prefer_failure": ("honour", "unsupported"),
    "peer": ("allow", "unsupported"),
    "peer_unavailable": ("fail", "other_port"),
    "announce": ("none", "unicast", "multicast", "both"),
}

# Shorthand fault knobs accepted by "set" (each becomes a fault rule, see Fault).
FAULT_SHORTHANDS = ("drop_next", "drop_prob", "drop_response_next", "delay_ms", "duplicate",
                    "reorder", "wrong_nonce", "wrong_source", "force_result",
                    "force_other_port", "epoch_override")

FAULT_ACTIONS = ("drop", "drop_response", "delay", "duplicate", "reorder", "wrong_nonce",
                 "wrong_source", "result", "other_port", "epoch")


def _check_config_value(key, value):
    if key not in DEFAULTS:
        raise ValueError("unknown setting %r" % key)
    if key in CHOICES:
        if value not in CHOICES[key]:
            raise ValueError("%s must be one of %s" % (key, ", ".join(CHOICES[key])))
    elif key == "external_ip":
        addr_to16(value)
    elif key == "version":
        if isinstance(value, bool) or value not in (0, 1, VERSION):
            raise ValueError("version must be 0 (NAT-PMP), 1 or %d" % VERSION)
    elif key in ("wrong_source_addr", "announce_if6", "hook"):
        if not isinstance(value, str):
            raise ValueError("%s must be a string" % key)
    elif key == "protocols":
        if not isinstance(value, list) or not all(isinstance(p, int) and 0 < p < 256
                                                  for p in value):
            raise ValueError("protocols must be a list of 1..255")
    elif key in ("allow_all_protocols", "no_resources", "network_failure",
                 "address_mismatch"):
        if not isinstance(value, bool):
            raise ValueError("%s must be true or false" % key)
    elif key == "seed":
        if value is not None and not isinstance(value, int):
            raise ValueError("seed must be an integer or null")
    else:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("%s must be a non-negative integer" % key)
    return value


# --------------------------------------------------------------------------- faults

class Fault:
    """One fault rule.

    action: drop (request lost before processing), drop_response (processed, answer lost),
    delay (value ms), duplicate (value extra copies), reorder (hold, send after the next
    response), wrong_nonce, wrong_source, result (value = code, lifetime optional),
    other_port (grant a port different from the suggested one, PREFER_FAILURE or not),
    epoch (value = Epoch Time to put in the response).
    count: how many requests it fires on (None = unlimited); prob: chance to fire;
    match: {"opcode", "protocol", "internal_port", "client", "delete", "nonce"}.
    """

    _next_id = 1

    def __init__(self, action, count=None, prob=1.0, match=None, value=None, lifetime=None):
        if action not in FAULT_ACTIONS:
            raise ValueError("unknown fault action %r" % (action,))
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 0):
            raise ValueError("count must be a non-negative integer or null")
        if not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
            raise ValueError("prob must be within 0..1")
        match = dict(match or {})
        for key in match:
            if key not in ("opcode", "protocol", "internal_port", "client", "delete", "nonce"):
                raise ValueError("unknown match key %r" % key)
        if "opcode" in match and isinstance(match["opcode"], str):
            names = {v.lower(): k for k, v in OPCODE_NAMES.items()}
            if match["opcode"].lower() not in names:
                raise ValueError("unknown opcode %r" % match["opcode"])
            match["opcode"] = names[match["opcode"].lower()]
        for key in ("opcode", "protocol", "internal_port"):
            if key in match and (isinstance(match[key], bool) or not isinstance(match[key], int)):
                raise ValueError("match %s must be an integer" % key)
        if "client" in match:
            ipaddress.ip_address(str(match["client"]))
        if "delete" in match and not isinstance(match["delete"], bool):
            raise ValueError("match delete must be true or false")
        if "nonce" in match:
            if not isinstance(match["nonce"], str) or len(bytes.fromhex(match["nonce"])) != 12:
                raise ValueError("match nonce must be 24 hex digits")
            match["nonce"] = match["nonce"].lower()
        if action == "result":
            value = result_code(value)
        elif action in ("delay", "duplicate", "epoch"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("%s needs a non-negative integer value" % action)
        if lifetime is not None and (isinstance(lifetime, bool) or not isinstance(lifetime, int)
                                     or lifetime < 0):
            raise ValueError("lifetime must be a non-negative integer")
        self.id = Fault._next_id
        Fault._next_id += 1
        self.action, self.count, self.prob = action, count, float(prob)
        self.match, self.value, self.lifetime = match, value, lifetime
        self.fired = 0

    def matches(self, fields, src_addr):
        m = self.match
        if "opcode" in m and fields.get("opcode") != m["opcode"]:
            return False
        if "protocol" in m and fields.get("protocol") != m["protocol"]:
            return False
        if "internal_port" in m and fields.get("internal_port") != m["internal_port"]:
            return False
        if "client" in m and ipaddress.ip_address(m["client"]) != \
                ipaddress.ip_address(src_addr.split("%", 1)[0]):
            return False
        if "delete" in m and (fields.get("lifetime") == 0) != bool(m["delete"]):
            return False
        if "nonce" in m and fields.get("nonce") != m["nonce"]:
            return False
        return True

    def to_json(self):
        out = {"id": self.id, "action": self.action, "count": self.count, "prob": self.prob,
               "match": dict(self.match), "fired": self.fired}
        if self.value is not None:
            out["value"] = self.value
        if self.lifetime is not None:
            out["lifetime"] = self.lifetime
        return out


def _shorthand_faults(key, value):
    """Translate a 'set' shorthand into (action, [Fault...]); falsy value = remove."""
    def count_of(v):
        if v is True or v == -1:
            return None
        return int(v)
    if key == "drop_next":
        return "drop", [Fault("drop", count=int(value))] if value else []
    if key == "drop_prob":
        return "drop", [Fault("drop", prob=float(value))] if value else []
    if key == "drop_response_next":
        return "drop_response", [Fault("drop_response", count=int(value))] if value else []
    if key == "delay_ms":
        return "delay", [Fault("delay", value=int(value))] if value else []
    if key == "duplicate":
        return "duplicate", [Fault("duplicate", value=int(value))] if value else []
    if key == "reorder":
        return "reorder", [Fault("reorder", count=count_of(value))] if value else []
    if key == "wrong_nonce":
        return "wrong_nonce", [Fault("wrong_nonce", count=count_of(value))] if value else []
    if key == "wrong_source":
        return "wrong_source", [Fault("wrong_source", count=count_of(value))] if value else []
    if key == "force_other_port":
        return "other_port", [Fault("other_port", count=count_of(value))] if value else []
    if key == "epoch_override":
        return "epoch", [] if value is None or value is False else [Fault("epoch", value=value)]
    if key == "force_result":
        if not value:
            return "result", []
        if not isinstance(value, dict):
            value = {"code": value}
        return "result", [Fault("result", count=value.get("count"), value=value.get("code"),
                                match=value.get("match"), lifetime=value.get("lifetime"),
                                prob=value.get("prob", 1.0))]
    raise ValueError("unknown fault shorthand %r" % key)


# --------------------------------------------------------------------------- the server core

class Mapping:
    """One entry of the CGN table (MAP or PEER)."""

    def __init__(self, kind, subscriber, client, internal16, protocol, internal_port, nonce,
                 ext16, ext_port, expires, created, remote16=None, remote_port=0):
        self.kind, self.subscriber, self.client = kind, subscriber, client
        self.internal16, self.protocol, self.internal_port = internal16, protocol, internal_port
        self.nonce, self.ext16, self.ext_port = nonce, ext16, ext_port
        self.expires, self.created, self.refreshed = expires, created, created
        self.remote16, self.remote_port = remote16, remote_port
        self.filters = []          # list of (prefix_len, remote_port, remote16)
        self.description = None
        self.third_party = False
        self.prefer_failure = False
        self.client_port = None    # source port of the last request (unsolicited updates)

    def endpoint(self):
        return (self.subscriber, self.internal16, self.protocol, self.internal_port)

    def to_json(self, now):
        out = {"kind": self.kind, "subscriber": self.subscriber, "client": self.client,
               "internal_addr": addr_from16(self.internal16), "protocol": self.protocol,
               "internal_port": self.internal_port, "nonce": self.nonce.hex(),
               "external_addr": addr_from16(self.ext16), "external_port": self.ext_port,
               "lifetime_remaining": max(0, int(round(self.expires - now))),
               "expires": self.expires, "created": self.created, "refreshed": self.refreshed,
               "third_party": self.third_party, "prefer_failure": self.prefer_failure,
               "description": self.description,
               "filters": [{"prefix_length": p, "remote_port": rp,
                            "remote_addr": addr_from16(ra)} for p, rp, ra in self.filters]}
        if self.kind == "peer":
            out["remote_addr"] = addr_from16(self.remote16)
            out["remote_port"] = self.remote_port
        return out


class Outgoing:
    """A datagram to send: bytes, destination, delay, and through which socket."""

    def __init__(self, data, dest, delay_ms=0, wrong_source=False, reorder=False, kind="response"):
        self.data, self.dest, self.delay_ms = data, dest, delay_ms
        self.wrong_source, self.reorder, self.kind = wrong_source, reorder, kind


class Server:
    """The PCP logic: datagram in, list of Outgoing out.  No sockets, no threads.

    now: time.monotonic() seconds, supplied by the caller.
    """

    def __init__(self, now, **settings):
        self.config = dict(DEFAULTS)
        self.faults = []
        self.mappings = {}     # (subscriber, internal16, protocol, internal_port) -> Mapping
        self.peers = {}        # endpoint + (remote16, remote_port) -> Mapping
        self.reserved = set()  # (protocol, port) held by "someone else"
        self.log = []
        self.log_seq = 0
        self.events = []       # (add|delete, mapping json, reason) for the hook
        self.clients = {}      # source address -> last seen (for unicast ANNOUNCE)
        self.stats = {"received": 0, "dropped": 0, "answered": 0, "restarts": 0,
                      "internal_errors": 0, "hook_runs": 0, "hook_failures": 0,
                      "updates_sent": 0}
        self.epoch_base = now
        self.epoch_start = 0
        self.rng = random.Random()
        self.next_seq_port = None
        self.apply_settings(settings, now)

    # -- configuration

    def apply_settings(self, settings, now):
        """'set': plain settings, fault shorthands and 'epoch'.  Validates all first."""
        plain, faults, replace = {}, [], set()
        for key, value in settings.items():
            if key == "cmd":
                continue
            if key in FAULT_SHORTHANDS:
                _action, rules = _shorthand_faults(key, value)
                replace.add(key)
                for f in rules:
                    f.shorthand = key
                faults.extend(rules)
            elif key == "epoch":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError("epoch must be a non-negative integer")
                plain[key] = value
            else:
                plain[key] = _check_config_value(key, value)
        merged = dict(self.config)
        merged.update({k: v for k, v in plain.items() if k != "epoch"})
        if merged["min_lifetime"] > merged["max_lifetime"]:
            raise ValueError("min_lifetime exceeds max_lifetime")
        if not 0 < merged["port_min"] <= merged["port_max"] <= 65535:
            raise ValueError("port range must satisfy 0 < port_min <= port_max <= 65535")
        if merged["subscriber_prefix4"] > 32 or merged["subscriber_prefix6"] > 128:
            raise ValueError("subscriber prefix too long")
        self.config = merged
        if "seed" in plain:
            self.rng.seed(plain["seed"])
        if "epoch" in plain:
            self.epoch_start, self.epoch_base = plain["epoch"], now
        # A shorthand replaces the rule the same shorthand made before.
        self.faults = [f for f in self.faults if getattr(f, "shorthand", None) not in replace]
        self.faults.extend(faults)

    def add_fault(self, spec):
        f = Fault(spec.get("action"), count=spec.get("count"), prob=spec.get("prob", 1.0),
                  match=spec.get("match"), value=spec.get("value"),
                  lifetime=spec.get("lifetime"))
        self.faults.append(f)
        return f

    # -- time

    def epoch(self, now):
        """RFC 6887 §8.5: seconds since the server's state was (simulated) lost."""
        return (self.epoch_start + int(now - self.epoch_base)) & 0xFFFFFFFF

    def restart(self, now):
        """Forget every mapping, reset the Epoch to 0 (RFC 6887 §8.5)."""
        for table in (self.mappings, self.peers):
            for key in list(table):
                self._remove(table, key, "restart", now)
        self.epoch_base, self.epoch_start = now, 0
        self.stats["restarts"] += 1

    def expire(self, now):
        for table in (self.mappings, self.peers):
            for key in [k for k, m in table.items() if m.expires <= now]:
                self._remove(table, key, "expired", now)

    def _remove(self, table, key, reason, now):
        """Every removal goes through here so the hook sees it ("delete" event)."""
        m = table.pop(key)
        self.events.append(("delete", m.to_json(now), reason))

    def _insert(self, table, key, m, now):
        table[key] = m
        self.events.append(("add", m.to_json(now), "created"))

    def take_events(self):
        """The (event, mapping, reason) list since the last call; event is add|delete."""
        out, self.events = self.events, []
        return out

    # -- helpers

    def subscriber_of(self, src_addr):
        ip = ipaddress.ip_address(src_addr.split("%", 1)[0])
        plen = self.config["subscriber_prefix4" if ip.version == 4 else "subscriber_prefix6"]
        return str(ipaddress.ip_network("%s/%d" % (ip, plen), strict=False))

    def error_lifetime(self, code):
        long_ = RESULTS.get(code, ("", True))[1]
        return self.config["error_lifetime_long" if long_ else "error_lifetime_short"]

    def clamp(self, lifetime):
        """RFC 6887 §15: the server may grant a shorter or longer lifetime."""
        return min(max(lifetime, self.config["min_lifetime"]), self.config["max_lifetime"])

    def used_ports(self, protocol, endpoint):
        """External ports of this protocol held by other endpoints or reserved."""
        used = {p for proto, p in self.reserved if proto == protocol}
        for table in (self.mappings, self.peers):
            for m in table.values():
                if m.protocol == protocol and m.endpoint() != endpoint:
                    used.add(m.ext_port)
        return used

    def port_free(self, protocol, port, endpoint):
        if not self.config["port_min"] <= port <= self.config["port_max"]:
            return False
        return port not in self.used_ports(protocol, endpoint)

    def allocate_port(self, protocol, endpoint, avoid=None):
        lo, hi = self.config["port_min"], self.config["port_max"]
        span = hi - lo + 1
        if self.config["alloc"] == "sequential":
            start = self.next_seq_port if self.next_seq_port is not None else lo
        else:
            start = self.rng.randint(lo, hi)
        used = self.used_ports(protocol, endpoint)
        for i in range(span):
            port = lo + (start - lo + i) % span
            if port != avoid and port not in used:
                self.next_seq_port = port + 1 if port < hi else lo
                return port
        return None

    def subscriber_count(self, subscriber):
        return sum(1 for t in (self.mappings, self.peers) for m in t.values()
                   if m.subscriber == subscriber)

    def ext16(self):
        return addr_to16(self.config["external_ip"])

    # -- responses

    def header(self, opcode, code, lifetime, now, epoch=None):
        """RFC 6887 §7.2."""
        if epoch is None:
            epoch = self.epoch(now)
        return struct.pack("!BBBBII", VERSION, 0x80 | opcode, 0, code, lifetime, epoch) \
            + bytes(12)

    def error_response(self, data, opcode, code, lifetime, now):
        """RFC 6887 §8.2, §7.2: header with R, result, error lifetime and Epoch; the rest of
        the request copied (at most 1100 octets, whole 4-octet words)."""
        if code == UNSUPP_VERSION:
            ver = self.config["version"]
            if ver == 0:
                # NAT-PMP (RFC 6886 §3.5): version 0, 128 + opcode, 16-bit result, Epoch
                return struct.pack("!BBHI", 0, 0x80 | (opcode & 0x7F), UNSUPP_VERSION,
                                   self.epoch(now))
            hdr = bytearray(self.header(opcode, code, lifetime, now))   # header only (§9)
            hdr[0] = ver                # the version this server speaks
            return bytes(hdr)
        body = bytes(data[HEADER_LEN:MAX_PACKET])
        body = body[:len(body) - len(body) % 4]
        return self.header(opcode, code, lifetime, now) + body

    # -- request processing

    def handle(self, data, src, local, now):
        """One received datagram -> list of Outgoing.  src/local: (addr, port)."""
        self.expire(now)
        self.stats["received"] += 1
        self.log_seq += 1
        entry = {"seq": self.log_seq, "t": now, "src": [src[0], src[1]],
                 "local": [local[0], local[1]], "length": len(data), "hex": bytes(data).hex(),
                 "actions": [], "sent": []}
        self.log.append(entry)
        if len(self.log) > self.config["log_limit"]:
            del self.log[:len(self.log) - self.config["log_limit"]]

        try:
            fields = parse_request(data)
            err = None
        except Drop as exc:
            fields, err = exc.fields, exc
        except PcpError as exc:
            fields, err = exc.fields, exc
        entry["fields"] = {k: v for k, v in fields.items() if not k.startswith("_")}
        opcode = fields.get("opcode", 0)

        if isinstance(err, Drop):
            entry["dropped"] = "ignored: %s" % err
            self.stats["dropped"] += 1
            return []

        fired = self._fire_faults(fields, src[0])
        entry["actions"] = [f.action for f in fired]
        acts = {}
        for f in fired:
            acts.setdefault(f.action, f)
        if "drop" in acts:
            entry["dropped"] = "fault: request dropped"
            self.stats["dropped"] += 1
            return []

        self.clients[src[0]] = now
        if err is None and self.config["version"] != fields.get("version"):
            # an older server (setting "version"): it cannot read a version-2 request (§9)
            err = PcpError(UNSUPP_VERSION, "this server speaks version %d only"
                           % self.config["version"])
        if err is not None:
            code, detail, lifetime = err.code, err.detail, err.lifetime
        elif "result" in acts:
            f = acts["result"]
            code, detail = f.value, "forced by fault %d" % f.id
            lifetime = f.lifetime
        else:
            try:
                resp = self.process(fields, data, src, now, force_other="other_port" in acts)
                code, detail, lifetime = SUCCESS, resp[1], None
            except PcpError as exc:
                code, detail, lifetime = exc.code, exc.detail, exc.lifetime
        if code != SUCCESS or (err is None and "result" in acts):
            if lifetime is None:
                lifetime = self.error_lifetime(code)
            resp_bytes = self.error_response(data, opcode, code, lifetime, now)
        else:
            resp_bytes = resp[0]
        entry["result"] = code
        entry["result_name"] = result_name(code)
        entry["detail"] = detail

        resp_bytes = bytearray(resp_bytes)
        if "epoch" in acts:
            struct.pack_into("!I", resp_bytes, 8, acts["epoch"].value & 0xFFFFFFFF)
        if "wrong_nonce" in acts and opcode in (OP_MAP, OP_PEER) and len(resp_bytes) >= 36:
            for i in range(HEADER_LEN, HEADER_LEN + NONCE_LEN):
                resp_bytes[i] ^= 0xA5
        resp_bytes = bytes(resp_bytes)
        entry["response_hex"] = resp_bytes.hex()
        try:
            entry["response"] = parse_response(resp_bytes)
        except ValueError as exc:
            entry["response"] = {"error": str(exc)}
        if "drop_response" in acts:
            entry["dropped"] = "fault: response dropped"
            self.stats["dropped"] += 1
            return []
        self.stats["answered"] += 1
        delay = acts["delay"].value if "delay" in acts else 0
        copies = 1 + (acts["duplicate"].value if "duplicate" in acts else 0)
        out = []
        for _ in range(copies):
            o = Outgoing(resp_bytes, src, delay_ms=delay, wrong_source="wrong_source" in acts,
                         reorder="reorder" in acts)
            o.log_entry = entry
            out.append(o)
        return out

    def _fire_faults(self, fields, src_addr):
        fired = []
        for f in self.faults:
            if f.count is not None and f.count <= 0:
                continue
            if not f.matches(fields, src_addr):
                continue
            if f.prob < 1.0 and self.rng.random() >= f.prob:
                continue
            if f.count is not None:
                f.count -= 1
            f.fired += 1
            fired.append(f)
        self.faults = [f for f in self.faults if f.count is None or f.count > 0]
        return fired

    def process(self, fields, data, src, now, force_other=False):
        """A well-formed request -> (response bytes, detail); raises PcpError."""
        opcode = fields["opcode"]
        src16 = addr_to16(src[0])
        # RFC 6887 §8.2: the header's client address must be the packet's source.
        if self.config["address_mismatch"] and fields["_client16"] != src16:
            raise PcpError(ADDRESS_MISMATCH, "client address %s, source %s"
                           % (fields["client_addr"], src[0]))
        opts = self.check_options(fields)
        if opcode == OP_ANNOUNCE:
            # RFC 6887 §14.1.1: an ANNOUNCE request is answered with SUCCESS, lifetime 0.
            return self.header(OP_ANNOUNCE, SUCCESS, 0, now), "announce"
        if self.config["network_failure"]:
            raise PcpError(NETWORK_FAILURE, "network_failure switch")
        if opcode == OP_MAP:
            return self.process_map(fields, opts, src, src16, now, force_other)
        return self.process_peer(fields, opts, src, src16, now)

    def check_options(self, fields):
        """RFC 6887 §7.3, §13: option validity for the opcode, lengths, occurrences, policy."""
        opcode = fields["opcode"]
        seen = {}
        out = {"third_party": None, "prefer_failure": False, "filters": [],
               "description": None, "echo": []}
        valid = {OPT_THIRD_PARTY: (OP_MAP, OP_PEER), OPT_PREFER_FAILURE: (OP_MAP,),
                 OPT_FILTER: (OP_MAP,), OPT_DESCRIPTION: (OP_MAP, OP_PEER)}
        lengths = {OPT_THIRD_PARTY: 16, OPT_PREFER_FAILURE: 0, OPT_FILTER: 20}
        for code, payload in fields["_options"]:
            name = OPTION_NAMES.get(code, "option %d" % code)
            if code not in valid:
                if code < 128:                                      # RFC 6887 §7.3
                    raise PcpError(UNSUPP_OPTION, "unknown mandatory option %d" % code)
                continue                                            # optional: ignored
            if opcode not in valid[code]:
                raise PcpError(MALFORMED_OPTION, "%s not valid for %s"
                               % (name, OPCODE_NAMES.get(opcode)))
            if code in lengths and len(payload) != lengths[code]:
                raise PcpError(MALFORMED_OPTION, "%s length %d" % (name, len(payload)))
            seen[code] = seen.get(code, 0) + 1
            if code != OPT_FILTER and seen[code] > 1:
                raise PcpError(MALFORMED_OPTION, "%s more than once" % name)
            if code == OPT_THIRD_PARTY:                             # RFC 6887 §13.1
                if self.config["third_party"] == "unsupported":
                    raise PcpError(UNSUPP_OPTION, "THIRD_PARTY not supported")
                if self.config["third_party"] == "not_authorized":
                    raise PcpError(NOT_AUTHORIZED, "THIRD_PARTY not authorized")
                if addr_is_unspecified(payload):
                    raise PcpError(MALFORMED_OPTION, "THIRD_PARTY address unspecified")
                out["third_party"] = payload
            elif code == OPT_PREFER_FAILURE:                        # RFC 6887 §13.2
                if self.config["prefer_failure"] == "unsupported":
                    raise PcpError(UNSUPP_OPTION, "PREFER_FAILURE not supported")
                out["prefer_failure"] = True
            elif code == OPT_FILTER:                                # RFC 6887 §13.3
                if self.config["filter"] == "unsupported":
                    raise PcpError(UNSUPP_OPTION, "FILTER not supported")
                plen = payload[1]
                rport = struct.unpack_from("!H", payload, 2)[0]
                remote16 = payload[4:20]
                if plen > 128 or (is_v4mapped(remote16) and 0 < plen < 96):
                    raise PcpError(MALFORMED_OPTION, "FILTER prefix length %d" % plen)
                out["filters"].append((plen, rport, remote16))
            elif code == OPT_DESCRIPTION:                           # RFC 7220
                out["description"] = payload.decode("utf-8", "replace")
            out["echo"].append(encode_option(code, payload))
        return out

    def _internal(self, opts, src16):
        return opts["third_party"] if opts["third_party"] is not None else src16

    def _success(self, fields, data, opcode, lifetime, ext16, ext_port, opts, now):
        """RFC 6887 §11.1 / §12.1 success response; processed options echoed."""
        need = MAP_LEN if opcode == OP_MAP else PEER_LEN
        body = bytearray(data[HEADER_LEN:HEADER_LEN + need])
        struct.pack_into("!H", body, 18, ext_port)
        body[20:36] = ext16
        return self.header(opcode, SUCCESS, lifetime, now) + bytes(body) + b"".join(opts["echo"])

    def process_map(self, fields, opts, src, src16, now, force_other):
        """RFC 6887 §11.3 (server), §15 (lifetime and deletion), §13 options."""
        protocol, iport = fields["protocol"], fields["internal_port"]
        nonce = bytes.fromhex(fields["nonce"])
        lifetime = fields["lifetime"]
        internal16 = self._internal(opts, src16)
        sub = self.subscriber_of(src[0])
        if protocol == 0:
            if not self.config["allow_all_protocols"]:
                raise PcpError(UNSUPP_PROTOCOL, "protocol 0 (all protocols) refused")
            iport = 0                             # RFC 6887 §11.1: ignored on reception
        elif protocol not in self.config["protocols"]:
            raise PcpError(UNSUPP_PROTOCOL, "protocol %d" % protocol)
        key = (sub, internal16, protocol, iport)
        existing = self.mappings.get(key)

        if lifetime == 0:                                           # RFC 6887 §15
            if iport == 0 and protocol != 0:
                victims = [k for k, m in self.mappings.items()
                           if m.subscriber == sub and m.internal16 == internal16
                           and m.protocol == protocol and m.nonce == nonce]
                for k in victims:
                    self._remove(self.mappings, k, "deleted", now)
                return (self._success(fields, bytes(data_of(fields)), OP_MAP, 0,
                                      fields["_ext_addr16"], fields["suggested_port"], opts,
                                      now), "deleted %d mappings" % len(victims))
            if existing is None:
                return (self._success(fields, data_of(fields), OP_MAP, 0, fields["_ext_addr16"],
                                      fields["suggested_port"], opts, now),
                        "delete of an absent mapping")
            if existing.nonce != nonce:
                raise PcpError(NOT_AUTHORIZED, "delete with a wrong nonce",
                               lifetime=max(0, int(existing.expires - now)))
            self._remove(self.mappings, key, "deleted", now)
            return (self._success(fields, data_of(fields), OP_MAP, 0, existing.ext16,
                                  existing.ext_port, opts, now), "deleted")

        if iport == 0 and protocol != 0:
            raise PcpError(NOT_AUTHORIZED, "all-ports mapping refused by policy")
        granted = self.clamp(lifetime)
        # RFC 6887 §7.4 (CANNOT_PROVIDE_EXTERNAL): for SCTP, PREFER_FAILURE is implied.
        if protocol == 132:
            opts["prefer_failure"] = True
        sport, saddr16 = fields["suggested_port"], fields["_ext_addr16"]
        want_addr_ok = addr_is_unspecified(saddr16) or saddr16 == self.ext16()

        if existing is not None:
            if existing.nonce != nonce:                             # RFC 6887 §11.3
                raise PcpError(NOT_AUTHORIZED, "mapping exists with another nonce",
                               lifetime=max(0, int(existing.expires - now)))
            if opts["prefer_failure"] and ((sport and sport != existing.ext_port)
                                           or not want_addr_ok):
                raise PcpError(CANNOT_PROVIDE_EXTERNAL,
                               "PREFER_FAILURE and the mapping has port %d" % existing.ext_port)
            self._check_filters(existing.filters, opts)
            existing.expires, existing.refreshed = now + granted, now
            existing.client_port = src[1]
            self._store_options(existing, opts)
            return (self._success(fields, data_of(fields), OP_MAP, granted, existing.ext16,
                                  existing.ext_port, opts, now), "refreshed")

        if self.config["no_resources"]:
            raise PcpError(NO_RESOURCES, "no_resources switch")
        quota = self.config["quota"]
        if quota and self.subscriber_count(sub) >= quota:           # RFC 6887 §17.2
            raise PcpError(USER_EX_QUOTA, "subscriber %s has %d mappings" % (sub, quota))
        self._check_filters([], opts)
        endpoint = key
        port = None
        # A PEER mapping of the same endpoint already owns an external port (EIM).
        for p in self.peers.values():
            if p.endpoint() == endpoint:
                port = p.ext_port
        if protocol == 0:
            port = 0
        elif force_other:
            # Fault: another port even with PREFER_FAILURE (miniupnpd's deviation).
            port = self.allocate_port(protocol, endpoint, avoid=sport)
            if port is None:
                raise PcpError(NO_RESOURCES, "no free external port")
        elif port is not None:
            if opts["prefer_failure"] and sport and sport != port:
                raise PcpError(CANNOT_PROVIDE_EXTERNAL, "endpoint already on port %d" % port)
        elif sport and want_addr_ok and self.port_free(protocol, sport, endpoint):
            port = sport
        elif opts["prefer_failure"] and (sport or not want_addr_ok):   # RFC 6887 §13.2
            raise PcpError(CANNOT_PROVIDE_EXTERNAL, "suggested %s port %d unavailable"
                           % (addr_from16(saddr16), sport))
        else:
            port = self.allocate_port(protocol, endpoint)
            if port is None:
                raise PcpError(NO_RESOURCES, "no free external port")
        m = Mapping("map", sub, src[0], internal16, protocol, iport, nonce, self.ext16(), port,
                    now + granted, now)
        m.client_port = src[1]
        self._store_options(m, opts)
        self._insert(self.mappings, key, m, now)
        return (self._success(fields, data_of(fields), OP_MAP, granted, m.ext16, port, opts, now),
                "created")

    @staticmethod
    def _filters_after(current, new):
        """RFC 6887 §13.3: prefix length 0 removes all filters, others are added."""
        out = list(current)
        for f in new:
            if f[0] == 0:
                out = []
            elif f not in out:
                out.append(f)
        return out

    def _check_filters(self, current, opts):
        """EXCESSIVE_REMOTE_PEERS (RFC 6887 §7.4, §13.3) beyond max_filters per mapping."""
        if opts["filters"] and \
                len(self._filters_after(current, opts["filters"])) > self.config["max_filters"]:
            raise PcpError(EXCESSIVE_REMOTE_PEERS, "more than %d filters"
                           % self.config["max_filters"])

    def _store_options(self, m, opts):
        m.third_party = opts["third_party"] is not None
        m.prefer_failure = opts["prefer_failure"]
        if opts["description"] is not None:
            m.description = opts["description"]
        m.filters = self._filters_after(m.filters, opts["filters"])

    def process_peer(self, fields, opts, src, src16, now):
        """RFC 6887 §12.3."""
        if self.config["peer"] == "unsupported":
            raise PcpError(UNSUPP_OPCODE, "PEER disabled")
        protocol, iport = fields["protocol"], fields["internal_port"]
        if protocol == 0 or iport == 0:
            raise PcpError(MALFORMED_REQUEST, "PEER needs a protocol and an internal port")
        if fields["remote_port"] == 0 or addr_is_unspecified(fields["_remote16"]):
            raise PcpError(MALFORMED_REQUEST, "PEER needs a remote peer address and port")
        if protocol not in self.config["protocols"]:
            raise PcpError(UNSUPP_PROTOCOL, "protocol %d" % protocol)
        nonce = bytes.fromhex(fields["nonce"])
        internal16 = self._internal(opts, src16)
        sub = self.subscriber_of(src[0])
        endpoint = (sub, internal16, protocol, iport)
        key = endpoint + (fields["_remote16"], fields["remote_port"])
        existing = self.peers.get(key)
        if existing is not None and existing.nonce != nonce:
            raise PcpError(NOT_AUTHORIZED, "PEER mapping exists with another nonce",
                           lifetime=max(0, int(existing.expires - now)))
        if fields["lifetime"] == 0:
            if existing is not None:
                self._remove(self.peers, key, "deleted", now)
            port = existing.ext_port if existing else fields["suggested_port"]
            return (self._success(fields, data_of(fields), OP_PEER, 0, self.ext16(), port, opts,
                                  now), "peer deleted")
        granted = self.clamp(fields["lifetime"])
        if existing is not None:
            existing.expires, existing.refreshed = now + granted, now
            self._store_options(existing, opts)
            return (self._success(fields, data_of(fields), OP_PEER, granted, existing.ext16,
                                  existing.ext_port, opts, now), "peer refreshed")
        if self.config["no_resources"]:
            raise PcpError(NO_RESOURCES, "no_resources switch")
        quota = self.config["quota"]
        if quota and self.subscriber_count(sub) >= quota:
            raise PcpError(USER_EX_QUOTA, "subscriber %s has %d mappings" % (sub, quota))
        port = None
        for m in list(self.mappings.values()) + list(self.peers.values()):
            if m.endpoint() == endpoint:
                port = m.ext_port
        if port is None:
            sport = fields["suggested_port"]
            if sport and self.port_free(protocol, sport, endpoint):
                port = sport
            elif sport and self.config["peer_unavailable"] == "fail":   # RFC 6887 §7.4
                raise PcpError(CANNOT_PROVIDE_EXTERNAL, "suggested port %d unavailable" % sport)
            else:
                port = self.allocate_port(protocol, endpoint)
            if port is None:
                raise PcpError(NO_RESOURCES, "no free external port")
        m = Mapping("peer", sub, src[0], internal16, protocol, iport, nonce, self.ext16(), port,
                    now + granted, now, fields["_remote16"], fields["remote_port"])
        self._store_options(m, opts)
        self._insert(self.peers, key, m, now)
        return (self._success(fields, data_of(fields), OP_PEER, granted, m.ext16, port, opts, now),
                "peer created")

    def forget(self, match, now):
        """Remove the mappings matching kind/protocol/internal_port/internal_addr/client/
        external_port (all given keys must match); returns how many."""
        keys = ("kind", "protocol", "internal_port", "internal_addr", "client", "external_port")
        unknown = [k for k in match if k not in keys and k != "cmd"]
        if unknown:
            raise ValueError("unknown forget key %r" % unknown[0])
        gone = 0
        for table in (self.mappings, self.peers):
            for key, m in list(table.items()):
                view = m.to_json(now)
                if all(view[k] == match[k] for k in keys if k in match):
                    self._remove(table, key, "forgotten", now)
                    gone += 1
        return gone

    # -- renumbering (RFC 6887 §14.2)

    def renumber(self, external_ip, now, lifetime=None, epoch_reset=True):
        """The CGN's external pool changes: every live MAP mapping moves to external_ip,
        keeping its external port, nonce and lifetime, or with lifetime seconds left when
        given (the hook sees a delete and an add, reason "renumbered"). The Epoch restarts
        from 0 (RFC 6887 §8.5: it MUST be reset when the external address changes) unless
        epoch_reset is false. Returns the moved mappings."""
        if lifetime is not None and (isinstance(lifetime, bool) or not isinstance(lifetime, int)
                                     or lifetime <= 0):
            raise ValueError("lifetime must be a positive integer")
        self.expire(now)
        new_ip = _check_config_value("external_ip", external_ip)
        if epoch_reset and new_ip != self.config["external_ip"]:
            self.epoch_base, self.epoch_start = now, 0
        self.config["external_ip"] = new_ip
        new16 = addr_to16(new_ip)
        moved = []
        for m in self.mappings.values():
            if m.ext16 == new16:
                continue
            self.events.append(("delete", m.to_json(now), "renumbered"))
            m.ext16 = new16
            if lifetime is not None:
                m.expires = now + lifetime
            self.events.append(("add", m.to_json(now), "renumbered"))
            moved.append(m)
        return moved

    def update_packet(self, m, now):
        """RFC 6887 §14.2: an unsolicited MAP response (SUCCESS) telling the client of m's
        current external address and port: m's nonce, protocol and internal port, its
        remaining lifetime, THIRD_PARTY when its requests carried one. None when the
        mapping has no time left or no request source port is known."""
        left = int(m.expires - now)
        if left <= 0 or m.client_port is None:
            return None
        body = m.nonce + struct.pack("!B3xHH", m.protocol, m.internal_port, m.ext_port) + m.ext16
        opts = option_third_party(addr_from16(m.internal16)) if m.third_party else b""
        return self.header(OP_MAP, SUCCESS, left, now) + body + opts

    # -- ANNOUNCE

    def announce_packet(self, now):
        """RFC 6887 §14.1.3: unsolicited ANNOUNCE response, SUCCESS, lifetime 0."""
        return self.header(OP_ANNOUNCE, SUCCESS, 0, now)

    # -- control views

    def mappings_json(self, now):
        self.expire(now)
        return [m.to_json(now) for t in (self.mappings, self.peers) for m in t.values()]


def data_of(fields):
    return fields["_raw"]


# --------------------------------------------------------------------------- I/O and control

def parse_listen(text):
    """'ADDR', 'ADDR:PORT', '[V6]:PORT' or 'V6' -> (addr, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else SERVER_PORT
    elif text.count(":") == 1:
        host, port_s = text.split(":")
        port = int(port_s)
    else:
        host, port = text, SERVER_PORT
    ipaddress.ip_address(host.split("%", 1)[0])
    if not 0 <= port <= 65535:
        raise ValueError("bad port in %r" % text)
    return host, port


def _family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


class Simulator:
    """Sockets, timers and the control socket around a Server.

    listen: list of (addr, port); port 0 picks a free one (see .addresses).
    Run it with run() (blocking, for the daemon) or start()/stop() (background thread).
    Every public method is thread-safe.
    """

    def __init__(self, listen, external_ip=None, control=None, settings=None):
        now = time.monotonic()
        self.lock = threading.RLock()
        settings = dict(settings or {})
        if external_ip:
            settings["external_ip"] = external_ip
        self.server = Server(now, **settings)
        self.sel = selectors.DefaultSelector()
        self.socks = []            # listening UDP sockets
        self.wrong = {}            # listening socket -> wrong-source socket
        self.timers = []           # heap of (when, seq, fn)
        self.timer_seq = 0
        self.held = None           # a reordered Outgoing waiting for the next response
        self.running = False
        self.thread = None
        self.control_path = control
        self.control_sock = None
        self.conns = {}
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        for addr, port in listen:
            fam = _family(addr)
            s = socket.socket(fam, socket.SOCK_DGRAM)   # no SO_REUSEADDR: a taken port fails
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
            s.setblocking(False)
            self.socks.append(s)
            self.sel.register(s, selectors.EVENT_READ, ("udp", s))
        if control:
            if os.path.exists(control):
                os.unlink(control)
            cs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            cs.bind(control)
            cs.listen(16)
            cs.setblocking(False)
            self.control_sock = cs
            self.sel.register(cs, selectors.EVENT_READ, ("accept", cs))

    @property
    def addresses(self):
        return [s.getsockname()[:2] for s in self.socks]

    # -- timers

    def _at(self, delay_s, fn):
        self.timer_seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay_s, self.timer_seq, fn))
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    # -- sending

    def _wrong_socket(self, s):
        alt = self.server.config["wrong_source_addr"] or s.getsockname()[0]
        if _family(alt) != s.family:
            alt = s.getsockname()[0]
        w = self.wrong.get((s, alt))
        if w is None:
            w = socket.socket(s.family, socket.SOCK_DGRAM)
            if s.family == socket.AF_INET6:
                w.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            w.bind((alt, 0))
            self.wrong[(s, alt)] = w
        return w

    def _send_now(self, sock, o):
        via = self._wrong_socket(sock) if o.wrong_source else sock
        try:
            via.sendto(o.data, o.dest)
            err = None
        except OSError as exc:
            err = str(exc)
        entry = getattr(o, "log_entry", None)
        if entry is not None:
            rec = {"t": time.monotonic(), "from": list(via.getsockname()[:2]),
                   "to": [o.dest[0], o.dest[1]], "length": len(o.data)}
            if err:
                rec["error"] = err
            entry["sent"].append(rec)

    def _dispatch(self, sock, o):
        """Apply the reorder hold, then send (called when a delay, if any, has passed)."""
        if o.reorder and self.held is None:
            self.held = (sock, o)
            held = self.held

            def release():
                with self.lock:
                    if self.held is held:
                        self.held = None
                        self._send_now(sock, o)
            self._at(self.server.config["reorder_hold_ms"] / 1000.0, release)
            return
        self._send_now(sock, o)
        if self.held is not None and self.held[1] is not o:
            hs, ho = self.held
            self.held = None
            self._send_now(hs, ho)

    def _emit(self, sock, outs):
        for o in outs:
            if o.delay_ms:
                self._at(o.delay_ms / 1000.0,
                         lambda s=sock, o=o: self._locked(self._dispatch, s, o))
            else:
                self._dispatch(sock, o)

    def _locked(self, fn, *args):
        with self.lock:
            fn(*args)

    # -- ANNOUNCE

    def send_announce(self, mode, count=None, interval_ms=None):
        """Send ANNOUNCE (RFC 6887 §14.1.3) now and count-1 more times, doubling the gap."""
        cfg = self.server.config
        count = cfg["announce_count"] if count is None else count
        interval_ms = cfg["announce_interval_ms"] if interval_ms is None else interval_ms
        sent = []

        def one():
            pkt = self.server.announce_packet(time.monotonic())
            for s in self.socks:
                fam = s.family
                dests = []
                if mode in ("unicast", "both"):
                    dests += [(c, cfg["announce_port"]) for c in self.server.clients
                              if _family(c) == fam]
                if mode in ("multicast", "both"):
                    if fam == socket.AF_INET:
                        local = s.getsockname()[0]
                        try:
                            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
                            if local != "0.0.0.0":
                                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                             socket.inet_aton(local))
                        except OSError:
                            pass
                        dests.append(("224.0.0.1", cfg["announce_port"]))
                    elif cfg["announce_if6"]:
                        idx = socket.if_nametoindex(cfg["announce_if6"])
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
                        dests.append(("ff02::1%" + cfg["announce_if6"], cfg["announce_port"]))
                for d in dests:
                    try:
                        if "%" in d[0]:
                            ai = socket.getaddrinfo(d[0], d[1], socket.AF_INET6,
                                                    socket.SOCK_DGRAM)[0][4]
                            s.sendto(pkt, ai)
                        else:
                            s.sendto(pkt, d)
                        sent.append({"from": list(s.getsockname()[:2]), "to": list(d)})
                    except OSError as exc:
                        sent.append({"from": list(s.getsockname()[:2]), "to": list(d),
                                     "error": str(exc)})
        if mode == "none":
            return sent
        one()
        gap = interval_ms / 1000.0
        total = 0.0
        for _ in range(max(0, count - 1)):
            total += gap
            self._at(total, lambda: self._locked(one))
            gap *= 2
        return sent

    # -- renumbering

    def renumber(self, req, now):
        """'renumber': move every mapping to a new external address and tell each client
        with an unsolicited MAP response (RFC 6887 §14.2), sent count times (default 1),
        interval_ms apart (default 1000), to the source address and port of the mapping's
        last request (or to "port" when given, e.g. 5350); "lifetime": the moved mappings
        have that many seconds left (the update carries it); "epoch_reset": false keeps the
        Epoch running (RFC 6887 §8.5 wants it reset; default true)."""
        if "external_ip" not in req:
            raise ValueError("renumber needs external_ip")
        count = int(req.get("count", 1))
        interval_ms = int(req.get("interval_ms", 1000))
        port = req.get("port")
        if count < 0 or interval_ms < 0 or (port is not None and not 0 < int(port) <= 65535):
            raise ValueError("count, interval_ms and port must be valid")
        epoch_reset = req.get("epoch_reset", True)
        if not isinstance(epoch_reset, bool):
            raise ValueError("epoch_reset must be true or false")
        moved = self.server.renumber(req["external_ip"], now, req.get("lifetime"), epoch_reset)
        keys = [m.endpoint() for m in moved]
        sent = []

        def one():
            t = time.monotonic()
            for k in keys:
                m = self.server.mappings.get(k)
                if m is None:
                    continue
                pkt = self.server.update_packet(m, t)
                if pkt is None:
                    continue
                dest = (m.client, int(port) if port is not None else m.client_port)
                for sock in self.socks:
                    if sock.family != _family(dest[0]):
                        continue
                    rec = {"from": list(sock.getsockname()[:2]), "to": [dest[0], dest[1]],
                           "nonce": m.nonce.hex(), "external_addr": addr_from16(m.ext16),
                           "external_port": m.ext_port}
                    try:
                        sock.sendto(pkt, dest)
                    except OSError as exc:
                        rec["error"] = str(exc)
                    sent.append(rec)
                    self.server.stats["updates_sent"] += 1
                    break
        if count:
            one()
        for i in range(1, count):
            self._at(i * interval_ms / 1000.0, lambda: self._locked(one))
        return {"ok": True, "external_ip": self.server.config["external_ip"],
                "moved": len(moved), "sent": list(sent)}

    # -- control protocol

    def command(self, req):
        """One control command (a dict) -> reply dict.  Thread-safe."""
        with self.lock:
            try:
                return self._command(req)
            except Exception as exc:  # a bad command never stops the simulator
                return {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
            finally:
                self._run_hooks()

    def _run_hooks(self):
        """Run the configured hook once per mapping event, in order, synchronously.

        argv: HOOK add|delete; environment: PCPSIM_EVENT, PCPSIM_REASON (created, deleted,
        expired, restart, forgotten, renumbered), PCPSIM_KIND, PCPSIM_PROTOCOL, PCPSIM_INTERNAL_ADDR,
        PCPSIM_INTERNAL_PORT, PCPSIM_EXTERNAL_ADDR, PCPSIM_EXTERNAL_PORT, PCPSIM_SUBSCRIBER,
        PCPSIM_CLIENT, PCPSIM_NONCE, PCPSIM_LIFETIME, PCPSIM_REMOTE_ADDR/PORT (PEER)."""
        events = self.server.take_events()
        hook = self.server.config["hook"]
        if not hook:
            return
        import subprocess
        for event, m, reason in events:
            env = dict(os.environ)
            env.update({"PCPSIM_EVENT": event, "PCPSIM_REASON": reason,
                        "PCPSIM_KIND": m["kind"], "PCPSIM_PROTOCOL": str(m["protocol"]),
                        "PCPSIM_INTERNAL_ADDR": m["internal_addr"],
                        "PCPSIM_INTERNAL_PORT": str(m["internal_port"]),
                        "PCPSIM_EXTERNAL_ADDR": m["external_addr"],
                        "PCPSIM_EXTERNAL_PORT": str(m["external_port"]),
                        "PCPSIM_SUBSCRIBER": m["subscriber"], "PCPSIM_CLIENT": m["client"],
                        "PCPSIM_NONCE": m["nonce"],
                        "PCPSIM_LIFETIME": str(m["lifetime_remaining"])})
            if m["kind"] == "peer":
                env["PCPSIM_REMOTE_ADDR"] = m["remote_addr"]
                env["PCPSIM_REMOTE_PORT"] = str(m["remote_port"])
            self.server.stats["hook_runs"] += 1
            try:
                rc = subprocess.run([hook, event], env=env, stdin=subprocess.DEVNULL,
                                    timeout=self.server.config["hook_timeout_ms"] / 1000.0
                                    ).returncode
            except (OSError, subprocess.TimeoutExpired) as exc:
                rc = str(exc)
            if rc != 0:
                self.server.stats["hook_failures"] += 1
                print("pcpsim: hook %s %s failed: %s" % (hook, event, rc), file=sys.stderr,
                      flush=True)

    def _command(self, req):
        if not isinstance(req, dict):
            raise ValueError("a command is a JSON object")
        after = req.get("after_ms")
        if after is not None:
            inner = {k: v for k, v in req.items() if k != "after_ms"}
            self._at(float(after) / 1000.0, lambda: self.command(inner))
            return {"ok": True, "scheduled": True}
        cmd = req.get("cmd")
        now = time.monotonic()
        srv = self.server
        if cmd == "ping":
            return {"ok": True, "epoch": srv.epoch(now), "now": now}
        if cmd == "addresses":
            return {"ok": True, "listen": [list(a) for a in self.addresses]}
        if cmd == "set":
            srv.apply_settings({k: v for k, v in req.items() if k != "cmd"}, now)
            return {"ok": True, "config": srv.config}
        if cmd in ("get", "config"):
            return {"ok": True, "config": srv.config, "epoch": srv.epoch(now),
                    "faults": [f.to_json() for f in srv.faults]}
        if cmd == "fault":
            f = srv.add_fault({k: v for k, v in req.items() if k != "cmd"})
            return {"ok": True, "fault": f.to_json()}
        if cmd == "faults":
            return {"ok": True, "faults": [f.to_json() for f in srv.faults]}
        if cmd == "clear_faults":
            ids = req.get("ids")
            srv.faults = [f for f in srv.faults if ids is not None and f.id not in ids]
            return {"ok": True}
        if cmd == "mappings":
            return {"ok": True, "mappings": srv.mappings_json(now), "epoch": srv.epoch(now),
                    "now": now}
        if cmd == "reserve" or cmd == "unreserve":
            key = (int(req["protocol"]), int(req["port"]))
            if cmd == "reserve":
                srv.reserved.add(key)
            else:
                srv.reserved.discard(key)
            return {"ok": True, "reserved": sorted(list(k) for k in srv.reserved)}
        if cmd == "forget":
            # Lose some mappings without a restart (no Epoch reset): a CGN that dropped state.
            gone = srv.forget(req, now)
            return {"ok": True, "forgotten": gone}
        if cmd == "log":
            since = int(req.get("since", 0))
            return {"ok": True, "log": [e for e in srv.log if e["seq"] > since], "now": now}
        if cmd == "reset_log":
            srv.log.clear()
            return {"ok": True}
        if cmd == "stats":
            return {"ok": True, "stats": dict(srv.stats), "epoch": srv.epoch(now)}
        if cmd == "restart":
            mode = _announce_mode(req.get("announce", srv.config["announce"]))
            srv.restart(now)
            self.held = None
            sent = self.send_announce(mode, req.get("count"), req.get("interval_ms"))
            return {"ok": True, "epoch": srv.epoch(now), "announce": sent}
        if cmd == "announce":
            mode = _announce_mode(req.get("mode", "both" if req.get("announce") is None
                                          else req.get("announce")))
            sent = self.send_announce(mode, req.get("count"), req.get("interval_ms"))
            return {"ok": True, "announce": sent}
        if cmd == "renumber":
            return self.renumber(req, now)
        if cmd == "quit":
            self.running = False
            self._wake()
            return {"ok": True}
        raise ValueError("unknown command %r" % (cmd,))

    def run_script(self, path):
        """Each non-empty, non-# line is a control command (JSON); stops at the first error."""
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                reply = self.command(json.loads(line))
                if not reply.get("ok"):
                    raise ValueError("%s:%d: %s" % (path, n, reply.get("error")))

    # -- loop

    def _wake(self):
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def _on_udp(self, s):
        for _ in range(64):
            try:
                data, src = s.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            with self.lock:
                try:
                    outs = self.server.handle(data, src[:2], s.getsockname()[:2],
                                              time.monotonic())
                    # The hook runs before the answer leaves: when the client hears
                    # SUCCESS, the test's forwarding rule is in place.
                    self._run_hooks()
                    self._emit(s, outs)
                except Exception:  # a simulator bug: count it, report it, keep serving
                    self._internal_error()

    def _internal_error(self):
        import traceback
        text = traceback.format_exc()
        self.server.stats["internal_errors"] = self.server.stats.get("internal_errors", 0) + 1
        self.server.last_internal_error = text
        print("pcpsim: internal error:\n" + text, file=sys.stderr, flush=True)

    def _on_accept(self, cs):
        try:
            conn, _ = cs.accept()
        except OSError:
            return
        conn.setblocking(False)
        self.conns[conn] = b""
        self.sel.register(conn, selectors.EVENT_READ, ("conn", conn))

    def _close_conn(self, conn):
        self.sel.unregister(conn)
        self.conns.pop(conn, None)
        conn.close()

    def _on_conn(self, conn):
        try:
            chunk = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close_conn(conn)
            return
        buf = self.conns[conn] + chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                req = json.loads(line)
                reply = self.command(req)
            except ValueError as exc:
                reply = {"ok": False, "error": "bad JSON: %s" % exc}
            data = (json.dumps(reply) + "\n").encode()
            conn.setblocking(True)
            try:
                conn.sendall(data)
            except OSError:
                self._close_conn(conn)
                return
            conn.setblocking(False)
        self.conns[conn] = buf

    def _expiry_tick(self):
        """Expire mappings once a second, so the hook hears of expiry on time."""
        with self.lock:
            self.server.expire(time.monotonic())
            self._run_hooks()
            self._at(1.0, self._expiry_tick)

    def run(self):
        self.running = True
        with self.lock:
            self._at(1.0, self._expiry_tick)
        while self.running:
            with self.lock:
                timeout = None
                if self.timers:
                    timeout = max(0.0, self.timers[0][0] - time.monotonic())
            for key, _ in self.sel.select(timeout):
                kind, obj = key.data
                if kind == "udp":
                    self._on_udp(obj)
                elif kind == "accept":
                    self._on_accept(obj)
                elif kind == "conn":
                    self._on_conn(obj)
                elif kind == "wake":
                    try:
                        self.wake_r.recv(4096)
                    except OSError:
                        pass
            while True:
                with self.lock:
                    if not self.timers or self.timers[0][0] > time.monotonic():
                        break
                    _, _, fn = heapq.heappop(self.timers)
                try:
                    fn()
                except Exception:
                    with self.lock:
                        self._internal_error()
        self._close()

    def _close(self):
        for conn in list(self.conns):
            self._close_conn(conn)
        if self.control_sock is not None:
            self.sel.unregister(self.control_sock)
            self.control_sock.close()
            try:
                os.unlink(self.control_path)
            except OSError:
                pass
            self.control_sock = None
        for s in self.socks + list(self.wrong.values()):
            s.close()
        self.sel.close()
        self.wake_r.close()
        self.wake_w.close()

    def start(self):
        self.thread = threading.Thread(target=self.run, name="pcpsim", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.running = False
        self._wake()
        if self.thread is not None:
            self.thread.join(5)


def _announce_mode(value):
    if value is True:
        return "both"
    if value is False or value is None:
        return "none"
    if value not in CHOICES["announce"]:
        raise ValueError("announce must be true, false or one of %s"
                         % ", ".join(CHOICES["announce"]))
    return value


# --------------------------------------------------------------------------- CLI

def ctl(path, line, timeout=10.0):
    """Send one JSON command line to a control socket, return the reply dict."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(line.strip().encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    return json.loads(buf.split(b"\n", 1)[0])


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "ctl":
        if len(argv) != 3:
            print("usage: pcpsim.py ctl SOCKET JSON   (JSON '-': one command per stdin line)",
                  file=sys.stderr)
            return 2
        lines = [argv[2]] if argv[2] != "-" else [x for x in sys.stdin if x.strip()]
        status = 0
        for line in lines:
            try:
                reply = ctl(argv[1], line)
            except (OSError, ValueError) as exc:
                reply = {"ok": False, "error": str(exc)}
            print(json.dumps(reply), flush=True)
            if not reply.get("ok"):
                status = 1
        return status
    ap = argparse.ArgumentParser(prog="pcpsim.py",
                                 description="carrier-NAT PCP server simulator (test tool)")
    ap.add_argument("--listen", action="append", required=True,
                    help="ADDR[:PORT] or [V6]:PORT (default port 5351); repeatable")
    ap.add_argument("--external-ip", default=DEFAULTS["external_ip"])
    ap.add_argument("--control", required=True, help="path of the control unix socket")
    ap.add_argument("--script", help="file of control commands (JSON lines) run at start")
    ap.add_argument("--set", action="append", default=[],
                    help="JSON object of settings (as the 'set' command); repeatable")
    ap.add_argument("--ready-file", help="write the bound addresses (JSON) here when ready")
    ap.add_argument("--hook", help="program run on every mapping add/delete (setting 'hook')")
    args = ap.parse_args(argv)
    settings = {}
    try:
        for s in args.set:
            settings.update(json.loads(s))
        if args.hook:
            settings["hook"] = os.path.abspath(args.hook)
        listen = [parse_listen(x) for x in args.listen]
    except ValueError as exc:
        print("pcpsim: %s" % exc, file=sys.stderr)
        return 2
    try:
        sim = Simulator(listen, external_ip=args.external_ip, control=None, settings=settings)
    except (OSError, ValueError) as exc:
        print("pcpsim: %s" % exc, file=sys.stderr)
        return 2
    if args.script:
        try:
            sim.run_script(args.script)
        except (OSError, ValueError) as exc:
            print("pcpsim: script: %s" % exc, file=sys.stderr)
            return 2
    # The control socket appears last: once it accepts, the simulator is ready.
    ready = {"listen": [list(a) for a in sim.addresses], "control": args.control,
             "pid": os.getpid()}
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(ready, fh)
        os.rename(tmp, args.ready_file)
    sim.control_path = args.control
    if os.path.exists(args.control):
        os.unlink(args.control)
    cs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cs.bind(args.control)
    cs.listen(16)
    cs.setblocking(False)
    sim.control_sock = cs
    sim.sel.register(cs, selectors.EVENT_READ, ("accept", cs))
    print("pcpsim ready %s" % json.dumps(ready), flush=True)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sim.command({"cmd": "quit"}))
    try:
        sim.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

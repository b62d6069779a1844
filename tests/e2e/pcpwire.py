#!/usr/bin/python3
"""pcpwire: a tiny stdlib PCP (RFC 6887, version 2) codec and client for the e2e harness.

It encodes MAP requests (nonce, THIRD_PARTY, PREFER_FAILURE, FILTER), decodes requests and
responses strictly enough to assert on them, reads pcap files written by tcpdump, and can send
one request and wait for its answer.  It is a test tool: it never talks to anything but the
addresses the harness gives it (namespaces it created).

Command line (used by scenarios and by hand):
  pcpwire.py map SERVER[:PORT] --client ADDR [--internal ADDR] --proto tcp|udp --iport N
             [--eport N] [--lifetime S] [--nonce HEX24] [--prefer-failure] [--timeout S]
      prints the decoded response as 'key=value' lines; exit 0 if a response arrived.
  pcpwire.py decode-pcap FILE [--port 5351]
      prints every PCP message found in the capture, one per line.
"""
import argparse
import ipaddress
import os
import socket
import struct
import sys
import time

PCP_VERSION = 2
PCP_SERVER_PORT = 5351          # RFC 6887 §19.1
PCP_CLIENT_PORT = 5350          # ANNOUNCE multicast port, RFC 6887 §19.1

OPCODES = {0: "ANNOUNCE", 1: "MAP", 2: "PEER"}
OPCODE_NUM = {v: k for k, v in OPCODES.items()}

# RFC 6887 §7.4
RESULTS = {
    0: "SUCCESS", 1: "UNSUPP_VERSION", 2: "NOT_AUTHORIZED", 3: "MALFORMED_REQUEST",
    4: "UNSUPP_OPCODE", 5: "UNSUPP_OPTION", 6: "MALFORMED_OPTION", 7: "NETWORK_FAILURE",
    8: "NO_RESOURCES", 9: "UNSUPP_PROTOCOL", 10: "USER_EX_QUOTA",
    11: "CANNOT_PROVIDE_EXTERNAL", 12: "ADDRESS_MISMATCH", 13: "EXCESSIVE_REMOTE_PEERS",
}
RESULT_NUM = {v: k for k, v in RESULTS.items()}

# RFC 6887 §13
OPTIONS = {1: "THIRD_PARTY", 2: "PREFER_FAILURE", 3: "FILTER"}
OPTION_NUM = {v: k for k, v in OPTIONS.items()}

PROTOCOLS = {0: "all", 6: "tcp", 17: "udp"}
PROTOCOL_NUM = {"all": 0, "tcp": 6, "udp": 17}


class PcpError(ValueError):
    """A message that is not valid PCP (reason in the text)."""


def addr_to16(addr):
    """IPv4 as IPv4-mapped IPv6 (RFC 6887 §5), IPv6 as is; returns 16 bytes."""
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        return b"\0" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def addr_from16(raw):
    """Inverse of addr_to16: IPv4-mapped addresses come back as dotted quads."""
    ip = ipaddress.IPv6Address(raw)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def encode_option(code, data=b""):
    """RFC 6887 §7.3: code, reserved, length (unpadded), data padded to 4 bytes."""
    pad = (-len(data)) % 4
    return struct.pack("!BBH", code, 0, len(data)) + data + b"\0" * pad


def encode_map(client, nonce, protocol, internal_port, external_port=0,
               external_addr="0.0.0.0", lifetime=7200, third_party=None,
               prefer_failure=False, filters=()):
    """A MAP request (RFC 6887 §7.1 header + §11.1 opcode body + options).

    client: the PCP client address (the source address the request leaves with).
    nonce: 12 bytes.  protocol: 'tcp', 'udp', 'all' or a number.
    third_party: internal address when it differs from client (§13.1).
    filters: iterable of (prefix_len, remote_port, remote_addr) (§13.3)."""
    if len(nonce) != 12:
        raise ValueError("nonce must be 12 bytes")
    proto = PROTOCOL_NUM.get(protocol, protocol) if isinstance(protocol, str) else protocol
    msg = struct.pack("!BBHI", PCP_VERSION, OPCODE_NUM["MAP"], 0, lifetime)
    msg += addr_to16(client)
    msg += nonce + struct.pack("!B3xHH", proto, internal_port, external_port)
    msg += addr_to16(external_addr)
    if third_party is not None:
        msg += encode_option(OPTION_NUM["THIRD_PARTY"], addr_to16(third_party))
    if prefer_failure:
        msg += encode_option(OPTION_NUM["PREFER_FAILURE"])
    for plen, rport, raddr in filters:
        msg += encode_option(OPTION_NUM["FILTER"],
                             struct.pack("!BBH", 0, plen, rport) + addr_to16(raddr))
    return msg


def _decode_options(buf, off):
    opts = []
    while off < len(buf):
        if len(buf) - off < 4:
            raise PcpError("truncated option header")
        code, _res, length = struct.unpack_from("!BBH", buf, off)
        off += 4
        padded = length + ((-length) % 4)
        if len(buf) - off < padded:
            raise PcpError(f"option {code} length {length} exceeds message")
        data = buf[off:off + length]
        off += padded
        opt = {"code": code, "name": OPTIONS.get(code, f"OPT{code}"), "data": data}
        if code == OPTION_NUM["THIRD_PARTY"]:
            if length != 16:
                raise PcpError("THIRD_PARTY length must be 16")
            opt["address"] = addr_from16(data)
        elif code == OPTION_NUM["PREFER_FAILURE"] and length != 0:
            raise PcpError("PREFER_FAILURE length must be 0")
        elif code == OPTION_NUM["FILTER"]:
            if length != 20:
                raise PcpError("FILTER length must be 20")
            opt["prefix_length"] = data[1]
            opt["remote_port"] = struct.unpack_from("!H", data, 2)[0]
            opt["remote_address"] = addr_from16(data[4:20])
        opts.append(opt)
    return opts


def decode_unsupp_version(buf):
    """RFC 6887 §9: a server that does not speak version 2 answers UNSUPP_VERSION in its own
    version - a PCP header of another version (R bit, result 1), or NAT-PMP's 8 octets
    (RFC 6886 §3.5: version 0, 128 + opcode, 16-bit result 1, Epoch).  The dict, or None."""
    if len(buf) < 8 or len(buf) % 4 or len(buf) > 1100 or buf[0] == PCP_VERSION or not buf[1] & 0x80:
        return None
    op = buf[1] & 0x7f
    if buf[0] == 0 and len(buf) == 8 and struct.unpack_from("!H", buf, 2)[0] == 1:
        lifetime, epoch = 0, struct.unpack_from("!I", buf, 4)[0]      # NAT-PMP
    elif buf[0] != 0 and len(buf) >= 24 and buf[3] == 1:
        lifetime, epoch = struct.unpack_from("!II", buf, 4)
    else:
        return None
    return {"version": buf[0], "response": True, "opcode_num": op,
            "opcode": OPCODES.get(op, f"OP{op}"), "length": len(buf), "result_num": 1,
            "result": "UNSUPP_VERSION", "lifetime": lifetime, "epoch": epoch, "options": [],
            "option_names": []}


def decode(buf):
    """Decode one PCP message (request or response) into a dict; raises PcpError.  An
    UNSUPP_VERSION answer in another version decodes too (decode_unsupp_version)."""
    other = decode_unsupp_version(buf)
    if other:
        return other
    if len(buf) < 24:
        raise PcpError(f"too short ({len(buf)} bytes)")
    if len(buf) > 1100 or len(buf) % 4:
        raise PcpError(f"bad length {len(buf)}")
    version, rop = buf[0], buf[1]
    msg = {"version": version, "response": bool(rop & 0x80), "opcode_num": rop & 0x7f,
           "opcode": OPCODES.get(rop & 0x7f, f"OP{rop & 0x7f}"), "length": len(buf)}
    if version != PCP_VERSION:
        raise PcpError(f"version {version}")
    if msg["response"]:
        _res, result, lifetime, epoch = struct.unpack_from("!BBII", buf, 2)
        msg.update(result_num=result, result=RESULTS.get(result, f"RESULT{result}"),
                   lifetime=lifetime, epoch=epoch)
    else:
        (lifetime,) = struct.unpack_from("!I", buf, 4)
        msg.update(lifetime=lifetime, client=addr_from16(buf[8:24]))
    off = 24
    if msg["opcode"] in ("MAP", "PEER"):
        body = 36 if msg["opcode"] == "MAP" else 56
        if len(buf) < off + body:
            raise PcpError(f"{msg['opcode']} body truncated")
        nonce = buf[off:off + 12]
        proto, iport, eport = struct.unpack_from("!B3xHH", buf, off + 12)
        msg.update(nonce=nonce.hex(), protocol_num=proto,
                   protocol=PROTOCOLS.get(proto, str(proto)), internal_port=iport,
                   external_port=eport, external_address=addr_from16(buf[off + 20:off + 36]))
        if msg["opcode"] == "PEER":
            rport = struct.unpack_from("!H", buf, off + 36)[0]
            msg.update(remote_port=rport, remote_address=addr_from16(buf[off + 40:off + 56]))
        off += body
    msg["options"] = _decode_options(buf, off)
    msg["option_names"] = [o["name"] for o in msg["options"]]
    return msg


def describe(msg):
    """One readable line for a decoded message."""
    parts = [f"v{msg['version']}", msg["opcode"], "response" if msg["response"] else "request"]
    if msg["response"]:
        parts += [f"result={msg['result']}", f"epoch={msg['epoch']}"]
    else:
        parts.append(f"client={msg['client']}")
    parts.append(f"lifetime={msg['lifetime']}")
    if "nonce" in msg:
        parts += [f"nonce={msg['nonce']}", f"proto={msg['protocol']}",
                  f"iport={msg['internal_port']}", f"eport={msg['external_port']}",
                  f"eaddr={msg['external_address']}"]
    for o in msg["options"]:
        parts.append(o["name"] + (f"={o['address']}" if "address" in o else ""))
    return " ".join(parts)


# ---- pcap reading (tcpdump -w, Ethernet or Linux cooked captures) ----

def read_pcap(path):
    """Yield (timestamp, src, sport, dst, dport, payload) for every IPv4/IPv6 UDP packet."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise PcpError("not a pcap file")
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(end + "I", data, 20)[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from(end + "IIII", data, off)
        off += 16
        if off + incl > len(data):      # a record still being written by tcpdump
            break
        pkt = data[off:off + incl]
        off += incl
        ts = sec + frac / (1e9 if nanos else 1e6)
        if linktype == 1:           # Ethernet
            if len(pkt) < 14:
                continue
            etype = struct.unpack_from("!H", pkt, 12)[0]
            l3 = pkt[14:]
            if etype == 0x8100 and len(pkt) >= 18:
                etype = struct.unpack_from("!H", pkt, 16)[0]
                l3 = pkt[18:]
        elif linktype == 113:       # Linux cooked (any)
            if len(pkt) < 16:
                continue
            etype = struct.unpack_from("!H", pkt, 14)[0]
            l3 = pkt[16:]
        elif linktype == 101:       # raw IP
            l3 = pkt
            etype = 0x0800 if l3 and l3[0] >> 4 == 4 else 0x86dd
        else:
            continue
        udp = None
        if etype == 0x0800 and len(l3) >= 20 and l3[9] == 17:
            ihl = (l3[0] & 0x0f) * 4
            src, dst = socket.inet_ntop(socket.AF_INET, l3[12:16]), socket.inet_ntop(socket.AF_INET, l3[16:20])
            udp = l3[ihl:]
        elif etype == 0x86dd and len(l3) >= 40 and l3[6] == 17:
            src, dst = socket.inet_ntop(socket.AF_INET6, l3[8:24]), socket.inet_ntop(socket.AF_INET6, l3[24:40])
            udp = l3[40:]
        if udp is None or len(udp) < 8:
            continue
        sport, dport, ulen = struct.unpack_from("!HHH", udp, 0)
        yield ts, src, sport, dst, dport, udp[8:ulen]


def pcp_messages_in_pcap(path, port=PCP_SERVER_PORT):
    """Decoded PCP messages to or from `port`; each dict gets src/dst/ts, or 'error' when invalid."""
    out = []
    for ts, src, sport, dst, dport, payload in read_pcap(path):
        if sport != port and dport != port:
            continue
        try:
            msg = decode(payload)
        except PcpError as e:
            msg = {"error": str(e), "raw": payload.hex()}
        msg.update(ts=ts, src=src, sport=sport, dst=dst, dport=dport)
        out.append(msg)
    return out


# ---- one request, one answer ----

def transact(server, request, port=PCP_SERVER_PORT, timeout=3.0, bind=None):
    """Send `request` over UDP and return (decoded response, source) or (None, None) on timeout."""
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        if bind:
            s.bind((bind, 0))
        s.connect((server, port))
        s.send(request)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, None
            s.settimeout(left)
            try:
                data, src = s.recvfrom(1500)
            except socket.timeout:
                return None, None
            except ConnectionRefusedError:
                return {"error": "ICMP port unreachable"}, None
            try:
                return decode(data), src
            except PcpError as e:
                return {"error": str(e), "raw": data.hex()}, src


def _split_server(text):
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else PCP_SERVER_PORT
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, PCP_SERVER_PORT


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("map", help="send one MAP request and print the answer")
    m.add_argument("server")
    m.add_argument("--client", required=True, help="PCP client address (our source address)")
    m.add_argument("--internal", help="internal address; adds THIRD_PARTY when != client")
    m.add_argument("--proto", default="tcp")
    m.add_argument("--iport", type=int, required=True)
    m.add_argument("--eport", type=int, default=0)
    m.add_argument("--eaddr", default="0.0.0.0")
    m.add_argument("--lifetime", type=int, default=600)
    m.add_argument("--nonce", help="24 hex digits (random if absent)")
    m.add_argument("--prefer-failure", action="store_true")
    m.add_argument("--timeout", type=float, default=3.0)
    m.add_argument("--source", help="bind to this address (default: --client)")
    d = sub.add_parser("decode-pcap", help="print the PCP messages in a pcap file")
    d.add_argument("file")
    d.add_argument("--port", type=int, default=PCP_SERVER_PORT)
    a = ap.parse_args(argv)

    if a.cmd == "decode-pcap":
        for msg in pcp_messages_in_pcap(a.file, a.port):
            head = f"{msg['ts']:.3f} {msg['src']}:{msg['sport']} > {msg['dst']}:{msg['dport']} "
            print(head + (f"INVALID {msg['error']}" if "error" in msg else describe(msg)))
        return 0

    nonce = bytes.fromhex(a.nonce) if a.nonce else os.urandom(12)
    third = a.internal if a.internal and a.internal != a.client else None
    req = encode_map(a.client, nonce, a.proto, a.iport, a.eport, a.eaddr, a.lifetime,
                     third_party=third, prefer_failure=a.prefer_failure)
    host, port = _split_server(a.server)
    print(f"request: {describe(decode(req))}")
    resp, _src = transact(host, req, port, a.timeout, bind=a.source or a.client)
    if resp is None:
        print("response: none (timeout)")
        return 1
    if "error" in resp:
        print(f"response: INVALID {resp['error']}")
        return 1
    print(f"response: {describe(resp)}")
    for k in ("result", "lifetime", "epoch", "nonce", "external_port", "external_address"):
        if k in resp:
            print(f"{k}={resp[k]}")
    print("nonce_match=" + ("yes" if resp.get("nonce") == nonce.hex() else "no"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

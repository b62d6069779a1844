"""Python helpers to drive pcpsim from tests.

    from client import PcpSimClient, spawn, PcpUdpClient
    sim = spawn(["127.0.0.1:0", "[::1]:0"], external_ip="198.51.100.1")   # a daemon process
    sim.ctl.set(quota=2, third_party="not_authorized")
    sim.ctl.fault("drop", count=2)
    ... point the code under test at sim.listen[0] ...
    print(sim.ctl.log())
    sim.stop()

PcpSimClient talks the control protocol (one JSON object per line, one reply line each)
over the daemon's unix socket.  PcpUdpClient is a tiny blocking PCP client for the
simulator's own tests (no retransmission logic of its own beyond what the test does).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import pcpsim  # noqa: E402

PYTHON = "/usr/bin/python3"


class ControlError(RuntimeError):
    pass


class PcpSimClient:
    """Control-socket client.  Each method returns the reply dict (raises on ok=false)."""

    def __init__(self, path, timeout=10.0):
        self.path = path
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def _connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock, self.buf = s, b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def command(self, req, check=True):
        if self.sock is None:
            self._connect()
        try:
            self.sock.sendall(json.dumps(req).encode() + b"\n")
            while b"\n" not in self.buf:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ControlError("control socket closed")
                self.buf += chunk
        except OSError:
            self.close()
            raise
        line, self.buf = self.buf.split(b"\n", 1)
        reply = json.loads(line)
        if check and not reply.get("ok"):
            raise ControlError(reply.get("error", "command failed: %r" % (req,)))
        return reply

    # Convenience wrappers, one per command.
    def ping(self):
        return self.command({"cmd": "ping"})

    def set(self, **settings):
        return self.command(dict(settings, cmd="set"))["config"]

    def config(self):
        return self.command({"cmd": "get"})

    def fault(self, action, **kw):
        return self.command(dict(kw, cmd="fault", action=action))["fault"]

    def faults(self):
        return self.command({"cmd": "faults"})["faults"]

    def clear_faults(self):
        return self.command({"cmd": "clear_faults"})

    def mappings(self):
        return self.command({"cmd": "mappings"})["mappings"]

    def reserve(self, protocol, port):
        return self.command({"cmd": "reserve", "protocol": protocol, "port": port})

    def unreserve(self, protocol, port):
        return self.command({"cmd": "unreserve", "protocol": protocol, "port": port})

    def log(self, since=0):
        return self.command({"cmd": "log", "since": since})["log"]

    def reset_log(self):
        return self.command({"cmd": "reset_log"})

    def stats(self):
        return self.command({"cmd": "stats"})["stats"]

    def restart(self, announce=True, **kw):
        return self.command(dict(kw, cmd="restart", announce=announce))

    def announce(self, mode="both", **kw):
        return self.command(dict(kw, cmd="announce", mode=mode))

    def renumber(self, external_ip, **kw):
        return self.command(dict(kw, cmd="renumber", external_ip=external_ip))

    def addresses(self):
        return [tuple(a) for a in self.command({"cmd": "addresses"})["listen"]]

    def quit(self):
        try:
            return self.command({"cmd": "quit"})
        finally:
            self.close()


class SimProcess:
    """A pcpsim daemon started by spawn(); .listen is the list of bound (addr, port)."""

    def __init__(self, proc, control, listen, tmpdir):
        self.proc, self.control, self.listen, self.tmpdir = proc, control, listen, tmpdir
        self.ctl = PcpSimClient(control)

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.ctl.quit()
            except (OSError, ControlError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.ctl.close()
        for name in os.listdir(self.tmpdir):
            try:
                os.unlink(os.path.join(self.tmpdir, name))
            except OSError:
                pass
        try:
            os.rmdir(self.tmpdir)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def spawn(listen=("127.0.0.1:0",), external_ip="198.51.100.1", settings=None, script=None,
          extra_args=(), timeout=10.0):
    """Start pcpsim.py as a process; ports 0 are chosen by the kernel (see .listen)."""
    tmpdir = tempfile.mkdtemp(prefix="pcpsim.")
    control = os.path.join(tmpdir, "control.sock")
    ready = os.path.join(tmpdir, "ready.json")
    args = [PYTHON, os.path.join(HERE, "pcpsim.py"), "--external-ip", external_ip,
            "--control", control, "--ready-file", ready]
    for addr in listen:
        args += ["--listen", addr]
    if settings:
        args += ["--set", json.dumps(settings)]
    if script:
        args += ["--script", script]
    args += list(extra_args)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    sim = SimProcess(proc, control, [], tmpdir)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError("pcpsim exited with %d" % proc.returncode)
            if os.path.exists(ready) and os.path.exists(control):
                probe = PcpSimClient(control)
                try:
                    probe.ping()
                    break
                except OSError:
                    pass
                finally:
                    probe.close()
            if time.monotonic() > deadline:
                raise RuntimeError("pcpsim did not become ready")
            time.sleep(0.02)
        with open(ready, encoding="utf-8") as fh:
            sim.listen = [tuple(a) for a in json.load(fh)["listen"]]
    except BaseException:
        sim.stop()          # kills the process if needed, removes the temporary directory
        raise
    return sim


class PcpUdpClient:
    """A tiny PCP client: one UDP socket, send a request, wait for responses."""

    def __init__(self, server, bind_addr=None, bind_port=0):
        self.server = tuple(server)
        family = socket.AF_INET6 if ":" in self.server[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.sock.bind((bind_addr or ("::1" if family == socket.AF_INET6 else "127.0.0.1"),
                        bind_port))
        self.addr = self.sock.getsockname()[0]

    def close(self):
        self.sock.close()

    def send(self, data):
        t = time.monotonic()
        self.sock.sendto(data, self.server)
        return t

    def recv(self, timeout=5.0):
        """(bytes, source, receive time) or None on timeout."""
        self.sock.settimeout(timeout)
        try:
            data, src = self.sock.recvfrom(65535)
        except socket.timeout:
            return None
        return data, src[:2], time.monotonic()

    def request(self, data, timeout=5.0):
        """Send and return the parsed first response (with '_src' and '_t'), or None."""
        self.send(data)
        got = self.recv(timeout)
        if got is None:
            return None
        resp = pcpsim.parse_response(got[0])
        resp["_src"], resp["_t"], resp["_raw"] = got[1], got[2], got[0]
        return resp

    def map(self, nonce, protocol, internal_port, lifetime, suggested_port=0,
            suggested_addr="::ffff:0.0.0.0", options=b"", client_addr=None, timeout=5.0):
        req = pcpsim.build_map_request(client_addr or self.addr, nonce, protocol, internal_port,
                                       lifetime, suggested_port, suggested_addr, options)
        return self.request(req, timeout)

    def peer(self, nonce, protocol, internal_port, lifetime, remote_addr, remote_port,
             suggested_port=0, options=b"", client_addr=None, timeout=5.0):
        req = pcpsim.build_peer_request(client_addr or self.addr, nonce, protocol, internal_port,
                                        lifetime, remote_addr, remote_port, suggested_port,
                                        options=options)
        return self.request(req, timeout)

"""upnpt.py - helpers shared by the transport tests: start the harness, talk raw HTTP."""
import os
import re
import socket
import subprocess
import sys
import time

FAILS = []


def check(cond, what):
    """Record one assertion; print it. The script exits 1 at the end if any failed."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def finish():
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


class Harness:
    """upnpt_harness as a child process; `port` is its HTTP port."""

    def __init__(self, exe, *args, netns=None):
        cmd = [exe] + [str(a) for a in args]
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.p.stdout.readline().decode()
        m = re.match(r"PORT (\d+)", line)
        if not m:
            raise RuntimeError("harness did not start: %r" % line)
        self.port = int(m.group(1))

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


class Conn:
    """One client connection that can read several responses in a row."""

    def __init__(self, port, host="127.0.0.1"):
        self.s = socket.create_connection((host, port), timeout=5)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def close(self):
        self.s.close()

    def _fill(self, timeout):
        self.s.settimeout(timeout)
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def response(self, timeout=5.0, head=False):
        """(status, headers with lower-case names, body) or None on EOF/timeout/reset."""
        try:
            while b"\r\n\r\n" not in self.buf:
                self._fill(timeout)
            head_b, rest = self.buf.split(b"\r\n\r\n", 1)
            lines = head_b.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            hdrs = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            self.buf = rest
            if status == 100:
                return self.response(timeout, head)
            n = 0 if head else int(hdrs.get("content-length", "0"))
            while len(self.buf) < n:
                self._fill(timeout)
            body, self.buf = self.buf[:n], self.buf[n:]
            return status, hdrs, body
        except (socket.timeout, EOFError, ConnectionResetError):
            return None

    def closed_within(self, timeout):
        """True if the server closes the connection within timeout seconds."""
        self.s.settimeout(timeout)
        try:
            while True:
                if not self.s.recv(4096):
                    return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


def raw(port, data, timeout=5.0, host="127.0.0.1"):
    """Send data, read until EOF or timeout. Returns (bytes, closed_by_server)."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(data)
    out = b""
    closed = False
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            out += d
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed


def status_of(resp):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", resp)
    return int(m.group(1)) if m else None

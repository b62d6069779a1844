"""Fixture for iwfd behaviour tests: iwfd against the pcpsim PCP server on loopback.

    from iwfsim import Env, main
    def test_something(iwfd_path):
        with Env(iwfd_path, igd=1, config={"security": {"allow_third_party": True}}) as env:
            assert env.add(40000, 40000) == 0          # upnpc -u URL -a ... -> 0 or UPnP code
            ...
    if __name__ == "__main__":
        main(globals())

Everything runs on 127.0.0.0/8: the simulator listens on a free UDP port, iwfd on a free TCP
port with --lan-if lo, each Env in its own temporary directory, and every process is killed
in Env.close() (also on failure).  UPnP is driven by real control points: Debian's upnpc
(`upnpc -u ROOTDESC ...`, which prints numeric error codes) and python3-miniupnpc
(`UPnP.selectigd(url)`; errors come back as strupnperror() text, turned back into codes
through libminiupnpc's own table).
"""

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PCPSIM_DIR = os.path.join(ROOT, "tests", "pcpsim")
if PCPSIM_DIR not in sys.path:
    sys.path.insert(0, PCPSIM_DIR)

import client as simclient  # noqa: E402  tests/pcpsim/client.py
import pcpsim  # noqa: E402

try:
    import miniupnpc  # Debian python3-miniupnpc (only for /usr/bin/python3)
except ImportError:  # pragma: no cover - reported by the tests that need it
    miniupnpc = None

UPNPC = shutil.which("upnpc") or "/usr/bin/upnpc"
TCP, UDP = 6, 17
EXTERNAL_IP = "198.51.100.10"


class Skip(Exception):
    pass


# ------------------------------------------------------------------ small helpers

def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until truthy; return its value, or raise AssertionError after timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


def _upnp_error_table():
    """UPnP error text (as python-miniupnpc raises it) -> code, from libminiupnpc itself."""
    table = {}
    try:
        lib = ctypes.CDLL("libminiupnpc.so.17")
        lib.strupnperror.restype = ctypes.c_char_p
        lib.strupnperror.argtypes = [ctypes.c_int]
        for code in range(400, 900):
            text = lib.strupnperror(code)
            if text and text != b"UnknownError":
                table.setdefault(text.decode(), code)
    except OSError:
        pass
    return table


UPNP_ERROR_CODES = _upnp_error_table()


def mupnp_code(exc):
    """The UPnP error code of an exception raised by python-miniupnpc.

    -1 when the text names no code: libminiupnpc 2.2.4 has no text for some codes (728,
    730, ...) and says "UnknownError"; see mupnp_nameable()."""
    text = str(exc)
    if text in UPNP_ERROR_CODES:
        return UPNP_ERROR_CODES[text]
    m = re.search(r"(\d{3})", text)
    return int(m.group(1)) if m else -1


# ------------------------------------------------------------------ the simulator

def mupnp_nameable(code):
    """Whether python-miniupnpc can report `code` distinctly (else it says UnknownError)."""
    return code in UPNP_ERROR_CODES.values()


def mupnp_matches(got, expect):
    return got == expect or (got == -1 and not mupnp_nameable(expect))


class Sim:
    """A pcpsim.py process on 127.0.0.1:<free port>, with its control socket."""

    def __init__(self, settings=None, external_ip=EXTERNAL_IP):
        s = {"address_mismatch": False, "quota": 0}
        s.update(settings or {})
        self.proc = simclient.spawn(["127.0.0.1:0"], external_ip=external_ip, settings=s)
        self.ctl = self.proc.ctl
        self.addr = self.proc.listen[0]

    @property
    def server(self):
        return "%s:%d" % (self.addr[0], self.addr[1])

    def cmd(self, **req):
        return self.ctl.command(req)

    def set(self, **kw):
        return self.ctl.set(**kw)

    def fault(self, action, **kw):
        return self.ctl.fault(action, **kw)

    def clear_faults(self):
        return self.ctl.clear_faults()

    def mappings(self):
        return [m for m in self.ctl.mappings() if m["kind"] == "map"]

    def log(self, since=0):
        return self.ctl.log(since)

    def last_seq(self):
        log = self.ctl.log(0)
        return log[-1]["seq"] if log else 0

    def requests(self, since=0, opcode="MAP"):
        """Logged requests after seq `since` with decoded fields (MAP only by default)."""
        out = []
        for e in self.ctl.log(since):
            f = e.get("fields", {})
            if opcode and f.get("opcode_name") != opcode:
                continue
            out.append(e)
        return out

    def user_maps(self, since=0):
        """MAP requests after `since`, excluding iwfd's external-address probe (UDP port 9)."""
        return [e for e in self.requests(since) if not is_probe(e)]

    def restart(self, announce="unicast"):
        return self.ctl.restart(announce=announce)

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.proc.tmpdir, ignore_errors=True)


def is_probe(entry):
    f = entry.get("fields", {})
    return f.get("protocol") == UDP and f.get("internal_port") == 9


def opt_names(entry):
    return [o.get("name") for o in entry.get("fields", {}).get("options", [])]


def opt(entry, name):
    for o in entry.get("fields", {}).get("options", []):
        if o.get("name") == name:
            return o
    return None


def sim_key(m):
    """(protocol, external port) of a simulator mapping."""
    return (m["protocol"], m["external_port"])


# ------------------------------------------------------------------ iwfd

class Iwfd:
    """One iwfd process (--foreground), its stderr in a log file."""

    def __init__(self, exe, workdir, server, igd=1, config=None, state=True, http_port=None,
                 log_level="debug", extra_args=()):
        self.exe, self.workdir, self.server, self.igd = exe, workdir, server, igd
        self.config = config
        self.state = os.path.join(workdir, "state.json") if state is True else state
        self.http_port = http_port or free_port()
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.proc = None
        self.logfile = None
        self.runs = 0
        self.url = "http://127.0.0.1:%d/rootDesc.xml" % self.http_port

    def log_path(self, run=None):
        return os.path.join(self.workdir, "iwfd.%d.log" % (self.runs if run is None else run))

    def start(self, timeout=15.0):
        self.runs += 1
        args = [self.exe, "--foreground", "--lan-if", "lo", "--lan-addr", "127.0.0.1",
                "--http-port", str(self.http_port), "--pcp-server", self.server,
                "--igd", str(self.igd), "--log-level", self.log_level]
        if self.config is not None:
            cfg_path = os.path.join(self.workdir, "iwfd.json")
            with open(cfg_path, "w", encoding="utf-8") as fh:
                json.dump(self.config, fh)
            args += ["--config", cfg_path]
        args += ["--state", self.state] if self.state else ["--no-state"]
        args += self.extra_args
        self.logfile = open(self.log_path(), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.logfile,
                                     stderr=subprocess.STDOUT)
        wait_for(lambda: self.proc.poll() is not None or "ready: http" in self.log(),
                 timeout, what="iwfd ready")
        if self.proc.poll() is not None:
            raise AssertionError("iwfd exited with %s:\n%s" % (self.proc.returncode, self.log()))
        return self

    def log(self, run=None):
        try:
            with open(self.log_path(run), "rb") as fh:
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()

    def _close_log(self):
        if self.logfile is not None:
            self.logfile.close()
            self.logfile = None


# ------------------------------------------------------------------ UPnP control points

def upnpc(url, *args, timeout=30):
    """Run `upnpc -u URL args...`; returns (returncode, combined output)."""
    p = subprocess.run([UPNPC, "-u", url] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def upnpc_code(out, action=None):
    """The UPnP code upnpc printed for `action` ('failed with code N'), or 0 if none."""
    pat = (r"" if action is None else re.escape(action) + r"\([^\n]*\) ") + \
        r"failed with code\s*:?\s*(\d+)"
    m = re.search(pat, out)
    return int(m.group(1)) if m else 0


class MUPnP:
    """python3-miniupnpc pointed at a root description URL (no SSDP needed)."""

    def __init__(self, url):
        if miniupnpc is None:
            raise Skip("python3-miniupnpc not importable (use /usr/bin/python3)")
        self.u = miniupnpc.UPnP()
        self.u.discoverdelay = 200
        self.control_url = self.u.selectigd(url)

    def call(self, name, *args):
        """(0, result) or (UPnP error code, message)."""
        try:
            return 0, getattr(self.u, name)(*args)
        except Exception as exc:  # python-miniupnpc raises plain Exception
            return mupnp_code(exc), str(exc)

    def entries(self):
        """Every GetGenericPortMappingEntry until the first error."""
        out, i = [], 0
        while True:
            r = self.u.getgenericportmapping(i)
            if r is None:
                return out
            out.append(r)
            i += 1


# ------------------------------------------------------------------ one test environment

class Env:
    """A simulator and an iwfd, in their own temporary directory; close() kills both."""

    def __init__(self, iwfd_exe, igd=1, config=None, sim_settings=None, state=True,
                 start=True, service_wait_s=0, answer_deadline_ms=2000):
        self.workdir = tempfile.mkdtemp(prefix="iwfsim.")
        cfg = {"pcp": {"service_wait_s": service_wait_s,
                       "answer_deadline_ms": answer_deadline_ms}}
        for k, v in (config or {}).items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k].update(v)
            else:
                cfg[k] = v
        self.config = cfg
        self.sim = None
        self.iwfd = None
        try:
            self.sim = Sim(sim_settings)
            self.iwfd = Iwfd(iwfd_exe, self.workdir, self.sim.server, igd=igd, config=cfg,
                             state=state)
            if start:
                self.start()
        except BaseException:
            self.close()
            raise

    @property
    def url(self):
        return self.iwfd.url

    def start(self):
        self.iwfd.start()
        return self

    def wait_connected(self, timeout=10):
        """Wait until GetStatusInfo says Connected (the probe MAP got its answer)."""
        return wait_for(lambda: self.status() == "Connected", timeout,
                        what="ConnectionStatus Connected")

    def status(self):
        rc, out = upnpc(self.url, "-s")
        m = re.search(r"Status : (\w+)", out)
        return m.group(1) if m else None

    def close(self):
        errs = []
        for fn in ((lambda: self.iwfd and self.iwfd.stop()),
                   (lambda: self.sim and self.sim.stop())):
            try:
                fn()
            except Exception as exc:  # keep cleaning up
                errs.append(exc)
        if os.environ.get("IWFSIM_KEEP"):
            sys.stderr.write("kept %s\n" % self.workdir)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None and self.iwfd is not None:
            sys.stderr.write("---- iwfd log (last 60 lines of run %d) ----\n" % self.iwfd.runs)
            sys.stderr.write("\n".join(self.iwfd.log().splitlines()[-60:]) + "\n")
        self.close()

    # -- UPnP through upnpc

    def add(self, eport, iport=None, proto="TCP", client="127.0.0.1", lease=None, remote=None,
            desc=None):
        """upnpc -a: 0 on success, else the UPnP error code."""
        args = []
        if desc is not None:
            args += ["-e", desc]
        args += ["-a", client, iport if iport is not None else eport, eport, proto]
        if lease is not None or remote is not None:
            args.append(lease if lease is not None else 0)
        if remote is not None:
            args.append(remote)
        rc, out = upnpc(self.url, *args)
        code = upnpc_code(out, "AddPortMapping")
        if not code and "is redirected to internal" not in out:
            raise AssertionError("upnpc -a gave neither success nor an error code:\n" + out)
        return code

    def add_any(self, eport, iport=None, proto="TCP", client="127.0.0.1", lease=None):
        """upnpc -n (AddAnyPortMapping, IGD:2): (0, reserved port) or (code, None)."""
        args = ["-n", client, iport if iport is not None else eport, eport, proto]
        if lease is not None:
            args.append(lease)
        rc, out = upnpc(self.url, *args)
        code = upnpc_code(out, "AddAnyPortMapping")
        if code:
            return code, None
        m = re.search(r"external [\d.]+:(\d+) \w+ is redirected", out)
        if not m:
            raise AssertionError("upnpc -n: no reserved port in output:\n" + out)
        return 0, int(m.group(1))

    def delete(self, eport, proto="TCP", remote=None):
        args = ["-d", eport, proto] + ([remote] if remote else [])
        rc, out = upnpc(self.url, *args)
        code = upnpc_code(out, "DeletePortMapping")
        if not code and "UPNP_DeletePortMapping() returned : 0" not in out:
            raise AssertionError("upnpc -d: unexpected output:\n" + out)
        return code

    def delete_range(self, start, end, proto="TCP"):
        rc, out = upnpc(self.url, "-N", start, end, proto)
        m = re.search(r"UPNP_DeletePortMappingRange\(\) returned\s*:?\s*(-?\d+)", out)
        code = upnpc_code(out, "DeletePortMappingRange")
        if code:
            return code
        if m:
            return int(m.group(1))
        raise AssertionError("upnpc -N: unexpected output:\n" + out)

    def entries(self):
        """The table through GetGenericPortMappingEntry (python-miniupnpc)."""
        return MUPnP(self.url).entries()

    def table(self):
        """{(proto, ext_port): (internal client, internal port, description, lease)}."""
        out = {}
        for e in self.entries():
            eport, proto, (ic, iport), desc, enabled, rhost, lease = e
            out[(TCP if proto == "TCP" else UDP, eport)] = (ic, iport, desc, lease, rhost)
        return out


# ------------------------------------------------------------------ isolation

CLONE_NEWNET = 0x40000000


def private_netns():
    """Move this process (and so everything it starts) into a network namespace of its own,
    with only `lo` up.  Every iwfd binds UDP 5350 (PCP ANNOUNCE, SO_REUSEADDR) and SSDP 1900
    on 127.0.0.1; two scripts sharing the root namespace would receive each other's unicast
    ANNOUNCE (the kernel hands it to one of the sockets), race for "free" ports, and send
    SSDP/ANNOUNCE multicast towards the host's default route.  In a namespace of their own
    the scripts can run in parallel (meson is_parallel) and nothing leaves loopback.
    The namespace is anonymous: it disappears with the last process in it, even after a
    SIGKILL, so there is nothing to clean up.  Returns a note for the log, or None when the
    scripts stay in the current namespace (not root, IWFSIM_NETNS=0, or unshare refused)."""
    if os.environ.get("IWFSIM_NETNS", "1") == "0":
        return "IWFSIM_NETNS=0: running in the current network namespace"
    if os.geteuid() != 0:
        return "not root: running in the current network namespace (not parallel-safe)"
    if threading.active_count() != 1:   # unshare() moves only the calling thread
        return "threads already running: staying in the current network namespace"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return "unshare(CLONE_NEWNET) failed (%s): running in the current namespace" \
            % os.strerror(ctypes.get_errno())
    ip = shutil.which("ip") or "/usr/sbin/ip"
    subprocess.run([ip, "link", "set", "lo", "up"], check=True)
    return None


# ------------------------------------------------------------------ a tiny runner

def main(ns):
    """Run every test_* function of module namespace `ns` (or those named in argv[2:]).

    argv[1] (or $IWFD) is the iwfd binary.  Exit 0 if all passed, 77 if all skipped, else 1.
    Runs in a private network namespace when it can (private_netns()).
    """
    note = private_netns()
    print("network namespace: %s" % (note or "private (unshare), lo only"), flush=True)
    argv = sys.argv[1:]
    exe = os.environ.get("IWFD")
    if argv and not argv[0].startswith("test_"):
        exe = argv.pop(0)
    if not exe:
        exe = os.path.join(ROOT, "build", "iwf", "iwfd")
    exe = os.path.abspath(exe)
    if not os.access(exe, os.X_OK):
        print("iwfd binary not found: %s" % exe)
        return sys.exit(1)
    names = argv or sorted(n for n in ns if n.startswith("test_") and callable(ns[n]))
    failed, skipped = [], []
    for n in names:
        t0 = time.monotonic()
        print("=== %s" % n, flush=True)
        try:
            ns[n](exe)
            print("PASS %s (%.1f s)" % (n, time.monotonic() - t0), flush=True)
        except Skip as exc:
            skipped.append(n)
            print("SKIP %s: %s" % (n, exc), flush=True)
        except Exception:
            failed.append(n)
            traceback.print_exc()
            print("FAIL %s (%.1f s)" % (n, time.monotonic() - t0), flush=True)
    print("%d passed, %d failed, %d skipped%s" % (
        len(names) - len(failed) - len(skipped), len(failed), len(skipped),
        (": " + ", ".join(failed)) if failed else ""), flush=True)
    if failed:
        sys.exit(1)
    sys.exit(77 if skipped and len(skipped) == len(names) else 0)

#!/usr/bin/env python3
"""iwfd as a service (issue "Operable on a real router", part 1 and 7): every start-up error
gives a non-zero exit and its reason on stderr, with and without --foreground; one iwfd per
state file; paths resolved before detaching; READY=1 on $NOTIFY_SOCKET; "<N>" priorities
and no timestamps when stderr is the journal; short flags; the start-up PCP probe's verdict.

usage: test_startup.py IWFD [test_name ...]

As root it runs in a network namespace of its own (only lo, tests/iwf/sim/iwfsim.py
private_netns), so its SSDP/ANNOUNCE sockets meet nobody else's. Exit 0 / 1 / 77 (skipped).
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sim"))
import iwfsim  # noqa: E402  (private_netns)

IWFD = None
TMP = None
BASE = ["--lan-if", "lo", "--lan-addr", "127.0.0.1", "--http-port", "0"]


def run(args, timeout=20, env=None, cwd=None):
    """Run iwfd to its end (daemon mode: until the starting process exits)."""
    p = subprocess.run([IWFD] + args, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    return p.returncode, p.stderr


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def stop_daemon(lock):
    pid = int(open(lock).read().split()[0])
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("daemon %d did not stop on SIGTERM" % pid)


def expect_failure(args, pattern, code=None, what=""):
    """Both ways: --foreground and detaching; the reason on stderr, one line enough."""
    for mode in (["--foreground"], []):
        rc, err = run(mode + args)
        label = "%s (%s)" % (what, "foreground" if mode else "daemon")
        assert rc != 0, "%s: exit status 0; stderr: %r" % (label, err)
        if code is not None:
            assert rc == code, "%s: exit status %d, expected %d; stderr: %r" % (label, rc, code, err)
        assert re.search(pattern, err), "%s: stderr lacks %r: %r" % (label, pattern, err)
        if not mode:
            # Detached: the reason is one line starting with "iwfd: ".
            assert re.search(r"(?m)^iwfd: .*" + pattern, err), "%s: no 'iwfd: ' line: %r" % (label, err)


# ------------------------------------------------------------------ start-up errors

def test_wrong_interface():
    expect_failure(["--lan-if", "nosuch0", "--http-port", "0", "--pcp-server", "127.0.0.1", "--no-state"],
                   r"nosuch0", 1, "a LAN interface that does not exist")


def test_busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        expect_failure(BASE[:-1] + [str(port), "--pcp-server", "127.0.0.1", "--no-state"],
                       r"port %d( of \w+)?: Address already in use" % port, 1, "a busy HTTP port")
    finally:
        s.close()


def test_bad_config():
    cases = [({"http_prot": 5000}, r"http_prot: unknown key \(did you mean http_port\?\)"),
             ({"pcp": {"lifetime": 5}}, r"pcp\.lifetime: an integer 60\.\.65535"),
             ({"nat": {"port_mni": 2000}}, r"did you mean nat\.port_min\?"),
             ({"http_port": 70000}, r"http_port: a TCP port 0\.\.65535")]
    for i, (cfg, pattern) in enumerate(cases):
        path = os.path.join(TMP, "bad%d.json" % i)
        with open(path, "w") as f:
            json.dump(cfg, f)
        expect_failure(["-c", path, "--lan-if", "lo", "--no-state"], pattern, 2, "config %r" % cfg)
        assert re.search(re.escape(path), run(["-c", path, "--no-state"])[1]), "the file is named"
    expect_failure(["-c", os.path.join(TMP, "missing.json"), "--lan-if", "lo"], r"missing\.json", 2,
                   "a missing config file")


def test_state_dir_not_creatable():
    blocker = os.path.join(TMP, "afile")
    open(blocker, "w").close()
    expect_failure(BASE + ["--pcp-server", "127.0.0.1", "--state", blocker + "/sub/state"],
                   r"cannot create the state directory .*afile/sub", 1, "a state directory under a file")


def test_control_socket_named_but_not_made():
    """A control socket the administrator named (option or config key) that cannot be made is a
    start-up error; the default path only warns (a second iwfd beside the service)."""
    where = os.path.join(TMP, "nodir", "deeper", "control")
    expect_failure(BASE + ["--pcp-server", "127.0.0.1", "--no-state", "--control-socket", where],
                   r"control socket .*nodir/deeper/control: cannot make its directory: No such file or directory",
                   1, "--control-socket in a directory that cannot be made")
    path = os.path.join(TMP, "ctl.json")
    with open(path, "w") as f:
        json.dump({"control_socket": where}, f)
    expect_failure(["-c", path] + BASE + ["--pcp-server", "127.0.0.1", "--no-state"],
                   r"control socket .*nodir/deeper/control", 1, "control_socket key")
    # Held by a running iwfd: the second one, told the same path, does not start.
    work = tempfile.mkdtemp(dir=TMP)
    held = os.path.join(work, "control")
    p = start_fg(BASE + ["--pcp-server", "127.0.0.1", "--no-state", "--control-socket", held],
                 stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 15
        while time.time() < deadline and not os.path.exists(held):
            time.sleep(0.1)
        assert os.path.exists(held), "the first iwfd made no control socket"
        expect_failure(BASE + ["--pcp-server", "127.0.0.1", "--no-state", "--control-socket", held],
                       r"control socket .*: another process listens on it", 1, "a control socket in use")
        assert p.poll() is None and os.path.exists(held), "the first iwfd or its socket is gone"
    finally:
        stop_fg(p)
    # The default path (not named) cannot be made: a warning, and iwfd serves. In a mount
    # namespace of its own with a read-only /run, so the machine's /run/iwfd is not touched.
    sh = "mount -t tmpfs -o ro tmpfs /run && exec \"$0\" \"$@\""
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", sh, IWFD, "--foreground"]
                         + BASE + ["--pcp-server", "127.0.0.1", "--no-state"], stderr=subprocess.PIPE, text=True)
    lines = []
    t = threading.Thread(target=lambda: lines.extend(p.stderr), daemon=True)
    t.start()
    try:
        deadline = time.time() + 15
        while time.time() < deadline and not any("ready: " in line for line in list(lines)) and p.poll() is None:
            time.sleep(0.1)
        assert p.poll() is None, "iwfd did not start with the default control socket unmakeable: %r" % lines
    finally:
        stop_fg(p)
        t.join(5)
    log = "".join(lines)
    assert re.search(r"warn: control socket /run/iwfd/control: .*; iwfctl cannot reach this iwfd", log), log
    assert "ready: " in log, log


# ------------------------------------------------------------------ one instance, paths

def test_second_instance_refused_and_relative_state():
    work = tempfile.mkdtemp(dir=TMP)
    # Detached, with a relative --state: resolved against the starting directory.
    rc, err = run(BASE + ["--pcp-server", "127.0.0.1", "--state", "rel/state"], cwd=work)
    assert rc == 0, "daemon start: %d %r" % (rc, err)
    lock = os.path.join(work, "rel", "state.lock")
    assert os.path.exists(os.path.join(work, "rel", "state")), "relative --state not under the start directory"
    assert not os.path.exists("/rel"), "relative --state was resolved against /"
    pid = int(open(lock).read().split()[0])
    assert pid_alive(pid), "the daemon is not running"
    try:
        for mode in (["--foreground"], []):
            rc, err = run(mode + BASE + ["--pcp-server", "127.0.0.1", "--state", os.path.join(work, "rel/state")])
            assert rc == 1, "second instance (%s) exit %d: %r" % (mode, rc, err)
            assert "another iwfd (pid %d)" % pid in err, "second instance: %r" % err
    finally:
        stop_daemon(lock)
    # Released when the first one ends: a new start succeeds (and is stopped again).
    rc, err = run(BASE + ["--pcp-server", "127.0.0.1", "--state", os.path.join(work, "rel/state")])
    assert rc == 0, "restart after stop: %d %r" % (rc, err)
    stop_daemon(lock)


# ------------------------------------------------------------------ systemd integration

def start_fg(args, env=None, stderr=None):
    return subprocess.Popen([IWFD, "--foreground"] + args, env=env, stderr=stderr or subprocess.PIPE, text=True)


def stop_fg(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("iwfd did not stop on SIGTERM")


def test_notify_ready():
    path = os.path.join(TMP, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(15)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    p = start_fg(BASE + ["--pcp-server", "127.0.0.1", "--no-state"], env=env, stderr=subprocess.DEVNULL)
    try:
        msg = s.recv(4096).decode()
        assert "READY=1" in msg.split("\n"), "first notification: %r" % msg
        assert "STATUS=serving http://127.0.0.1:" in msg, msg
    finally:
        stop_fg(p)
    msg = s.recv(4096).decode()
    assert msg == "STOPPING=1", "at stop: %r" % msg
    s.close()


def test_journal_priorities_and_short_flags():
    """stderr is 'the journal' when $JOURNAL_STREAM names its device and inode."""
    out = os.path.join(TMP, "journal.txt")
    with open(out, "w") as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        env.pop("NOTIFY_SOCKET", None)
        p = subprocess.Popen([IWFD, "-d"] + BASE + ["--pcp-server", "127.0.0.1", "--no-state"],
                             env=env, stderr=f)
        deadline = time.time() + 15
        while time.time() < deadline and "ready: " not in open(out).read():
            time.sleep(0.1)
        stop_fg(p)
    lines = open(out).read().splitlines()
    assert lines, "no output"
    bad = [line for line in lines if not re.match(r"^<[0-7]>", line)]
    assert not bad, "lines without a <N> prefix: %r" % bad[:3]
    assert not [line for line in lines if re.match(r"^<\d>\d\d:\d\d:\d\d", line)], "timestamps in the journal"
    assert any(line.startswith("<6>ready: ") for line in lines), "ready at info (<6>)"
    assert any(line.startswith("<7>") for line in lines), "-d logs at debug (<7>)"
    # A stderr that is not the journal keeps its timestamps.
    env = dict(os.environ, JOURNAL_STREAM="1:1")
    rc, err = run(["-f", "--lan-if", "nosuch0", "--no-state", "--pcp-server", "127.0.0.1"], env=env)
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} iwfd error: ", err, re.M), err
    # Short flags beside the long ones.
    rc, out_h = subprocess.run([IWFD, "-h"], capture_output=True, text=True).returncode, \
        subprocess.run([IWFD, "-h"], capture_output=True, text=True).stdout
    assert rc == 0 and "-c, --config" in out_h and "-V, --version" in out_h, out_h
    v = subprocess.run([IWFD, "-V"], capture_output=True, text=True)
    assert v.returncode == 0 and re.match(r"^iwfd \d+\.\d+", v.stdout), v.stdout
    assert "default 2869" in out_h, "the documented default HTTP port is in --help"


# ------------------------------------------------------------------ the start-up PCP probe

def fg_log_until(args, pattern, timeout):
    p = start_fg(args)
    lines, found = [], None
    deadline = time.time() + timeout

    def reader():
        for line in p.stderr:
            lines.append(line)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        while time.time() < deadline and not found:
            found = next((m for m in (re.search(pattern, line) for line in list(lines)) if m), None)
            time.sleep(0.1)
    finally:
        stop_fg(p)
        t.join(5)
    assert found, "no %r within %d s in:\n%s" % (pattern, timeout, "".join(lines))
    return "".join(lines)


def test_probe_refused():
    port = free_port()
    fg_log_until(BASE + ["--pcp-server", "127.0.0.1:%d" % port, "--no-state"],
                 r"warn: PCP server 127\.0\.0\.1 port %d \(configured\) refused the start-up probe" % port, 10)


def test_probe_answered():
    """A server that answers ANNOUNCE: an info line, no warning."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    seen = []

    def serve():
        srv.settimeout(15)
        try:
            data, peer = srv.recvfrom(2048)
        except OSError:
            return
        seen.append(data)
        # RFC 6887 §7.2 response header: version, R|opcode, reserved, result, lifetime, epoch, 12 reserved
        srv.sendto(struct.pack("!BBBBII12x", 2, 0x80 | data[1], 0, 0, 0, 1234), peer)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    log = fg_log_until(BASE + ["--pcp-server", "127.0.0.1:%d" % port, "--no-state"],
                       r"info: PCP server 127\.0\.0\.1 port %d \(configured\) answers \(start-up probe: "
                       r"ANNOUNCE SUCCESS, epoch 1234" % port, 10)
    srv.close()
    assert seen and seen[0][0] == 2 and seen[0][1] == 0 and len(seen[0]) == 24, "an ANNOUNCE request: %r" % seen
    assert "warn: PCP server" not in log, log


def test_probe_silent():
    """A server that never answers: a warning naming it, the source and what was tried."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    try:
        fg_log_until(BASE + ["--pcp-server", "127.0.0.1:%d" % port, "--no-state"],
                     r"warn: PCP server 127\.0\.0\.1 port %d \(configured\) does not answer: 3 ANNOUNCE "
                     r"requests from 127\.0\.0\.1 over 15 s" % port, 25)
    finally:
        srv.close()


def main():
    global IWFD, TMP
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    IWFD = os.path.abspath(sys.argv[1])
    note = iwfsim.private_netns()
    if note:
        print("note:", note)
    TMP = tempfile.mkdtemp(prefix="iwfd-startup-")
    names = sys.argv[2:] or [n for n in sorted(globals()) if n.startswith("test_")]
    failed = 0
    for n in names:
        t0 = time.time()
        try:
            globals()[n]()
            print("ok   %s (%.1f s)" % (n, time.time() - t0))
        except Exception as exc:  # noqa: BLE001 - report every failure, run the rest
            failed += 1
            print("FAIL %s: %s" % (n, exc))
    subprocess.run(["rm", "-rf", TMP])
    print("%d passed, %d failed" % (len(names) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

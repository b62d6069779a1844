#!/usr/bin/python3
"""Run one declarative end-to-end scenario (TOML) in fresh network namespaces.

  run.py SCENARIO.toml [--iwfd PATH] [--keep] [--verbose]

Exit 0 when every step passed, 1 when a step failed (the reason is printed), 2 on a harness
error (topology could not be built, bad scenario file), 77 (meson's SKIP) when the scenario
needs iwfd and no binary was given or it does not exist.  See tests/e2e/README.md for the
scenario format.
"""
import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

ROLE_ALIASES = {"host1": "host1", "lan1": "host1", "host2": "host2", "lan2": "host2",
                "host3": "host3", "lan3": "host3",   # topology "nat64": the IPv6-only LAN host
                "router": "router", "cpe": "router", "carrier": "carrier", "internet": "internet"}

STEP_ACTIONS = ("run", "nft", "capture", "carrier", "iwfd", "sleep", "log", "spawn", "wait",
                "pcpsim")
CANARY_PORT = 5399   # source port of the capture's positive-control PCP ANNOUNCE request


class StepFailed(Exception):
    pass


def subst(text, vars_, rx=False):
    """{name} placeholders; {{ and }} stay literal braces (str.format rules).  rx=True: the
    text is a regex, so the values are inserted escaped ({host1} matches only that address)."""
    if rx:
        vars_ = {k: re.escape(str(v)) for k, v in vars_.items()}
    try:
        return text.format(**vars_)
    except KeyError as e:
        raise StepFailed(f"unknown placeholder {e} in {text!r}")


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


class Runner:
    def __init__(self, scenario, path, iwfd_exe, keep=False, verbose=False):
        self.sc = scenario
        self.path = path
        self.iwfd_exe = iwfd_exe
        self.keep = keep
        self.verbose = verbose
        self.topo = None
        self.carrier = None
        self.iwfd = None
        self.capture = None
        self.captures = {}
        self.vars = {}
        self.saved_vars = {}
        self.spawned = {}
        self.iwfd_stopped = False
        self.last = {}
        self._tls = threading.local()
        self.ready_within = 15.0

    # ---------------------------------------------------------------- helpers
    def out(self, msg):
        buf = getattr(self._tls, "buf", None)
        if buf is not None:           # inside a lane: printed as one block afterwards
            buf.append(msg)
        else:
            print(msg, flush=True)

    def refresh_vars(self):
        v = self.topo.vars()
        v["url"] = self.iwfd.url if self.iwfd and self.iwfd.url else ""
        v["iwfd"] = self.iwfd_exe or ""
        # iwfctl of the same build (tools/ beside iwf/), talking to this run's control socket
        v["iwfctl"] = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(self.iwfd_exe))),
                                   "tools", "iwfctl") if self.iwfd_exe else ""
        v["control"] = self.iwfd.control if self.iwfd else ""
        # the TR-069 agent of the same build (tools/cwmp/ beside iwf/)
        v["iwf_cwmp"] = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(self.iwfd_exe))),
                                     "tools", "cwmp", "iwf-cwmp") if self.iwfd_exe else ""
        v["http_port"] = str(self.iwfd.http_port) if self.iwfd else ""
        v["iwfd_pid"] = str(self.iwfd.proc.pid) if self.iwfd and self.iwfd.proc else ""
        v["state"] = (self.iwfd.state or "") if self.iwfd else ""
        v["pcpsim"] = H.Pcpsim.PCPSIM
        v["pcpsim_ctl"] = self.carrier.control if isinstance(self.carrier, H.Pcpsim) else ""
        v.update(self.saved_vars)
        self.vars = v

    def expect_regexes(self, text, must, must_not, what):
        for rx in as_list(must):
            rx = subst(rx, self.vars, rx=True)
            if not re.search(rx, text, re.M):
                raise StepFailed(f"{what}: expected /{rx}/ but it is not there:\n{indent(text)}")
        for rx in as_list(must_not):
            rx = subst(rx, self.vars, rx=True)
            m = re.search(rx, text, re.M)
            if m:
                raise StepFailed(f"{what}: /{rx}/ must not match but found {m.group(0)!r}:\n"
                                 f"{indent(text)}")

    # ---------------------------------------------------------------- step kinds
    def step_run(self, st):
        role = self.role_of(st, "host1")
        cmd = subst(st["run"], self.vars)
        argv = shlex.split(cmd)
        within = st.get("within")
        timeout = float(st.get("timeout", max(60, (within or 0) + 10)))
        t0 = time.monotonic()
        try:
            p = self.topo.run(role, argv, timeout=timeout)
            rc, text = p.returncode, p.stdout + p.stderr
        except subprocess.TimeoutExpired as e:
            raise StepFailed(f"`{cmd}` in {role} still running after {timeout:.0f}s "
                             f"(output so far: {e.stdout!r})")
        took = time.monotonic() - t0
        self.last = {"rc": rc, "output": text, "took": took}
        bound = f" of {float(within):g}s bound" if within is not None else ""
        self.out(f"    $ {cmd}   [{role}, rc={rc}, {took:.1f}s{bound}]")
        if self.verbose or st.get("show", False):
            self.out(indent(text, "      | "))
        exp = st.get("expect_rc", 0)
        if exp == "nonzero":
            if rc == 0:
                raise StepFailed(f"`{cmd}` exited 0, expected non-zero:\n{indent(text)}")
        elif exp != "any" and rc != int(exp):
            raise StepFailed(f"`{cmd}` exited {rc}, expected {exp}:\n{indent(text)}")
        self.expect_regexes(text, st.get("expect_output"), st.get("reject_output"), f"`{cmd}`")
        if within is not None and took > float(within):
            raise StepFailed(f"`{cmd}` took {took:.1f}s, bound is {within}s")
        for var, rx in st.get("save_output", {}).items():
            # {var} for later steps: group 1 of the regex's first match in the output
            m = re.search(subst(rx, self.vars, rx=True), text, re.M)
            if not m:
                raise StepFailed(f"`{cmd}`: nothing to save as {var}: /{rx}/ not in:\n{indent(text)}")
            self.vars[var] = self.saved_vars[var] = m.group(1)
            self.out(f"    saved {var} = {m.group(1)}")
        if "expect_log" in st or "reject_log" in st:
            self.check_log(st.get("expect_log"), st.get("reject_log"), st.get("log_within", 3))

    def role_of(self, st, default):
        role = ROLE_ALIASES.get(st.get("ns", default))
        if role is None or role not in self.topo.ns:
            raise StepFailed(f"unknown namespace {st.get('ns')!r} (internet needs internet = true)")
        return role

    def step_spawn(self, st):
        """Start a background command; `ready` (regex) waits for its output; `wait` collects it."""
        role = self.role_of(st, "host1")
        name = st.get("id", "bg")
        cmd = subst(st["spawn"], self.vars)
        proc = self.topo.spawn(role, f"spawn-{name}", shlex.split(cmd))
        self.spawned[name] = proc
        self.out(f"    & {cmd}   [{role}, id {name}]")
        if "ready" in st:
            try:
                proc.wait_for(subst(st["ready"], self.vars, rx=True), float(st.get("within", 10)))
            except H.HarnessError as e:
                raise StepFailed(str(e))

    def step_wait(self, st):
        name = st["wait"]
        proc = self.spawned.pop(name)
        try:
            rc = proc.p.wait(float(st.get("within", 15)))
        except subprocess.TimeoutExpired:
            proc.stop()
            raise StepFailed(f"background '{name}' still running after {st.get('within', 15)}s:\n"
                             f"{indent(proc.output())}")
        text = proc.output()
        self.out(f"    background '{name}' exited {rc}")
        if self.verbose or st.get("show", False):
            self.out(indent(text, "      | "))
        exp = st.get("expect_rc", 0)
        if exp != "any" and (rc == 0 if exp == "nonzero" else rc != int(exp)):
            raise StepFailed(f"background '{name}' exited {rc}, expected {exp}:\n{indent(text)}")
        self.expect_regexes(text, st.get("expect_output"), st.get("reject_output"),
                            f"background '{name}'")

    def step_nft(self, st):
        """Assert on the carrier's miniupnpd table (nft = "carrier") or on a namespace's whole
        ruleset (nft = "router" ...); retried for `within` seconds (default 3)."""
        where = st["nft"]
        if where == "carrier" and not self.carrier:
            raise StepFailed("nft step but the scenario has no carrier")
        deadline = time.monotonic() + float(st.get("within", 3))
        while True:
            if where == "carrier":
                text = self.carrier.ruleset()
            else:
                text = self.topo.run(self.role_of({"ns": where}, where),
                                     [H.NFT, "list", "ruleset"]).stdout
            try:
                self.expect_regexes(text, st.get("expect"), st.get("reject"), f"{where} nft ruleset")
                if where == "carrier":
                    self.out(f"    nft ok: {self.carrier.nat_rules() or '(no DNAT rules)'}")
                else:
                    dnat = [l.strip() for l in text.splitlines() if "dnat" in l]
                    self.out(f"    nft ok ({where}): {' | '.join(dnat) or '(no DNAT rules)'}")
                return
            except StepFailed:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def step_capture(self, st):
        what = st["capture"]
        name = st.get("id", "wan")
        if what == "start":
            role = ROLE_ALIASES[st.get("ns", "router")]
            iface = subst(st.get("iface", "{if_router_wan}"), self.vars)
            cap = H.Capture(self.topo, role, iface, name=f"capture-{name}",
                            bpf=st.get("filter", "udp port 5351"))
            self.captures[name] = cap.start()
            self.out(f"    capture '{name}' on {role}/{iface}")
            return
        if what != "stop":
            raise StepFailed(f"capture must be start or stop, not {what!r}")
        cap = self.captures.pop(name)
        # Positive control: a capture that saw nothing proves nothing unless it could have seen
        # something.  Before stopping, the router sends one PCP ANNOUNCE request from a fixed
        # source port; it must show up, and it is left out of every count below.
        canary = st.get("canary", cap.role == "router" and cap.iface == self.topo.iface["router_wan"])
        if canary:
            self.send_canary()
        msgs = cap.stop()
        if canary:
            seen = [m for m in msgs if CANARY_PORT in (m["sport"], m["dport"])]
            if not any(not m.get("response", True) for m in seen):
                raise StepFailed(f"capture '{name}' did not see the canary PCP request: the "
                                 f"capture itself is broken, its counts mean nothing")
            msgs = [m for m in msgs if CANARY_PORT not in (m["sport"], m["dport"])]
        reqs = [m for m in msgs if "error" not in m and not m["response"]]
        resps = [m for m in msgs if "error" not in m and m["response"]]
        if "where" in st:
            # only the requests this step is about (iwfd may probe or renew meanwhile), and the
            # responses carrying their nonces
            reqs = [m for m in reqs if self.mismatch(m, st["where"], reqs) is None]
            nonces = {m.get("nonce") for m in reqs}
            resps = [m for m in resps if m.get("nonce") in nonces]
        bad = [m for m in msgs if "error" in m]
        import pcpwire
        for m in msgs:
            self.out("      " + (f"INVALID {m['error']}" if "error" in m else
                                 f"{m['src']} > {m['dst']}: {pcpwire.describe(m)}"))
        self.out(f"    capture '{name}': {len(reqs)} PCP requests, {len(resps)} responses, "
                 f"{len(bad)} invalid" + (f" (where {st['where']})" if "where" in st else ""))
        if bad and not st.get("allow_invalid", False):
            raise StepFailed(f"capture '{name}': {len(bad)} packets on the PCP port are not "
                             f"valid PCP: {[m['raw'] for m in bad]}")
        if "min_packets" in st:
            # any UDP packet matching the capture's filter (e.g. the softwire's VXLAN), PCP or not
            n = sum(1 for _ in pcpwire.read_pcap(cap.path))
            self.out(f"    capture '{name}': {n} UDP packets matching /{cap.bpf}/")
            if n < int(st["min_packets"]):
                raise StepFailed(f"capture '{name}': {n} packets, expected at least {st['min_packets']}")
        if "requests" in st and len(reqs) != int(st["requests"]):
            raise StepFailed(f"capture '{name}': {len(reqs)} PCP requests, expected {st['requests']}")
        if "min_requests" in st and len(reqs) < int(st["min_requests"]):
            raise StepFailed(f"capture '{name}': {len(reqs)} PCP requests, expected at least "
                             f"{st['min_requests']}")
        if resps and "external_port" in resps[0]:
            # {eport_<id>}: the external port the server granted in the first response
            self.vars[f"eport_{name}"] = str(resps[0]["external_port"])
            self.saved_vars[f"eport_{name}"] = str(resps[0]["external_port"])
        if reqs and "nonce" in reqs[0]:
            # later steps can compare with {nonce_<id>} (e.g. the delete reuses the add's nonce)
            self.vars[f"nonce_{name}"] = reqs[0]["nonce"]
            self.saved_vars[f"nonce_{name}"] = reqs[0]["nonce"]
        exp = st.get("request")
        if exp:
            self.match_requests(reqs, exp, name)
        exp = st.get("response")
        if exp:
            self.match_requests(resps, exp, name, kind="response")
        if "after_log" in st:
            # every counted request left no earlier than iwfd's first log line matching the
            # regex (e.g. the end of PCP_SERVICE_WAIT); iwfd stamps its log lines in UTC
            t_log = self.log_line_time(st["after_log"], reqs[0]["ts"] if reqs else time.time())
            early = [m for m in reqs if m["ts"] < t_log - 0.005]   # the stamp is truncated to ms
            self.out(f"    {len(reqs)} requests, {len(early)} before the log line /{st['after_log']}/"
                     + (f" (first {reqs[0]['ts'] - t_log:+.3f} s from it)" if reqs else ""))
            if early:
                raise StepFailed(f"capture '{name}': {len(early)} requests left "
                                 f"{t_log - early[0]['ts']:.2f} s before iwfd logged "
                                 f"/{st['after_log']}/: {pcpwire.describe(early[0])}")
        exp = st.get("any_response")        # at least one response (where or not) matches
        if exp:
            every = [m for m in msgs if "error" not in m and m["response"]]
            if not any(self.mismatch(m, exp, every) is None for m in every):
                raise StepFailed(f"capture '{name}': no response matches {exp}")
        exp = st.get("later_requests")      # renewals: every request after the first
        if exp:
            self.match_requests(reqs[1:], exp, name, kind="later request")
        if st.get("renew_before_expiry"):
            # RFC 6887 §11.2.1: each further request leaves before the previous grant expires
            for prev, nxt in zip(reqs, reqs[1:]):
                grant = [r for r in resps if r.get("nonce") == prev.get("nonce")
                         and prev["ts"] <= r["ts"] < nxt["ts"]]
                if not grant:
                    raise StepFailed(f"capture '{name}': no response between requests at "
                                     f"{prev['ts']:.1f} and {nxt['ts']:.1f}")
                left = grant[-1]["ts"] + grant[-1]["lifetime"] - nxt["ts"]
                self.out(f"    renewal {nxt['ts'] - grant[-1]['ts']:.1f} s after a "
                         f"{grant[-1]['lifetime']} s grant")
                if left <= 0:
                    raise StepFailed(f"capture '{name}': renewal {-left:.1f} s after expiry")

    def log_line_time(self, rx, near):
        """Wall-clock time (epoch s) of iwfd's first log line matching rx (its HH:MM:SS.mmm
        stamp is UTC), taken on the day that puts it nearest to `near`."""
        import calendar
        rx = subst(rx, self.vars, rx=True)
        for line in self.iwfd.log_text().splitlines():
            m = re.match(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) ", line)
            if m and re.search(rx, line):
                day = calendar.timegm(time.gmtime(near)[:3] + (0, 0, 0))
                t = day + int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) + int(m[4]) / 1000
                return min((t - 86400, t, t + 86400), key=lambda x: abs(x - near))
        raise StepFailed(f"no iwfd log line matches /{rx}/")

    def send_canary(self):
        v = self.vars
        fam, client = "AF_INET", f"bytes(10) + b'\\xff\\xff' + socket.inet_aton('{v['router_wan']}')"
        if ":" in v["router_wan"]:    # DS-Lite: PCP over the IPv6 WAN
            fam, client = "AF_INET6", f"socket.inet_pton(socket.AF_INET6, '{v['router_wan']}')"
        code = ("import socket\n"
                f"s = socket.socket(socket.{fam}, socket.SOCK_DGRAM)\n"
                f"s.bind(('{v['router_wan']}', {CANARY_PORT}))\n"
                "s.settimeout(2)\n"
                f"req = bytes([2, 0, 0, 0]) + bytes(4) + {client}\n"
                f"s.sendto(req, ('{v['carrier']}', 5351))\n"
                "try:\n    s.recv(1100)\nexcept OSError:\n    pass\n")
        self.topo.run("router", [H.PYTHON, "-c", code], timeout=10)

    def mismatch(self, m, exp, msgs):
        """None when message m satisfies exp (field -> value/regex), else the reason."""
        for key, want in exp.items():
            if key == "options":          # names that must all be present
                missing = [o for o in want if o not in m["option_names"]]
                if missing:
                    return f"lacks options {missing}"
            elif key == "options_absent":   # names that must not be present
                extra = [o for o in want if o in m["option_names"]]
                if extra:
                    return f"has options {extra}"
            elif key == "third_party":
                tp = [o.get("address") for o in m["options"] if o["name"] == "THIRD_PARTY"]
                if tp != [subst(want, self.vars)]:
                    return f"THIRD_PARTY {tp}, expected {want}"
            elif key == "nonce_nonzero":
                if want and (m.get("nonce") is None or int(m["nonce"], 16) == 0):
                    return "nonce missing or zero"
            elif key == "same_nonce":       # all messages of the capture share one nonce
                if want and len({x.get("nonce") for x in msgs}) != 1:
                    return f"nonces differ: {[x.get('nonce') for x in msgs]}"
            else:
                have = m.get(key)
                w = subst(want, self.vars, rx=True) if isinstance(want, str) else want
                ok = (re.fullmatch(w, str(have)) is not None) if isinstance(w, str) else have == w
                if not ok:
                    return f"field {key}={have!r}, expected {w!r}"
        return None

    def match_requests(self, msgs, exp, name, kind="request"):
        """Every captured message must satisfy exp."""
        if not msgs:
            raise StepFailed(f"capture '{name}': no PCP {kind} to check")
        for m in msgs:
            why = self.mismatch(m, exp, msgs)
            if why:
                import pcpwire
                raise StepFailed(f"capture '{name}': {kind} {why}: {pcpwire.describe(m)}")

    def step_pcpsim(self, st):
        """carrier = "pcpsim": one control command to the simulator (docs/pcpsim.md), e.g.
        pcpsim = { cmd = "fault", action = "result", value = "NOT_AUTHORIZED", count = 1 };
        it must answer ok.  expect / reject: regexes on the reply (JSON), or for
        { cmd = "mappings" } on its table, one line per mapping:
        'TCP 192.168.77.11:40000 -> 11.22.33.44:40000 nonce <hex> left <s>s';
        retried up to `within` seconds (default 3) like an nft step."""
        if not isinstance(self.carrier, H.Pcpsim):
            raise StepFailed("pcpsim step but the scenario's carrier is not pcpsim")
        import json
        cmd = st["pcpsim"]
        if isinstance(cmd, str):
            cmd = json.loads(subst(cmd, self.vars))
        deadline = time.monotonic() + float(st.get("within", 3))
        while True:
            if cmd.get("cmd") == "mappings":
                text = self.carrier.table()
            else:
                reply = self.carrier.ctl(cmd)
                if not reply.get("ok"):
                    raise StepFailed(f"pcpsim {cmd}: {reply}")
                text = json.dumps(reply)
            try:
                self.expect_regexes(text, st.get("expect"), st.get("reject"), f"pcpsim {cmd.get('cmd')}")
                break
            except StepFailed:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.out(f"    pcpsim {cmd.get('cmd')}: " + ("\n      ".join(text.splitlines())
                                                      or "(no mappings)"))

    def step_carrier(self, st):
        what = st["carrier"]
        kind = "pcpsim" if isinstance(self.carrier, H.Pcpsim) else "miniupnpd"
        if what == "stop":
            self.carrier.stop()
            self.out(f"    carrier {kind} stopped" + ("" if kind == "pcpsim" else ", its chains flushed"))
        elif what == "start":
            self.carrier.start()
            self.out(f"    carrier {kind} started")
        else:
            raise StepFailed(f"carrier must be start or stop, not {what!r}")

    def step_iwfd(self, st):
        what = st["iwfd"]
        if what == "kill":
            # SIGKILL: a crash or power cut; nothing of iwfd's runs after it
            rc = self.iwfd.proc.stop(signal.SIGKILL)
            self.iwfd_stopped = True
            self.out(f"    iwfd killed (SIGKILL), exit code {rc}")
        elif what == "stop":
            rc = self.iwfd.stop()
            self.iwfd_stopped = True
            self.out(f"    iwfd stopped, exit code {rc}")
            if "expect_rc" in st and rc != int(st["expect_rc"]):
                raise StepFailed(f"iwfd exited {rc}, expected {st['expect_rc']}")
        elif what == "start":
            self.iwfd.start(timeout=self.ready_within)
            self.iwfd_stopped = False
            self.refresh_vars()
            self.out(f"    iwfd ready at {self.iwfd.url}")
        elif what == "alive":
            if not self.iwfd.proc.running():
                raise StepFailed(f"iwfd is not running (exit {self.iwfd.proc.p.returncode})")
            self.out("    iwfd still running")
        else:
            raise StepFailed(f"iwfd must be start, stop, kill or alive, not {what!r}")

    def check_log(self, must, must_not, within):
        deadline = time.monotonic() + float(within)
        while True:
            text = self.iwfd.log_text() if self.iwfd else ""
            try:
                self.expect_regexes(text, must, must_not, "iwfd log")
                return
            except StepFailed:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def step_log(self, st):
        self.check_log(st.get("expect"), st.get("reject"), st.get("within", 3))
        self.out("    iwfd log ok")

    def step_sleep(self, st):
        time.sleep(float(st["sleep"]))

    # ---------------------------------------------------------------- main flow
    def run(self):
        sc = self.sc
        title = sc.get("title", os.path.basename(self.path))
        self.out(f"scenario: {title}")
        self.topo = H.Topology(keep=self.keep, internet=sc.get("internet", False),
                               router_nat=sc.get("router_nat", False),
                               kind=sc.get("topology", "routed"))
        with self.topo:
            if sc.get("carrier", "miniupnpd") == "miniupnpd":
                cfg = sc.get("miniupnpd", {})
                self.carrier = H.Miniupnpd(self.topo, min_lifetime=cfg.get("min_lifetime", 120),
                                           max_lifetime=cfg.get("max_lifetime", 86400)).start()
            elif sc["carrier"] == "pcpsim":
                # the project's simulator (tests/pcpsim) with the scenario's [pcpsim] settings
                self.carrier = H.Pcpsim(self.topo, sc.get("pcpsim", {})).start()
            elif sc["carrier"] != "none":
                raise H.HarnessError(f"carrier must be miniupnpd, pcpsim or none, not {sc['carrier']!r}")
            if sc.get("iwfd", True):
                self.iwfd = H.Iwfd(self.topo, self.iwfd_exe, sc.get("iwfd_args", []),
                                   http_port=sc.get("http_port", 5000),
                                   config=sc.get("iwfd_config"))
            if self.iwfd:
                self.customize_iwfd(sc)
            self.refresh_vars()
            steps = sc.get("step", [])
            # iwfd starts before the first step unless the scenario starts it itself.
            if self.iwfd and not any(s.get("iwfd") == "start" for s in steps):
                self.iwfd.start(timeout=self.ready_within)
                self.refresh_vars()
                self.out(f"iwfd ready at {self.iwfd.url}")
            failed = None
            n = 0
            while n < len(steps):
                st = steps[n]
                n += 1
                actions = [a for a in STEP_ACTIONS if a in st]
                if len(actions) != 1:
                    raise H.HarnessError(f"step {n} needs exactly one of {STEP_ACTIONS}: {st}")
                if "lane" in st:
                    # consecutive steps with a `lane` run as concurrent lanes (one thread per
                    # lane, each lane's steps in order)
                    first = n
                    while n < len(steps) and "lane" in steps[n]:
                        n += 1
                    failed = self.run_lanes(steps, first, n)
                    if failed:
                        break
                    continue
                self.out(f"[{n}/{len(steps)}] {st.get('name', actions[0])}")
                try:
                    getattr(self, f"step_{actions[0]}")(st)
                except StepFailed as e:
                    failed = f"step {n} ({st.get('name', actions[0])}): {e}"
                    break
            if failed:
                self.out(f"FAIL {failed}")
                self.dump_logs()
                return 1
            if self.iwfd and self.iwfd.proc and sc.get("check_iwfd_alive", True) \
                    and not self.iwfd_stopped:
                if not self.iwfd.proc.running():
                    self.out(f"FAIL iwfd died (exit {self.iwfd.proc.p.returncode})")
                    self.dump_logs()
                    return 1
            if self.verbose:
                self.dump_logs()
            self.out(f"PASS {title}")
            return 0

    def customize_iwfd(self, sc):
        """Scenario keys for the fault scenarios: pcp_server (string or list) REPLACES the
        default --pcp-server (e.g. a lossy relay); iwfd_wrapper is put in front of iwfd's
        command line (e.g. valgrind); iwfd_ready_within bounds the wait for "ready";
        state_file moves iwfd's --state (placeholders allowed; {state} follows it)."""
        tv = self.topo.vars()
        self.ready_within = float(sc.get("iwfd_ready_within", 15))
        if "state_file" in sc:
            # "": no --state flag at all (iwfd's default place, /var/lib/iwfd/state)
            self.iwfd.state = subst(sc["state_file"], tv) or None
        servers = [subst(x, tv) for x in as_list(sc.get("pcp_server"))]
        wrapper = shlex.split(subst(sc.get("iwfd_wrapper", ""), tv))
        if not servers and not wrapper:
            return
        base_argv = self.iwfd.argv

        def argv():
            a = base_argv()
            if servers:
                i = 0
                while i < len(a):
                    if a[i] == "--pcp-server":
                        del a[i:i + 2]
                    else:
                        i += 1
                for x in reversed(servers):
                    a[1:1] = ["--pcp-server", x]
            return wrapper + a
        self.iwfd.argv = argv

    LANE_ACTIONS = ("run", "sleep", "log", "nft")

    def run_lanes(self, steps, first, last):
        """Steps first..last (1-based, inclusive) carry `lane = "NAME"`: every lane runs in its
        own thread, its steps in order; the lanes must have overlapped in time (else they were
        not concurrent and the block proves nothing about concurrency)."""
        lanes = {}
        for k in range(first, last + 1):
            lanes.setdefault(str(steps[k - 1]["lane"]), []).append(k)
        self.out(f"[{first}-{last}/{len(steps)}] concurrent lanes: "
                 + ", ".join(f"{l} ({len(ks)} steps)" for l, ks in lanes.items()))
        result = {}

        def lane(name, ks):
            self._tls.buf = []
            t0 = time.monotonic()
            err = None
            for k in ks:
                st = steps[k - 1]
                act = [a for a in STEP_ACTIONS if a in st][0]
                if act not in self.LANE_ACTIONS:
                    err = f"step {k}: `{act}` cannot run in a lane"
                    break
                self.out(f"  [{k}] {name}: {st.get('name', act)}")
                try:
                    getattr(self, f"step_{act}")(st)
                except StepFailed as e:
                    err = f"step {k} (lane {name}, {st.get('name', act)}): {e}"
                    break
                except Exception as e:  # a crash in a thread must still fail the scenario
                    err = f"step {k} (lane {name}): {type(e).__name__}: {e}"
                    break
            result[name] = (t0, time.monotonic(), err, self._tls.buf)

        threads = [threading.Thread(target=lane, args=(l, ks)) for l, ks in lanes.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name in lanes:
            for line in result[name][3]:
                print(line, flush=True)
        errs = [r[2] for r in result.values() if r[2]]
        if errs:
            return errs[0]
        if len(lanes) > 1:
            latest_start = max(r[0] for r in result.values())
            earliest_end = min(r[1] for r in result.values())
            self.out(f"    lanes overlapped for {earliest_end - latest_start:.2f} s")
            if latest_start >= earliest_end:
                return f"lanes {list(lanes)} did not overlap in time"
        return None

    def dump_logs(self):
        pcpsim = isinstance(self.carrier, H.Pcpsim)
        for proc_name, obj in (("iwfd", self.iwfd), ("pcpsim" if pcpsim else "miniupnpd", self.carrier)):
            if obj and obj.proc:
                self.out(f"---- {proc_name} output (last 60 lines) ----")
                self.out("\n".join(obj.proc.output().splitlines()[-60:]))
        if pcpsim:
            self.out("---- pcpsim table ----")
            try:
                self.out(self.carrier.table() or "(no mappings)")
            except H.HarnessError as e:
                self.out(str(e))
        elif self.carrier:
            self.out("---- carrier nft ruleset ----")
            self.out(self.carrier.ruleset())


def indent(text, prefix="      | "):
    return "\n".join(prefix + line for line in text.rstrip().splitlines()) or prefix + "(no output)"


def skip_reason(sc, exe):
    """skip_sanitized = true: skip when iwfd carries a sanitizer runtime (valgrind cannot run
    such a binary).  An iwfd_wrapper starting with valgrind: skip when valgrind is missing or
    cannot run this binary cleanly (e.g. clang 14's DWARF 5 with Debian 12's valgrind): the
    usage-error exit code 2 must come through with nothing else on stderr but the usage."""
    if not sc.get("iwfd", True):
        return None
    if sc.get("skip_sanitized", False):
        with open(exe, "rb") as f:
            blob = f.read()
        for marker, name in ((b"__asan_init", "AddressSanitizer"), (b"__ubsan_handle", "UBSan"),
                             (b"__msan_init", "MemorySanitizer"), (b"__tsan_init", "TSan")):
            if marker in blob:
                return f"iwfd is built with {name}"
    wrapper = shlex.split(sc.get("iwfd_wrapper", ""))
    if wrapper and os.path.basename(wrapper[0]) == "valgrind":
        import shutil
        if shutil.which("valgrind") is None:
            return "valgrind is not installed"
        p = subprocess.run(["valgrind", "-q", exe, "--bogus"], capture_output=True, timeout=120)
        if p.returncode != 2 or b"###" in p.stderr or b"==" in p.stderr:
            return f"valgrind cannot run {exe} cleanly (exit {p.returncode}): {p.stderr[:160]!r}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("--iwfd", help="path to the iwfd binary")
    ap.add_argument("--keep", action="store_true", help="leave namespaces and files for debugging")
    ap.add_argument("--verbose", "-v", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces)")
        return 77
    try:
        with open(a.scenario, "rb") as f:
            sc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"ERROR reading {a.scenario}: {e}")
        return 2
    if sc.get("iwfd", True) and not (a.iwfd and os.access(a.iwfd, os.X_OK)):
        print(f"SKIP: scenario needs iwfd and {a.iwfd!r} is not an executable")
        return 77
    why = skip_reason(sc, a.iwfd)
    if why:
        print(f"SKIP: {why}")
        return 77
    try:
        return Runner(sc, a.scenario, a.iwfd, a.keep, a.verbose).run()
    except H.HarnessError as e:
        print(f"ERROR (harness): {e}")
        return 2
    except KeyboardInterrupt:
        print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())

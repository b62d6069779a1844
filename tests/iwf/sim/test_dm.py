#!/usr/bin/python3
"""TR-181 Device.PCP. served by iwfd on its control socket (iwf/dm.c, docs/tr069.md "Backend
protocol"): the dm.* operations spoken directly, then the TR-069 agent iwf-cwmp (its socket
backend) bound to the same iwfd and driven by the test ACS (tests/cwmp/acs.py).
iwfd runs against the pcpsim PCP server on loopback (iwfsim.Env).

    test_dm.py IWFD [test_name ...]     ($IWF_CWMP: the agent, default build/tools/cwmp/iwf-cwmp)
"""
import json
import os
import socket
import sys
import tempfile
import time

from iwfsim import EXTERNAL_IP, ROOT, TCP, Env, Skip, main, wait_for

sys.path.insert(0, os.path.join(ROOT, "tests", "cwmp"))
from acs import ACS, rpc, rpc_get_values, rpc_set_attributes, rpc_set_values  # noqa: E402

PCP = "Device.PCP."
SRV = "Device.PCP.Client.1.Server.1."
MAP = SRV + "InboundMapping."


class Dm:
    """A connection to iwfd's control socket speaking dm.*."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(path)
        self.f = self.s.makefile("rwb")
        self.n = 0

    def __call__(self, op, **kw):
        self.n += 1
        req = dict(kw, op=op, id=self.n)
        self.f.write((json.dumps(req) + "\n").encode())
        self.f.flush()
        rep = json.loads(self.f.readline())
        assert rep.get("id") == self.n, "id echoed: %r" % rep
        return rep

    def values(self, *paths):
        rep = self("dm.get", paths=list(paths))
        assert rep["ok"], rep
        return {p["name"]: p["value"] for p in rep["params"]}

    def close(self):
        self.s.close()


def dm_env(exe, sim_settings=None):
    env = Env(exe, start=False, sim_settings=sim_settings)
    sock = os.path.join(env.workdir, "control")
    env.iwfd.extra_args += ["--control-socket", sock]
    env.start()
    env.wait_connected()
    wait_for(lambda: os.path.exists(sock), 5, what="control socket")
    return env, sock


def inst_of(values, **want):
    """Instance numbers of InboundMapping rows whose fields have the values wanted."""
    out = []
    rows = {}
    for k, v in values.items():
        if k.startswith(MAP):
            rest = k[len(MAP):].split(".")
            if len(rest) == 2:
                rows.setdefault(int(rest[0]), {})[rest[1]] = v
    for i, r in sorted(rows.items()):
        if all(r.get(f) == str(v) for f, v in want.items()):
            out.append(i)
    return out


def test_dm_direct(exe):
    env, sock = dm_env(exe)
    with env:
        dm = Dm(sock)
        # the tree
        rep = dm("dm.names", path=PCP, next_level=False)
        assert rep["ok"], rep
        names = {n["name"]: n["writable"] for n in rep["names"]}
        for n in ("SupportedVersions", "PreferredVersion", "OptionList", "ClientNumberOfEntries",
                  "Client.1.Enable", "Client.1.Status", "Client.1.WANInterface", "Client.1.MAPEnable",
                  "Client.1.PEEREnable", "Client.1.ANNOUNCEEnable", "Client.1.THIRDPARTYEnable",
                  "Client.1.THIRDPARTYStatus", "Client.1.FILTEREnable", "Client.1.ServerNumberOfEntries",
                  "Client.1.UPnPIWF.Enable", "Client.1.UPnPIWF.Status", "Client.1.Server.1.ServerAddressInUse",
                  "Client.1.Server.1.ExternalIPAddress", "Client.1.Server.1.Origin",
                  "Client.1.Server.1.InboundMappingNumberOfEntries"):
            assert PCP + n in names, "%s in dm.names: %s" % (n, sorted(names))
        assert names[MAP] is True and names[PCP + "Client."] is False, "table writability"
        rep = dm("dm.names", path=SRV, next_level=True)
        assert rep["ok"] and all(n["name"][len(SRV):].count(".") <= 1 for n in rep["names"]), rep
        assert dm("dm.names", path=SRV + "Status", next_level=True)["fault"] == 9003
        # the server in use and the external address
        v = dm.values(SRV)
        assert v[SRV + "ServerAddressInUse"] == "127.0.0.1", v
        assert v[SRV + "ExternalIPAddress"] == EXTERNAL_IP, v
        assert v[SRV + "Status"] == "Enabled" and v[SRV + "Origin"] == "Static", v
        # a UPnP mapping appears as UPnP_IWF, read-only, not deletable
        assert env.add(45000, 8000, client="127.0.0.1", desc="upnp one") == 0
        v = dm.values(MAP)
        upnp = inst_of(v, Origin="UPnP_IWF", InternalPort=8000)
        assert len(upnp) == 1, v
        u = upnp[0]
        assert v[MAP + "%d.AssignedExternalPort" % u] == "45000", v
        assert v[MAP + "%d.AssignedExternalIPAddress" % u] == EXTERNAL_IP, v
        assert v[MAP + "%d.ProtocolNumber" % u] == "6" and v[MAP + "%d.Description" % u] == "upnp one", v
        assert dm.values(SRV + "InboundMappingNumberOfEntries")[SRV + "InboundMappingNumberOfEntries"] == "1"
        assert dm("dm.delete", path=MAP + "%d." % u)["fault"] == 9005
        # faults, and a partly bad set changes nothing
        rep = dm("dm.add", path=MAP)
        assert rep["ok"], rep
        i = rep["instance"]
        assert i != u, "a new instance number"
        assert dm("dm.add", path=SRV + "OutboundMapping.")["fault"] == 9005
        assert dm("dm.get", paths=[PCP + "Bogus"])["fault"] == 9005
        p = MAP + "%d." % i
        rep = dm("dm.set", params=[
            {"name": p + "Description", "value": "should not stay"},
            {"name": PCP + "NoSuch", "value": "1"},
            {"name": p + "InternalPort", "type": "string", "value": "22"},
            {"name": MAP + "%d.Enable" % u, "type": "boolean", "value": "0"},
            {"name": p + "ProtocolNumber", "type": "unsignedInt", "value": "99"}])
        assert not rep["ok"] and rep["fault"] == 9003, rep
        pf = {f["name"]: f["fault"] for f in rep["param_faults"]}
        assert pf == {PCP + "NoSuch": 9005, p + "InternalPort": 9006, MAP + "%d.Enable" % u: 9008,
                      p + "ProtocolNumber": 9007}, pf
        v = dm.values(p)
        assert v[p + "Description"] == "" and v[p + "Enable"] == "0" and v[p + "Status"] == "Disabled", v
        assert v[p + "Origin"] == "Static", v
        # Enable without the LAN host: 9007 on Enable, nothing changed
        rep = dm("dm.set", params=[{"name": p + "InternalPort", "value": "2222"},
                                   {"name": p + "Enable", "value": "1"}])
        assert rep.get("param_faults") == [{"name": p + "Enable", "fault": 9007}], rep
        assert dm.values(p + "InternalPort")[p + "InternalPort"] == "0"
        # a Static mapping through the admin path: on the carrier, in UPnP's table
        s0 = env.sim.last_seq()
        rep = dm("dm.set", params=[
            {"name": p + "InternalPort", "type": "unsignedInt", "value": "2222"},
            {"name": p + "ProtocolNumber", "type": "unsignedInt", "value": "6"},
            {"name": p + "ThirdPartyAddress", "type": "string", "value": "127.0.0.5"},
            {"name": p + "SuggestedExternalPort", "type": "unsignedInt", "value": "46000"},
            {"name": p + "Description", "value": "from the ACS"}])
        assert rep["ok"], rep
        assert dm.values(p + "Enable")[p + "Enable"] == "0", "still disabled"
        assert not [m for m in env.sim.mappings() if m["internal_port"] == 2222], "nothing on the carrier yet"
        rep = dm("dm.set", params=[{"name": p + "Enable", "type": "boolean", "value": "1"}])
        assert rep["ok"], rep
        maps = [m for m in env.sim.mappings() if m["internal_port"] == 2222 and m["protocol"] == TCP]
        assert len(maps) == 1 and maps[0]["internal_addr"] == "127.0.0.5", env.sim.mappings()
        assert [e for e in env.sim.user_maps(s0) if e["fields"].get("internal_port") == 2222], "a MAP was sent"
        assert env.table()[(TCP, 46000)][:3] == ("127.0.0.5", 2222, "from the ACS"), env.table()
        v = dm.values(p)
        assert v[p + "Origin"] == "Static" and v[p + "Enable"] == "1", "same instance %d: %s" % (i, v)
        assert v[p + "AssignedExternalPort"] == "46000" and v[p + "Status"] == "Enabled", v
        assert dm("dm.set", params=[{"name": p + "Description", "value": "x"}])["param_faults"] == \
            [{"name": p + "Description", "fault": 9008}], "a mapping on the carrier is read-only"
        # instance numbers stay: a second connection sees the same ones
        dm2 = Dm(sock)
        v2 = dm2.values(MAP)
        assert inst_of(v2, Origin="UPnP_IWF") == [u] and inst_of(v2, Origin="Static") == [i], v2
        dm2.close()
        # DeleteObject: deleted on the carrier
        rep = dm("dm.delete", path=p)
        assert rep["ok"], rep
        assert not [m for m in env.sim.mappings() if m["internal_port"] == 2222 and m["lifetime_remaining"] > 0], \
            env.sim.mappings()
        assert (TCP, 46000) not in env.table()
        assert dm("dm.get", paths=[p])["fault"] == 9005
        assert dm("dm.reboot")["fault"] == 9000
        # a new row gets a new number
        rep = dm("dm.add", path=MAP)
        assert rep["instance"] > i, rep
        assert dm("dm.delete", path=MAP + "%d." % rep["instance"])["ok"]
        dm.close()


def ssdp_search():
    """One M-SEARCH (ssdp:all, MX 1) from a fresh socket: the first answer, or None."""
    q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    q.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    q.settimeout(2)
    q.sendto(b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\n'
             b'MX: 1\r\nST: ssdp:all\r\n\r\n', ("239.255.255.250", 1900))
    try:
        return q.recvfrom(2048)[0]
    except socket.timeout:
        return None
    finally:
        q.close()


def test_dm_upnpiwf_enable(exe):
    """UPnPIWF.Enable=0: ssdp:byebye, searches unanswered, SOAP refused (HTTP 503); the
    mappings made before stay (on the carrier and in Device.PCP.); =1: the IGD is back."""
    import struct
    from iwfsim import upnpc
    env, sock = dm_env(exe)
    with env:
        lis = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lis.bind(("0.0.0.0", 1900))
        lis.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                       struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton("127.0.0.1")))
        lis.settimeout(0.5)
        assert ssdp_search() is not None, "the IGD answers M-SEARCH"
        assert env.add(45000, 8000) == 0
        dm = Dm(sock)
        en = "Device.PCP.Client.1.UPnPIWF.Enable"
        assert dm("dm.set", params=[{"name": en, "type": "string", "value": "0"}])["param_faults"] == \
            [{"name": en, "fault": 9006}]
        assert dm.values(en)[en] == "1"
        while True:  # what came before
            try:
                lis.recv(2048)
            except socket.timeout:
                break
        assert dm("dm.set", params=[{"name": en, "type": "boolean", "value": "0"}])["ok"]
        got = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:
            try:
                got.append(lis.recv(2048))
            except socket.timeout:
                break
        assert any(b"NTS: ssdp:byebye" in g for g in got), got
        v = dm.values("Device.PCP.Client.1.UPnPIWF.")
        assert v[en] == "0" and v["Device.PCP.Client.1.UPnPIWF.Status"] == "Disabled", v
        assert ssdp_search() is None, "no answer to M-SEARCH while stopped"
        rc, out = upnpc(env.url, "-a", "127.0.0.1", 8002, 45002, "TCP")
        assert "HTTP error" in out, out
        assert len(inst_of(dm.values(MAP), Origin="UPnP_IWF", AssignedExternalPort=45000)) == 1, "kept"
        assert [m for m in env.sim.mappings() if m["internal_port"] == 8000], "kept on the carrier"
        assert dm("dm.set", params=[{"name": en, "value": "1"}])["ok"]
        assert ssdp_search() is not None, "answers again"
        assert env.add(45002, 8002) == 0
        dm.close()


def agent_path():
    p = os.environ.get("IWF_CWMP") or os.path.join(ROOT, "build", "tools", "cwmp", "iwf-cwmp")
    if not os.access(p, os.X_OK):
        raise Skip("iwf-cwmp not built: %s" % p)
    return p


def test_dm_cwmp_agent(exe):
    """The ACS drives iwf-cwmp, whose socket backend is iwfd's control socket."""
    import subprocess
    agent = agent_path()
    env, sock = dm_env(exe)
    with env:
        assert env.add(45001, 8001, client="127.0.0.1") == 0
        acs = ACS().start()
        tmp = tempfile.mkdtemp(prefix="dm-cwmp-", dir=env.workdir)
        acs.script([
            rpc("GetParameterNames", ParameterPath=PCP, NextLevel="0"),
            rpc_get_values(SRV + "ServerAddressInUse", SRV + "ExternalIPAddress", MAP),
            rpc("AddObject", ObjectName=MAP, ParameterKey="k1"),
        ])
        log = open(os.path.join(tmp, "agent.log"), "wb")
        p = subprocess.Popen([agent, "--acs-url", acs.url, "--control-socket", sock, "--foreground",
                              "--state-file", os.path.join(tmp, "state.json"), "--retry-min-wait", "1"],
                             stdout=log, stderr=log)
        try:
            assert acs.wait_sessions(1, 15), "session 1: %s" % open(log.name, errors="replace").read()
            s = acs.sessions[0]
            assert s.device_id.get("Manufacturer") == "iwfd", s.device_id
            r = s.responses
            assert r[0].method == "GetParameterNamesResponse" and SRV + "ExternalIPAddress" in r[0].names, r
            assert r[1].values[SRV + "ServerAddressInUse"][0] == "127.0.0.1", r[1].values
            assert r[1].values[SRV + "ExternalIPAddress"][0] == EXTERNAL_IP, r[1].values
            u = inst_of({k: v[0] for k, v in r[1].values.items()}, Origin="UPnP_IWF", AssignedExternalPort=45001)
            assert len(u) == 1, r[1].values
            inst = int(r[2].text("InstanceNumber"))
            q = MAP + "%d." % inst
            acs.script([
                rpc_set_values([(q + "InternalPort", "3333", "xsd:unsignedInt"),
                                (q + "ProtocolNumber", "17", "xsd:unsignedInt"),
                                (MAP + "%d.Description" % u[0], "x", "xsd:string")]),
                rpc_set_values([(q + "InternalPort", "3333", "xsd:unsignedInt"),
                                (q + "ProtocolNumber", "17", "xsd:unsignedInt"),
                                (q + "ThirdPartyAddress", "127.0.0.6", "xsd:string"),
                                (q + "SuggestedExternalPort", "47000", "xsd:unsignedInt"),
                                (q + "Enable", "1", "xsd:boolean")], key="k2"),
                rpc_get_values(q),
            ])
            # a connection request is not configured: the next session comes from a restart
            p.terminate()
            p.wait(10)
            p = subprocess.Popen(p.args, stdout=log, stderr=log)
            assert acs.wait_sessions(2, 15), "session 2"
            r = acs.sessions[1].responses
            assert r[0].param_faults == {MAP + "%d.Description" % u[0]: 9008}, r[0].param_faults
            assert r[1].method == "SetParameterValuesResponse", r[1]
            assert r[2].values[q + "Origin"][0] == "Static" and r[2].values[q + "Enable"][0] == "1", r[2].values
            maps = [m for m in env.sim.mappings() if m["internal_port"] == 3333 and m["protocol"] == 17]
            assert len(maps) == 1 and maps[0]["internal_addr"] == "127.0.0.6", env.sim.mappings()
            acs.script([rpc("DeleteObject", ObjectName=q, ParameterKey="k3")])
            p.terminate()
            p.wait(10)
            p = subprocess.Popen(p.args, stdout=log, stderr=log)
            assert acs.wait_sessions(3, 15), "session 3"
            assert acs.sessions[2].responses[0].method == "DeleteObjectResponse", acs.sessions[2].responses
            assert (17, 47000) not in env.table(), env.table()
        finally:
            p.terminate()
            p.wait(10)
            acs.stop()


NEW_EXTERNAL_IP = "198.51.100.77"
EPOCH = {"epoch": 100000}   # the carrier has been up a while: its restart's Epoch 0 is visible


def test_dm_value_change_external_ip(exe):
    """An active notification (2) on ExternalIPAddress, set by the ACS through iwf-cwmp bound to
    iwfd: the carrier restarts and comes back with another external address (ANNOUNCE); iwfd
    re-creates the mapping there, learns the address, and the agent sends an Inform with
    "4 VALUE CHANGE" carrying the new value."""
    import subprocess
    agent = agent_path()
    eip = SRV + "ExternalIPAddress"
    env, sock = dm_env(exe, sim_settings=EPOCH)
    with env:
        assert env.add(45003, 8003, client="127.0.0.1") == 0
        acs = ACS().start()
        tmp = tempfile.mkdtemp(prefix="dm-vc-", dir=env.workdir)
        acs.script([rpc_set_attributes([(eip, 2)]), rpc_get_values(eip)])
        log = open(os.path.join(tmp, "agent.log"), "wb")
        p = subprocess.Popen([agent, "--acs-url", acs.url, "--control-socket", sock, "--foreground",
                              "--state-file", os.path.join(tmp, "state.json"), "--retry-min-wait", "1",
                              "--notify-poll-ms", "200"], stdout=log, stderr=log)
        try:
            assert acs.wait_sessions(1, 15), "session 1: %s" % open(log.name, errors="replace").read()
            r = acs.sessions[0].responses
            assert r[0].method == "SetParameterAttributesResponse", r
            assert r[1].values[eip][0] == EXTERNAL_IP, r[1].values
            time.sleep(1)  # a few polls of the agent: nothing changed, no session
            assert len(acs.sessions) == 1, acs.sessions[1].events
            env.sim.set(external_ip=NEW_EXTERNAL_IP)
            assert env.sim.restart(announce="unicast").get("announce"), "the carrier sent no ANNOUNCE"
            assert acs.wait_sessions(2, 20), "a VALUE CHANGE session: %s\n%s" % (
                open(log.name, errors="replace").read(), env.iwfd.log()[-2000:])
            s = acs.sessions[1]
            assert "4 VALUE CHANGE" in s.events, s.events
            assert s.inform_params.get(eip) == NEW_EXTERNAL_IP, s.inform_params
            # the mapping is back on the carrier at the new address, and so in Device.PCP.
            maps = [m for m in env.sim.mappings() if m["internal_port"] == 8003]
            assert len(maps) == 1 and maps[0]["external_addr"] == NEW_EXTERNAL_IP, env.sim.mappings()
            dm = Dm(sock)
            v = dm.values(SRV)
            assert v[eip] == NEW_EXTERNAL_IP, v
            row = inst_of(v, AssignedExternalPort=45003)
            assert len(row) == 1 and v[MAP + "%d.AssignedExternalIPAddress" % row[0]] == NEW_EXTERNAL_IP, v
            dm.close()
            assert (TCP, 45003) in env.table(), env.table()
        finally:
            p.terminate()
            p.wait(10)
            acs.stop()


def test_dm_external_ip_after_restart_without_mappings(exe):
    """No mapping to re-create: after the carrier's restart (ANNOUNCE) iwfd's address probe
    learns the new external address."""
    env, sock = dm_env(exe, sim_settings=EPOCH)
    with env:
        dm = Dm(sock)
        eip = SRV + "ExternalIPAddress"
        assert dm.values(eip)[eip] == EXTERNAL_IP
        env.sim.set(external_ip=NEW_EXTERNAL_IP)
        assert env.sim.restart(announce="unicast").get("announce"), "the carrier sent no ANNOUNCE"
        wait_for(lambda: dm.values(eip)[eip] == NEW_EXTERNAL_IP, 10, interval=0.2, what="the new address")
        dm.close()


def ssdp_listener():
    """A socket in the SSDP group on 127.0.0.1 (NOTIFY alive/byebye)."""
    import struct
    lis = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lis.bind(("0.0.0.0", 1900))
    lis.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                   struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton("127.0.0.1")))
    lis.settimeout(0.3)
    return lis


def drain(lis, seconds):
    got, t0 = [], time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            got.append(lis.recv(2048))
        except socket.timeout:
            pass
    return got


def test_dm_persistence_across_restart(exe):
    """UPnPIWF.Enable=0, the rows not enabled yet and the instance numbers survive a restart
    of iwfd on the same state file (STATE.dm beside it): the IGD comes back stopped (no
    ssdp:alive, M-SEARCH unanswered, SOAP refused); Enable=1 starts it. A store that cannot
    be read is logged and the defaults apply."""
    from iwfsim import upnpc
    env, sock = dm_env(exe)
    with env:
        lis = ssdp_listener()
        assert env.add(45010, 8010) == 0
        dm = Dm(sock)
        en, st = "Device.PCP.Client.1.UPnPIWF.Enable", "Device.PCP.Client.1.UPnPIWF.Status"
        u = inst_of(dm.values(MAP), Origin="UPnP_IWF")
        assert len(u) == 1, u
        i1 = dm("dm.add", path=MAP)["instance"]
        p1 = MAP + "%d." % i1
        assert dm("dm.set", params=[{"name": p1 + "InternalPort", "value": "5555"},
                                    {"name": p1 + "Description", "value": "kept across"},
                                    {"name": p1 + "Alias", "value": "row-a"}])["ok"]
        i2 = dm("dm.add", path=MAP)["instance"]
        p2 = MAP + "%d." % i2
        rep = dm("dm.set", params=[{"name": p2 + "InternalPort", "value": "2323"},
                                   {"name": p2 + "ProtocolNumber", "value": "6"},
                                   {"name": p2 + "ThirdPartyAddress", "value": "127.0.0.7"},
                                   {"name": p2 + "SuggestedExternalPort", "value": "46100"},
                                   {"name": p2 + "Enable", "value": "1"}])
        assert rep["ok"], rep
        assert dm("dm.set", params=[{"name": en, "type": "boolean", "value": "0"}])["ok"]
        dm.close()
        store = env.iwfd.state + ".dm"
        assert os.path.exists(store), "the store beside the state file"

        env.iwfd.stop()
        drain(lis, 0.3)
        env.iwfd.start()
        wait_for(lambda: os.path.exists(sock), 5, what="control socket")
        assert "the IGD stays stopped on the LAN" in env.iwfd.log(), env.iwfd.log()[-1500:]
        got = drain(lis, 1.0)
        assert not [g for g in got if b"NTS: ssdp:alive" in g], "no ssdp:alive from a stopped IGD: %r" % got
        assert ssdp_search() is None, "no answer to M-SEARCH after the restart"
        rc, out = upnpc(env.url, "-a", "127.0.0.1", 8011, 45011, "TCP")
        assert "HTTP error" in out, out
        dm = Dm(sock)
        v = dm.values(PCP)
        assert v[en] == "0" and v[st] == "Disabled", (v[en], v[st])
        assert v[p1 + "Enable"] == "0" and v[p1 + "Origin"] == "Static", v
        assert v[p1 + "InternalPort"] == "5555" and v[p1 + "Description"] == "kept across", v
        assert v[p1 + "Alias"] == "row-a", v
        assert v[p2 + "Origin"] == "Static" and v[p2 + "Enable"] == "1", "the static row keeps %d: %s" % (i2, v)
        assert v[p2 + "AssignedExternalPort"] == "46100", v
        u2 = inst_of(v, Origin="UPnP_IWF")
        assert len(u2) == 1 and u2[0] > max(u[0], i1, i2), "a number not used before: %r" % u2
        i3 = dm("dm.add", path=MAP)["instance"]
        assert i3 > u2[0], "AddObject after the restart: %d" % i3
        # Enable=1 starts it again, and that is stored too
        assert dm("dm.set", params=[{"name": en, "value": "1"}])["ok"]
        assert any(b"NTS: ssdp:alive" in g for g in drain(lis, 1.0)), "ssdp:alive"
        assert ssdp_search() is not None, "answers again"
        ino = os.stat(store).st_ino
        assert env.add(45011, 8011) == 0
        assert len(inst_of(dm.values(MAP), Origin="UPnP_IWF")) == 2
        assert os.stat(store).st_ino == ino, "a new UPnP mapping costs no write of the store"
        dm.close()
        env.iwfd.stop()
        env.iwfd.start()
        wait_for(lambda: os.path.exists(sock), 5, what="control socket")
        assert ssdp_search() is not None, "on after a restart with Enable=1 stored"
        dm = Dm(sock)
        assert dm.values(en)[en] == "1"
        assert inst_of(dm.values(MAP), Alias="row-a") == [i1], "the pending row again"
        dm.close()

        # a store that cannot be read: logged, the defaults (IGD on, no pending rows)
        env.iwfd.stop()
        with open(store, "w") as fh:
            fh.write('{"version": 1, "upnp_enabled": false, "pending": [')
        env.iwfd.start()
        wait_for(lambda: os.path.exists(sock), 5, what="control socket")
        assert "the TR-069 settings start from their defaults" in env.iwfd.log(), env.iwfd.log()[-1500:]
        assert ssdp_search() is not None, "a broken store does not stop the IGD"
        dm = Dm(sock)
        assert dm.values(en)[en] == "1"
        assert not inst_of(dm.values(MAP), Alias="row-a"), "no pending row from a broken store"
        dm.close()
        lis.close()


if __name__ == "__main__":
    main(globals())

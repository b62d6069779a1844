#!/usr/bin/python3
"""One TR-069 session for an e2e step: the test ACS (tests/cwmp/acs.py) on 127.0.0.1 and the
agent iwf-cwmp bound to iwfd's control socket (its socket backend); the ACS sends the RPCs
given, the agent answers them from iwfd's Device.PCP. (iwf/dm.c). Prints what came back,
one line each, for the scenario's regexes:

    R<n> <method> [fault=<code>]      V <name>=<value>      N <name> w=<0|1>
    PF <name> <code>                  INSTANCE <n>

usage: cwmp_acs.py AGENT CONTROL_SOCKET RPC...   with RPC one of
    names:PATH   get:NAME[,NAME...]   add:OBJECT   delete:OBJECT   set:NAME=TYPE=VALUE[,...]
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "cwmp"))
from acs import ACS, rpc, rpc_get_values, rpc_set_values  # noqa: E402


def build(arg):
    kind, _, rest = arg.partition(":")
    if kind == "names":
        return rpc("GetParameterNames", ParameterPath=rest, NextLevel="0")
    if kind == "get":
        return rpc_get_values(*rest.split(","))
    if kind == "add":
        return rpc("AddObject", ObjectName=rest, ParameterKey="e2e")
    if kind == "delete":
        return rpc("DeleteObject", ObjectName=rest, ParameterKey="e2e")
    if kind == "set":
        params = []
        for p in rest.split(","):
            name, typ, value = p.split("=", 2)
            params.append((name, value, "xsd:" + typ))
        return rpc_set_values(params)
    raise SystemExit("unknown RPC " + arg)


def main():
    agent, sock, rpcs = sys.argv[1], sys.argv[2], sys.argv[3:]
    tmp = tempfile.mkdtemp(prefix="cwmp-e2e-")
    acs = ACS().start()
    acs.script([build(a) for a in rpcs])
    log = open(os.path.join(tmp, "agent.log"), "wb")
    p = subprocess.Popen([agent, "--acs-url", acs.url, "--control-socket", sock, "--foreground",
                          "--state-file", os.path.join(tmp, "state.json")], stdout=log, stderr=log)
    try:
        if not acs.wait_sessions(1, 15):
            sys.stdout.write(open(log.name, errors="replace").read())
            raise SystemExit("no session")
        s = acs.sessions[0]
        print("DEVICE %s" % s.device_id.get("Manufacturer"))
        for i, r in enumerate(s.responses):
            print("R%d %s%s" % (i, r.method, " fault=%d" % r.fault if r.fault else ""))
            for n, (v, _t) in r.values.items():
                print("V %s=%s" % (n, v))
            for n, w in r.names.items():
                print("N %s w=%d" % (n, int(w)))
            for n, c in r.param_faults.items():
                print("PF %s %d" % (n, c))
            if r.text("InstanceNumber"):
                print("INSTANCE %s" % r.text("InstanceNumber"))
    finally:
        p.terminate()
        p.wait(10)
        acs.stop()


if __name__ == "__main__":
    main()

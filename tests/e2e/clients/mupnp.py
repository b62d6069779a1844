#!/usr/bin/python3
"""A UPnP IGD control point on Debian's python3-miniupnpc, for the e2e scenarios.

  mupnp.py [--url ROOTDESC] ACTION [ARGS]
    extip                        GetExternalIPAddress
    add EPORT PROTO IADDR IPORT [DESC] [LEASE]
    addany EPORT PROTO IADDR IPORT [DESC]   AddAnyPortMapping (IGD:2); prints the granted port
    get EPORT PROTO              GetSpecificPortMappingEntry
    generic INDEX                GetGenericPortMappingEntry
    del EPORT PROTO              DeletePortMapping
    delrange START END PROTO [MANAGE]   DeletePortMappingRange (IGD:2)
    count                        GetPortMappingNumberOfEntries (not a standard action)
    list                         every GetGenericPortMappingEntry until the first error
    status                       GetStatusInfo
    wait-connected SECONDS       poll GetStatusInfo until it says Connected
Without --url the IGD is found by SSDP discovery on the LAN.  Prints "ok <result>" and exits 0,
or "error <message>" and exits 1 (python-miniupnpc reports UPnP errors by description only).
"""
import sys
import time

import miniupnpc  # Debian: python3-miniupnpc (only for /usr/bin/python3)


def main(argv):
    url = None
    if len(argv) > 2 and argv[1] == "--url":
        url = argv[2]
        argv = argv[:1] + argv[3:]
    if len(argv) < 2:
        print(__doc__)
        return 2
    act, args = argv[1], argv[2:]
    u = miniupnpc.UPnP()
    u.discoverdelay = 2000
    if url:
        ctl = u.selectigd(url)
    else:
        n = u.discover()
        print(f"discovered {n} device(s)")
        ctl = u.selectigd()
    print(f"control URL {ctl}")
    try:
        if act == "extip":
            r = u.externalipaddress()
        elif act == "add":
            eport, proto, iaddr, iport = int(args[0]), args[1], args[2], int(args[3])
            desc = args[4] if len(args) > 4 else "e2e python-miniupnpc"
            if len(args) > 5:
                r = u.addportmapping(eport, proto, iaddr, iport, desc, "", int(args[5]))
            else:
                r = u.addportmapping(eport, proto, iaddr, iport, desc, "")
        elif act == "addany":
            eport, proto, iaddr, iport = int(args[0]), args[1], args[2], int(args[3])
            desc = args[4] if len(args) > 4 else "e2e python-miniupnpc"
            r = u.addanyportmapping(eport, proto, iaddr, iport, desc, "")
        elif act == "delrange":
            manage = args[3] if len(args) > 3 else "0"
            r = u.deleteportmappingrange(int(args[0]), int(args[1]), args[2], int(manage))
        elif act == "count":
            r = u.getportmappingnumberofentries()
        elif act == "get":
            r = u.getspecificportmapping(int(args[0]), args[1])
        elif act == "generic":
            r = u.getgenericportmapping(int(args[0]))
        elif act == "del":
            r = u.deleteportmapping(int(args[0]), args[1])
        elif act == "status":
            r = u.statusinfo()
        elif act == "wait-connected":
            deadline = time.monotonic() + float(args[0])
            while True:
                r = u.statusinfo()
                if r[0] == "Connected":
                    break
                if time.monotonic() > deadline:
                    print(f"error still {r[0]} after {args[0]} s")
                    return 1
                time.sleep(0.2)
        elif act == "list":
            i = 0
            while True:
                e = u.getgenericportmapping(i)
                if e is None:
                    break
                print(f"entry {i} {e}")
                i += 1
            r = f"{i} entries"
        else:
            print(f"unknown action {act}")
            return 2
    except Exception as e:  # miniupnpc raises plain Exception with the UPnP error text
        print(f"error {e}")
        return 1
    print(f"ok {r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

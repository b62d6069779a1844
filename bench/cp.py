#!/usr/bin/python3
"""bench/cp.py: a minimal UPnP IGD control point for the benchmarks (stdlib only).

Runs inside the LAN host namespace (bench.py starts it with `ip netns exec`).  One JSON job
on argv[1], one JSON result on stdout.  Jobs:

  {"op": "fill", "url": CTRL_URL, "st": SERVICE_TYPE, "client": ADDR, "start": PORT,
   "count": N, "lease": S, "deadline_s": S}
      AddPortMapping TCP START..START+N-1 -> CLIENT:same port, stopping after deadline_s;
      result: done (mappings asked for), errors, seconds.
  {"op": "pairs", ... "port": PORT, "count": N}
      N x (AddPortMapping PORT, DeletePortMapping PORT) on one keep-alive connection if the
      server keeps it, timing each call; result: add_ms / del_ms lists, errors.
  {"op": "delete", ... "start": PORT, "count": N}
      DeletePortMapping for a range (cleanup).

The connection is kept alive when the server allows it and re-opened when it closes it
(miniupnpd answers every request with Connection: close).
"""
import http.client
import json
import sys
import time
import urllib.parse

ENV = ('<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
       's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
       '<u:{a} xmlns:u="{st}">{args}</u:{a}></s:Body></s:Envelope>\r\n')


def body(action, st, **kw):
    args = "".join(f"<{k}>{v}</{k}>" for k, v in kw.items())
    return ENV.format(a=action, st=st, args=args).encode()


class CP:
    def __init__(self, url, st):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path, self.st = u.hostname, u.port or 80, u.path, st
        self.conn = None
        self.reconnects = 0

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.reconnects += 1
        return self.conn

    def call(self, action, **kw):
        """(HTTP status, body text); retries once on a connection the server had closed."""
        data = body(action, self.st, **kw)
        hdr = {"Content-Type": 'text/xml; charset="utf-8"',
               "SOAPAction": f'"{self.st}#{action}"'}
        for attempt in (0, 1):
            c = self._conn()
            try:
                c.request("POST", self.path, data, hdr)
                r = c.getresponse()
                text = r.read().decode("utf-8", "replace")
                if r.will_close:
                    c.close()
                    self.conn = None
                return r.status, text
            except (http.client.HTTPException, ConnectionError, BrokenPipeError):
                c.close()
                self.conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def add(self, port, client, lease=0, desc="bench"):
        return self.call("AddPortMapping", NewRemoteHost="", NewExternalPort=port,
                         NewProtocol="TCP", NewInternalPort=port, NewInternalClient=client,
                         NewEnabled=1, NewPortMappingDescription=desc,
                         NewLeaseDuration=lease)

    def delete(self, port):
        return self.call("DeletePortMapping", NewRemoteHost="", NewExternalPort=port,
                         NewProtocol="TCP")


def main():
    job = json.loads(sys.argv[1])
    cp = CP(job["url"], job["st"])
    out = {"op": job["op"], "errors": 0, "first_error": None}

    def err(what):
        out["errors"] += 1
        if out["first_error"] is None:
            out["first_error"] = what[:400]

    t0 = time.monotonic()
    if job["op"] == "fill":
        deadline = t0 + job.get("deadline_s", 1e9)
        done = 0
        for p in range(job["start"], job["start"] + job["count"]):
            if time.monotonic() > deadline:
                break
            st, text = cp.add(p, job["client"], job.get("lease", 0))
            if st != 200:
                err(f"add {p}: {st} {text}")
            done += 1
        out["done"] = done
    elif job["op"] == "delete":
        for p in range(job["start"], job["start"] + job["count"]):
            st, text = cp.delete(p)
            if st != 200:
                err(f"delete {p}: {st} {text}")
    elif job["op"] == "pairs":
        add_ms, del_ms = [], []
        for _ in range(job["count"]):
            a = time.perf_counter()
            st, text = cp.add(job["port"], job["client"], job.get("lease", 0))
            b = time.perf_counter()
            if st != 200:
                err(f"add: {st} {text}")
            st, text = cp.delete(job["port"])
            c = time.perf_counter()
            if st != 200:
                err(f"delete: {st} {text}")
            add_ms.append((b - a) * 1e3)
            del_ms.append((c - b) * 1e3)
        out.update(add_ms=add_ms, del_ms=del_ms)
    else:
        raise SystemExit(f"unknown op {job['op']}")
    out["seconds"] = time.monotonic() - t0
    out["connections"] = cp.reconnects
    print(json.dumps(out))


if __name__ == "__main__":
    main()

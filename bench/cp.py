#!/usr/bin/python3
"""bench/cp.py: a minimal UPnP IGD control point for the benchmarks (stdlib only).

Runs inside the LAN host namespace (bench.py starts it with `ip netns exec`).  One JSON job
on argv[1], one JSON result on stdout.  Jobs:

  {"op": "fill", "url": CTRL_URL, "st": SERVICE_TYPE, "client": ADDR, "start": PORT,
   "count": N, "lease": S, "deadline_s": S, "workers": W}
      AddPortMapping TCP START..START+N-1 -> CLIENT:same port, stopping after deadline_s.
      workers W (default 1): W control points at once, each a process with its own keep-alive
      connection and its own block of ports (worker w: START+w*ceil(N/W) ..), all starting at
      the same instant.  Result: done (Adds answered 200), attempted, errors (other answers),
      first_error, seconds, t0 (CLOCK_MONOTONIC of the start, the same clock as bench.py's
      time.monotonic()), times (CLOCK_MONOTONIC of each 200 answer, sorted), resp_bytes (HTTP
      answer bytes received: status line, headers, body), cpu_s (the control points' CPU).
  {"op": "pairs", ... "port": PORT, "count": N, "deadline_s": S}
      N x (AddPortMapping PORT, DeletePortMapping PORT) on one keep-alive connection if the
      server keeps it (no new pair after deadline_s), timing each call; result: add_ms / del_ms
      lists, errors.
  {"op": "extip", ... "count": N}
      N x GetExternalIPAddress on one keep-alive connection; result: resp_bytes (to calibrate
      how much of the HTTP answers a daemon's /proc/PID/io wchar counts).
  {"op": "delete", ... "start": PORT, "count": N}
      DeletePortMapping for a range (cleanup).

The connection is kept alive when the server allows it and re-opened when it closes it
(miniupnpd answers every request with Connection: close).
"""
import http.client
import json
import os
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
        self.resp_bytes = 0

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.reconnects += 1
        return self.conn

    def call(self, action, **kw):
        """(HTTP status, body text); retries once on a connection the server had closed.
        self.resp_bytes counts the answers' bytes (status line + headers + body)."""
        data = body(action, self.st, **kw)
        hdr = {"Content-Type": 'text/xml; charset="utf-8"',
               "SOAPAction": f'"{self.st}#{action}"'}
        for attempt in (0, 1):
            c = self._conn()
            try:
                c.request("POST", self.path, data, hdr)
                r = c.getresponse()
                raw = r.read()
                self.resp_bytes += (len(raw) + len(f"HTTP/1.1 {r.status} {r.reason}\r\n")
                                    + len(r.msg.as_string().replace("\n", "\r\n")))
                text = raw.decode("utf-8", "replace")
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


def fill_worker(job, start, count, start_at, deadline):
    """One control point: Adds start..start+count-1 from start_at (monotonic) until deadline."""
    cp = CP(job["url"], job["st"])
    out = {"errors": 0, "first_error": None, "times": []}
    while time.monotonic() < start_at:
        time.sleep(min(0.01, max(0.0, start_at - time.monotonic())))
    c0 = os.times()
    out["attempted"] = 0
    for p in range(start, start + count):
        if time.monotonic() > deadline:
            break
        st, text = cp.add(p, job["client"], job.get("lease", 0))
        out["attempted"] += 1
        if st == 200:
            out["times"].append(time.monotonic())
        else:
            out["errors"] += 1
            if out["first_error"] is None:
                out["first_error"] = f"add {p}: {st} {text}"[:1000]
    c1 = os.times()
    out["cpu_s"] = (c1.user - c0.user) + (c1.system - c0.system)
    out["connections"] = cp.reconnects
    out["resp_bytes"] = cp.resp_bytes
    return out


def fill(job):
    workers = max(1, int(job.get("workers", 1)))
    count, start = job["count"], job["start"]
    per = -(-count // workers)
    blocks = [(start + w * per, max(0, min(per, count - w * per))) for w in range(workers)]
    if workers == 1:
        t0 = time.monotonic()
        res = [fill_worker(job, start, count, t0, t0 + job.get("deadline_s", 1e9))]
    else:
        import multiprocessing
        t0 = time.monotonic() + 0.3          # every worker forked and waiting by then
        deadline = t0 + job.get("deadline_s", 1e9)
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            res = pool.starmap(fill_worker, [(job, s, n, t0, deadline) for s, n in blocks])
    times = sorted(t for r in res for t in r["times"])
    errs = [r["first_error"] for r in res if r["first_error"]]
    return {"done": len(times), "attempted": sum(r["attempted"] for r in res),
            "errors": sum(r["errors"] for r in res),
            "first_error": errs[0] if errs else None, "t0": t0,
            "seconds": (times[-1] - t0) if times else 0.0, "times": [round(t, 6) for t in times],
            "workers": workers, "per_worker": [len(r["times"]) for r in res],
            "connections": sum(r["connections"] for r in res),
            "cpu_s": sum(r["cpu_s"] for r in res),
            "resp_bytes": sum(r["resp_bytes"] for r in res)}


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
        out.update(fill(job))
        print(json.dumps(out))
        return
    elif job["op"] == "extip":
        for _ in range(job["count"]):
            st, text = cp.call("GetExternalIPAddress")
            if st != 200:
                err(f"GetExternalIPAddress: {st} {text}")
        out["resp_bytes"] = cp.resp_bytes
    elif job["op"] == "delete":
        for p in range(job["start"], job["start"] + job["count"]):
            st, text = cp.delete(p)
            if st != 200:
                err(f"delete {p}: {st} {text}")
    elif job["op"] == "pairs":
        add_ms, del_ms = [], []
        deadline = t0 + job.get("deadline_s", 1e9)
        for _ in range(job["count"]):
            if time.monotonic() > deadline:
                break
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

#!/usr/bin/python3
"""bench/fastsim.py: tests/pcpsim/pcpsim.py with two O(table) costs taken out, for the benchmark.

pcpsim is written for correctness tests: on every datagram it scans its whole mapping table
for expired entries, and for every new mapping it builds the set of all external ports in use
to see whether the suggested port is free.  Both are O(n) per request: with 10,000 mappings a
new MAP costs it ~2 ms of Python and a refresh ~1 ms, which caps a 10,000-mapping fill or
restore at a few hundred requests per second and makes the benchmark measure the simulator
instead of iwfd.  This wrapper runs the same program (same protocol logic, same control
socket, same log) with:

  - an index (protocol, external port) -> endpoints holding it, kept up to date in
    Server._insert/_remove, so port_free() is O(1) (allocate_port(), used only when the
    suggested port is taken, keeps the original scan);
  - expire() scanning the table at most every EXPIRE_EVERY_S seconds once the table holds more
    than SMALL entries (a mapping may outlive its lifetime by up to that long; the benchmark's
    mappings live for hours).  Small tables behave exactly as in pcpsim.

Nothing in tests/ is changed; bench.py starts this instead of pcpsim.py unless --plain-pcpsim.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "pcpsim"))
import pcpsim  # noqa: E402

EXPIRE_EVERY_S = 1.0
SMALL = 256


class FastServer(pcpsim.Server):
    def __init__(self, now, **settings):
        self._held = {}            # (protocol, external port) -> {endpoint: count}
        self._next_expire = 0.0
        super().__init__(now, **settings)

    def _index(self, m, delta):
        k = (m.protocol, m.ext_port)
        eps = self._held.setdefault(k, {})
        e = m.endpoint()
        n = eps.get(e, 0) + delta
        if n > 0:
            eps[e] = n
        else:
            eps.pop(e, None)
            if not eps:
                del self._held[k]

    def _insert(self, table, key, m, now):
        old = table.get(key)
        if old is not None:
            self._index(old, -1)
        super()._insert(table, key, m, now)
        self._index(m, +1)

    def _remove(self, table, key, reason, now):
        m = table.get(key)
        super()._remove(table, key, reason, now)
        if m is not None:
            self._index(m, -1)

    def port_free(self, protocol, port, endpoint):
        if not self.config["port_min"] <= port <= self.config["port_max"]:
            return False
        if (protocol, port) in self.reserved:
            return False
        eps = self._held.get((protocol, port))
        return not eps or all(e == endpoint for e in eps)

    def expire(self, now):
        if len(self.mappings) + len(self.peers) > SMALL and now < self._next_expire:
            return
        self._next_expire = now + EXPIRE_EVERY_S
        super().expire(now)


def main():
    pcpsim.Server = FastServer      # Simulator() looks the class up in pcpsim's namespace
    return pcpsim.main()


if __name__ == "__main__":
    sys.exit(main())

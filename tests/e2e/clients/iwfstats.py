#!/usr/bin/python3
"""iwfd's counters (iwfctl --json stats) for the e2e scenarios: print them flat, keep them in a
file, and check how they moved.

  iwfstats.py IWFCTL SOCKET [--save FILE] [--since FILE] [CHECK ...]

Every counter is printed as "KEY VALUE" with a dotted key (upnp.ssdp.msearch 3,
upnp.http.refused.per_host_limit 0, soap.by_action.AddPortMapping 1 ...). --save writes them
to FILE (JSON) for a later --since. A CHECK is
  KEY>N  KEY>=N  KEY==N      the value now
  KEY+                       grew since the --since file
  KEY=                       unchanged since the --since file
Prints "ok CHECK (was -> now)" or "FAIL ..." per check and last "VERDICT PASS" or
"VERDICT FAIL"; exit 0 / 1 (2: iwfctl did not answer).
"""
import json
import re
import subprocess
import sys


def flat(obj, prefix=""):
    out = {}
    for k, v in obj.items():
        key = prefix + k
        if isinstance(v, dict):
            out.update(flat(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    iwfctl, sock, rest = argv[1], argv[2], argv[3:]
    save = since = None
    checks = []
    while rest:
        a = rest.pop(0)
        if a == "--save":
            save = rest.pop(0)
        elif a == "--since":
            since = rest.pop(0)
        else:
            checks.append(a)
    p = subprocess.run([iwfctl, "-s", sock, "-j", "stats"], capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        print("iwfctl stats failed (%d): %s%s" % (p.returncode, p.stdout, p.stderr))
        return 2
    now = flat(json.loads(p.stdout))
    for k in sorted(now):
        print(k, now[k])
    if save:
        with open(save, "w") as f:
            json.dump(now, f)
    was = json.load(open(since)) if since else {}
    failed = 0
    for c in checks:
        m = re.fullmatch(r"([\w.]+)(>=|==|>|\+|=)(\d*)", c)
        if not m:
            print("FAIL bad check %r" % c)
            failed += 1
            continue
        key, op, n = m.group(1), m.group(2), m.group(3)
        v, w = now.get(key), was.get(key, 0)
        if v is None:
            good = False
        elif op == ">":
            good = v > int(n)
        elif op == ">=":
            good = v >= int(n)
        elif op == "==":
            good = v == int(n)
        elif op == "+":
            good = since is not None and v > w
        else:
            good = since is not None and v == w
        print("%s %s (%s -> %s)" % ("ok" if good else "FAIL", c, w if since else "-", v))
        failed += not good
    print("VERDICT " + ("FAIL" if failed else "PASS"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

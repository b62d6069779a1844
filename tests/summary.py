#!/usr/bin/python3
"""Print the plain summary line 'N passed, N failed' from meson's testlog.json files.

Usage: summary.py [--tail N] [--slowest N] [LABEL=]testlog.json ...

Several builds' logs are added up.  Before the summary line it prints, per build, the number
of tests and the wall time meson took for them, the slowest tests (to keep the CI budget in
view), and for every failed or timed-out test the last --tail lines of its output (meson's
testlog.json holds each test's whole stdout and stderr), then one 'FAILED label: test: result' line per
failure.  Exits non-zero when any test failed or timed out, or when no test ran at all."""
import json
import sys

TAIL = 80
SLOWEST = 10

args = sys.argv[1:]
while args and args[0] in ("--tail", "--slowest"):
    if args[0] == "--tail":
        TAIL = int(args[1])
    else:
        SLOWEST = int(args[1])
    args = args[2:]

passed = failed = skipped = 0
failures = []          # (label, name, result, output)
timings = []           # (duration, label, name)
builds = []            # (label, count, wall seconds)
for arg in args:
    label, _, path = arg.rpartition("=")
    label = label or path
    try:
        log = open(path, encoding="utf-8")
    except OSError as e:
        failed += 1
        failures.append((label, "(no test log)", e.strerror, ""))
        continue
    starts, ends, count = [], [], 0
    with log:
        for line in log:
            if not line.strip():
                continue
            t = json.loads(line)
            count += 1
            result = t.get("result")
            dur = float(t.get("duration") or 0)
            timings.append((dur, label, t.get("name")))
            if t.get("starttime"):
                starts.append(t["starttime"])
                ends.append(t["starttime"] + dur)
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
                # meson keeps stderr apart when the test wrote to both
                output = (t.get("stdout") or "") + (t.get("stderr") or "")
                failures.append((label, t.get("name"), result, output))
    builds.append((label, count, (max(ends) - min(starts)) if starts else 0.0))

for label, count, wall in builds:
    print(f"{label}: {count} tests in {wall:.0f} s")
if timings and SLOWEST:
    print(f"slowest {min(SLOWEST, len(timings))}:")
    for dur, label, name in sorted(timings, reverse=True)[:SLOWEST]:
        print(f"  {dur:6.1f} s  {label}: {name}")
for label, name, result, output in failures:
    if not output:
        continue
    lines = output.rstrip().splitlines()
    # A sanitizer report's head (the error and its first stack frames) is what explains it;
    # its tail is the variable list of the frame. Show the head even when it is not in the tail.
    head = [i for i, l in enumerate(lines) if "ERROR: AddressSanitizer" in l or "runtime error:" in l
            or "ERROR: LeakSanitizer" in l]
    if head and head[0] < len(lines) - TAIL:
        print(f"---- {label}: {name}: {result}: the sanitizer report's first 30 lines ----")
        print("\n".join(lines[head[0]:head[0] + 30]))
    print(f"---- {label}: {name}: {result}: last {min(TAIL, len(lines))} of {len(lines)} lines ----")
    print("\n".join(lines[-TAIL:]))
for label, name, result, _ in failures:
    print(f"FAILED {label}: {name}: {result}")
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or passed == 0 else 0)

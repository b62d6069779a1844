#!/usr/bin/python3
"""Print the plain summary line 'N passed, N failed' from meson's testlog.json files.

Usage: summary.py [LABEL=]testlog.json ...  (several builds' logs are added up; a failed
test is listed with its build's label). Exits non-zero when any test failed or timed out,
or when no test ran at all."""
import json
import sys

passed = failed = skipped = 0
failures = []
for arg in sys.argv[1:]:
    label, _, path = arg.rpartition("=")
    try:
        log = open(path, encoding="utf-8")
    except OSError as e:
        failed += 1
        failures.append(f"{label or path}: no test log ({e.strerror})")
        continue
    with log:
        for line in log:
            if not line.strip():
                continue
            t = json.loads(line)
            result = t.get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
                failures.append(f"{label + ': ' if label else ''}{t.get('name')}: {result}")
for f in failures:
    print("FAILED", f)
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or passed == 0 else 0)

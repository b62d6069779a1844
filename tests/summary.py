#!/usr/bin/python3
"""Print the plain summary line 'N passed, N failed' from meson's testlog.json.

Exits non-zero when any test failed, timed out, or when no test ran at all."""
import json
import sys

passed = failed = skipped = 0
failures = []
with open(sys.argv[1], encoding="utf-8") as log:
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
            failures.append(f"{t.get('name')}: {result}")
for f in failures:
    print("FAILED", f)
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or passed == 0 else 0)

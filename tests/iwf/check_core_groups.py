#!/usr/bin/python3
"""Every test group a tests/iwf/test_core_*.c program knows ({"name", fn} in its table) is
registered as a meson test in tests/iwf/meson.build (test_core_groups), and no registered
group is unknown to its program. Five groups once ran only when a program was started without
arguments, and one of them had been failing unseen.

usage: check_core_groups.py TESTS_IWF_DIR
"""
import glob
import os
import re
import sys


def main():
    d = sys.argv[1]
    meson = open(os.path.join(d, "meson.build")).read()
    bad = 0
    progs = sorted(glob.glob(os.path.join(d, "test_core_*.c")))
    for path in progs:
        exe = os.path.basename(path)[:-2]
        known = set(re.findall(r'\{\s*"([a-z0-9_]+)"\s*,\s*[a-z0-9_]+\s*\}', open(path).read()))
        m = re.search(r"'%s'\s*:\s*\[(.*?)\]" % exe, meson, re.S)
        if not known:
            continue
        if m is None:
            print("%s: not in test_core_groups" % exe)
            bad += 1
            continue
        listed = set(re.findall(r"'([a-z0-9_]+)'", m.group(1)))
        for g in sorted(known - listed):
            print("%s: group %s is not registered" % (exe, g))
            bad += 1
        for g in sorted(listed - known):
            print("%s: registered group %s is unknown to the program" % (exe, g))
            bad += 1
        if not (known ^ listed):
            print("%s: %d groups, all registered" % (exe, len(known)))
    print("%d problems" % bad)
    return 1 if bad or not progs else 0


if __name__ == "__main__":
    sys.exit(main())

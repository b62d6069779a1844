#!/usr/bin/python3
"""Make iwfd's state directory read-only or full, inside iwfd's own mount namespace.

  statedir.py --pid PID --dir DIR tmpfs [--size 16k]   a small tmpfs over DIR (current files
                                                       copied in), seen only by iwfd
  statedir.py --pid PID --dir DIR ro | rw              cover DIR with a read-only copy of it / take
                                                       the cover away again
  statedir.py --pid PID --dir DIR fill | unfill        fill it to ENOSPC with a filler file /
                                                       remove the filler

`ip netns exec` gives every command its own mount namespace, so a mount made by a scenario
step would not be seen by iwfd: this enters iwfd's (nsenter -t PID -m) instead.  Files inside
are reached through /proc/PID/root/DIR.  Root ignores permission bits, so "read-only" has to be
a read-only mount, and "full" a file system that is full (a tiny tmpfs).  iwfd keeps its
journal open for writing, and Linux refuses to remount a file system read-only while a file
on it is open for writing ("mount point is busy"), so "ro" mounts a read-only copy of the
directory over it (what iwfd then finds at the path is read-only) and "rw" unmounts it.
"""
import argparse
import errno
import os
import shutil
import subprocess
import sys


def nsenter(pid, *argv):
    p = subprocess.run(["nsenter", "-t", str(pid), "-m", "--"] + list(argv),
                       capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        sys.exit(f"nsenter {' '.join(argv)}: {p.stderr.strip()}")


def cover(a, inside, source):
    """Mount a tmpfs of a.size over a.dir in iwfd's mount namespace, with a copy of the files
    that were there; returns them by name."""
    saved = {}
    for name in os.listdir(inside):
        p = os.path.join(inside, name)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                saved[name] = f.read()
    nsenter(a.pid, "mount", "-t", "tmpfs", "-o", f"size={a.size},mode=0755", source, a.dir)
    for name, data in saved.items():
        with open(os.path.join(inside, name), "wb") as f:
            f.write(data)
    return saved


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("what", choices=["tmpfs", "ro", "rw", "fill", "unfill"])
    ap.add_argument("--size", default="16k")
    a = ap.parse_args()
    inside = f"/proc/{a.pid}/root{a.dir}"
    if a.what == "tmpfs":
        saved = cover(a, inside, "iwfd-state-fault")
        print(f"tmpfs of {a.size} on {a.dir} in iwfd's mount namespace; copied {sorted(saved)}")
    elif a.what == "ro":
        saved = cover(a, inside, "iwfd-state-ro")
        nsenter(a.pid, "mount", "-o", "remount,ro", a.dir)
        print(f"{a.dir} covered by a read-only copy of {sorted(saved)}")
    elif a.what == "rw":
        nsenter(a.pid, "umount", "-l", a.dir)  # iwfd may hold the covered directory open
        print(f"{a.dir}: read-only cover removed")
    elif a.what == "fill":
        n = 0
        try:
            with open(os.path.join(inside, "filler"), "wb", buffering=0) as f:
                while True:
                    f.write(b"\0" * 1024)
                    n += 1
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
        st = os.statvfs(inside)
        print(f"filled: {n} KiB written, {st.f_bavail * st.f_frsize} bytes left")
    else:
        os.unlink(os.path.join(inside, "filler"))
        print("filler removed")
    subprocess.run(["ls", "-la", inside])


if __name__ == "__main__":
    main()

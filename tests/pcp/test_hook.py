#!/usr/bin/python3
"""The DHCP hook dist/hooks/pcp_servers_hook.sh (docs/pcp.md) under the POSIX shells
present (dash, busybox sh, bash): DHCPv4 option 158 and DHCPv6 option 86 payloads in both
hex spellings become the hand-over file, which iwfd's own parser (pcp_cli
--check-servers-file = pcp_servers_parse) reads back; malformed payloads leave the file alone.

usage: test_hook.py PCP_CLI
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HOOK = os.path.join(HERE, "..", "..", "dist", "hooks", "pcp_servers_hook.sh")
PCP_CLI = None
SHELLS = [s for s in (["dash"], ["busybox", "sh"], ["bash", "--posix"]) if shutil.which(s[0])]


class HookTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.file = os.path.join(self.tmp, "run", "pcp-servers")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def hook(self, sh, kind, data):
        return subprocess.run(sh + [HOOK, kind, data, self.file], capture_output=True, text=True).returncode

    def parsed(self):
        p = subprocess.run([PCP_CLI, "--check-servers-file", self.file], capture_output=True, text=True)
        return p.returncode, p.stdout.split("\n")[:-1]

    def test_shells(self):
        self.assertTrue(SHELLS)
        for sh in SHELLS:
            with self.subTest(shell=sh[0]):
                # option 158: two PCP servers, the first with two addresses (udhcpc hex)
                self.assertEqual(self.hook(sh, "v4", "08c0000201c63364070" "4cb007109"), 0)
                self.assertEqual(self.parsed(), (0, ["SERVER addr=192.0.2.1 port=5351",
                                                     "SERVER addr=198.51.100.7 port=5351",
                                                     "SERVER addr=203.0.113.9 port=5351"]))
                # the same as dhclient prints a "string" option
                self.assertEqual(self.hook(sh, "v4", "4:c0:0:2:1"), 0)
                self.assertEqual(self.parsed(), (0, ["SERVER addr=192.0.2.1 port=5351"]))
                # option 86: an IPv6 server and an IPv4-mapped one
                self.assertEqual(self.hook(sh, "v6", "20010db8000000000000000000000001"
                                                     "00000000000000000000ffffc6336407"), 0)
                self.assertEqual(self.parsed(), (0, ["SERVER addr=2001:db8::1 port=5351",
                                                     "SERVER addr=198.51.100.7 port=5351"]))
                # dhclient -6 with "array of ip6-address"
                self.assertEqual(self.hook(sh, "list", "2001:db8::5 2001:db8::6"), 0)
                self.assertEqual(self.parsed()[1], ["SERVER addr=2001:db8::5 port=5351",
                                                    "SERVER addr=2001:db8::6 port=5351"])
                # malformed: odd hex, bad list length, truncated list, short IPv6, junk
                for kind, data in (("v4", "08c00002"), ("v4", "03c00002"), ("v4", "0"), ("v4", "zz"),
                                   ("v6", "20010db8"), ("v4", "4:c0:0:2:100")):
                    self.assertEqual(self.hook(sh, kind, data), 1, (kind, data))
                    self.assertEqual(self.parsed()[1][0], "SERVER addr=2001:db8::5 port=5351")
                # no option: an empty file (iwfd hands back to its configured servers)
                self.assertEqual(self.hook(sh, "v4", ""), 0)
                self.assertEqual(os.path.getsize(self.file), 0)
                self.assertEqual(self.parsed(), (1, []))
                self.assertEqual(self.hook(sh, "list", ""), 0)
                self.assertEqual(self.parsed(), (1, []))
                self.assertEqual(sorted(os.listdir(os.path.dirname(self.file))), ["pcp-servers"])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    PCP_CLI = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

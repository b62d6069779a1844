#!/usr/bin/env python3
"""OpenWrt package: /etc/config/iwfd (UCI) -> iwfd's JSON, by openwrt/iwfd/files/iwfd-uci.sh
under the POSIX shells we have (dash, busybox sh, bash --posix), with a stub of OpenWrt's
config_* functions (openwrt_functions_stub.sh). The JSON must be what we expect and iwfd
must accept it (exit 1 on a missing LAN interface, not 2 = configuration error); a bad UCI
value must be refused by iwfd naming the key.

usage: openwrt_uci.py IWFD
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
FILES = os.path.join(TOP, "openwrt", "iwfd", "files")
STUB = os.path.join(HERE, "openwrt_functions_stub.sh")
SHELLS = [s for s in (["dash"], ["busybox", "sh"], ["bash", "--posix"]) if shutil.which(s[0])]

FULL = r"""
config iwfd 'main'
	option enabled '1'
	list lan_interface 'br-lan'
	list lan_interface 'br-guest'
	option lan_address '192.168.1.1'
	option http_port '2869'
	list pcp_server '192.0.2.1'
	list pcp_server '[2001:db8::1]:5351'
	option pcp_servers_file '/var/run/iwfd/pcp-servers'
	option state_file '/etc/iwfd/state'
	option igd_version '2'
	option log_level 'debug'
	option friendly_name 'Router "5G" \ home'
	option status_page '1'
	option lifetime '3600'
	option service_wait_s '10'
	option listen_announce '0'
	option nat_mode 'nftables'
	option wan_device 'eth1'
	option nat_port_min '20000'
	option allow_third_party '1'
	list rule 'deny 0-65535 192.168.1.66 0-65535'
	list rule 'allow 1024-65535 192.168.1.0/24 1024-65535'
"""
FULL_JSON = {
    "lan_interfaces": ["br-lan", "br-guest"], "lan_address": "192.168.1.1", "http_port": 2869,
    "pcp_servers": ["192.0.2.1", "[2001:db8::1]:5351"], "pcp_servers_file": "/var/run/iwfd/pcp-servers",
    "state_file": "/etc/iwfd/state", "igd_version": 2, "log_level": "debug",
    "friendly_name": 'Router "5G" \\ home',
    "status_page": True,
    "pcp": {"lifetime": 3600, "service_wait_s": 10, "listen_announce": False},
    "nat": {"mode": "nftables", "wan_interface": "eth1", "port_min": 20000},
    "security": {"allow_third_party": True, "rules": ["deny 0-65535 192.168.1.66 0-65535",
                                                      "allow 1024-65535 192.168.1.0/24 1024-65535"]},
}


def translate(sh, uci_text, tmp):
    d = os.path.join(tmp, "config")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "iwfd"), "w") as f:
        f.write(uci_text)
    script = ". %s; . %s/iwfd-uci.sh; config_load iwfd; iwfd_uci_json main" % (STUB, FILES)
    p = subprocess.run(sh + ["-c", script], capture_output=True, text=True, env=dict(os.environ, UCI_CONFIG_DIR=d))
    assert p.returncode == 0, "%s: exit %d: %s" % (sh, p.returncode, p.stderr)
    return p.stdout


def iwfd_check(iwfd, text, tmp):
    path = os.path.join(tmp, "iwfd.json")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([iwfd, "-f", "-c", path, "--lan-if", "nosuch0", "--no-state", "--http-port", "0",
                        "--nat", "none"], capture_output=True, text=True, timeout=20)
    return p.returncode, p.stderr


def main():
    iwfd = os.path.abspath(sys.argv[1])
    if not SHELLS:
        print("skipped: no POSIX shell found")
        return 77
    failed = 0
    tmp = tempfile.mkdtemp(prefix="iwfd-uci-")
    try:
        for sh in SHELLS:
            name = " ".join(sh)
            checks = []
            out = translate(sh, FULL, tmp)
            try:
                got = json.loads(out)
                checks.append(("every option translated", got == FULL_JSON, "%r" % got))
            except ValueError as exc:
                checks.append(("valid JSON", False, "%s: %r" % (exc, out)))
            rc, err = iwfd_check(iwfd, out, tmp)
            checks.append(("iwfd accepts it (exit 1: no LAN interface)", rc == 1 and "nosuch0" in err, err))
            shipped = open(os.path.join(FILES, "iwfd.config")).read().replace("option enabled '0'",
                                                                              "option enabled '1'")
            out = translate(sh, shipped, tmp)
            rc, err = iwfd_check(iwfd, out, tmp)
            checks.append(("the shipped /etc/config/iwfd is accepted", rc == 1 and "nosuch0" in err,
                           out + err))
            out = translate(sh, "config iwfd 'main'\n\tlist lan_interface 'br-lan'\n\toption lifetime '5'\n", tmp)
            rc, err = iwfd_check(iwfd, out, tmp)
            checks.append(("a bad value is refused naming the key", rc == 2 and "pcp.lifetime" in err, err))
            out = translate(sh, "config iwfd 'main'\n\toption http_port 'abc'\n", tmp)
            rc, err = iwfd_check(iwfd, out, tmp)
            checks.append(("a non-number is refused naming the key", rc == 2 and "http_port" in err, err))
            for what, ok, detail in checks:
                print("%s %s: %s" % ("ok  " if ok else "FAIL", name, what))
                if not ok:
                    failed += 1
                    print("     " + detail.replace("\n", "\n     "))
    finally:
        shutil.rmtree(tmp)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

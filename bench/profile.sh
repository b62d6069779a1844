#!/bin/sh
# bench/profile.sh [OUTDIR] — the profiles docs/performance.md quotes, on loopback.
#
# Starts pcpsim (127.0.0.1:15351) and iwfd (127.0.0.1:15000, --lan-if lo, IGD:2) from
# build-bench/, fills N mappings (default 1000) through UPnP and records:
#   perf-spec.txt     perf (cpu-clock) of iwfd under wrk GetSpecificPortMappingEntry, keep-alive
#   perf-list.txt     same for GetListOfPortMappings over N entries
#   callgrind.txt     instructions per GetSpecificPortMappingEntry (callgrind, inclusive)
#   massif.txt        heap while N mappings are added (valgrind massif)
#   strace-add.txt    system calls of 2 Add+Delete pairs (state file saves, fsyncs, PCP)
#   smaps.txt         RSS per mapping (file) of the idle daemon
# Loopback only; every process started here is stopped by pid at the end (trap).
# Takes a few minutes (valgrind runs are slow). Needs root only for perf.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${1:-/tmp/iwfd-profile}
n=${N:-1000}
iwfd=${IWFD:-$root/build-bench/iwf/iwfd}
py=/usr/bin/python3
st=urn:schemas-upnp-org:service:WANIPConnection:2
ctl=http://127.0.0.1:15000/ctl/WANIPConn
mkdir -p "$out"
cd "$out"
rm -f state.json
echo '{"pcp":{"service_wait_s":0,"replay_rate":0,"listen_announce":false}}' >iwfd.json

pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

$py "$root/tests/pcpsim/pcpsim.py" --listen 127.0.0.1:15351 --control "$out/sim.sock" \
	--set '{"quota":0,"address_mismatch":false}' >sim.log 2>&1 &
pids="$pids $!"
sleep 1

start_iwfd() { # $1: wrapper command (may be empty)
	# shellcheck disable=SC2086
	$1 "$iwfd" --foreground --lan-if lo --lan-addr 127.0.0.1 --http-port 15000 \
		--pcp-server 127.0.0.1:15351 --state "$out/state.json" --igd 2 --config iwfd.json \
		>>iwfd.log 2>&1 &
	ipid=$!
	pids="$pids $ipid"
	i=0
	until curl -s -o /dev/null http://127.0.0.1:15000/rootDesc.xml; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "iwfd did not start" >&2; exit 1; }
		sleep 0.1
	done
}
stop_iwfd() { kill "$ipid"; wait "$ipid" 2>/dev/null || true; }
fill() { # $1 first port
	$py "$here/cp.py" "{\"op\":\"fill\",\"url\":\"$ctl\",\"st\":\"$st\",\"client\":\"127.0.0.1\",\"start\":$1,\"count\":$n}"
}
wrk_run() { # $1 kind, $2 arg, $3 connections
	taskset -c 1 wrk -t1 -c"$3" -d5s -s "$here/soap.lua" "$ctl" -- "$1" keep "$st" "$2" | grep BENCHJSON
}

# 1. heap while adding N mappings (massif), then idle smaps of a normal run
start_iwfd "valgrind --tool=massif --massif-out-file=$out/massif.out"
sleep 2
fill 20000 >fill-massif.json
stop_iwfd
ms_print massif.out >massif.txt
rm -f state.json

start_iwfd "taskset -c 0"
sleep 1
awk '/^[0-9a-f]+-/{name=$6} /^Rss:/{r[name]+=$2} END{for(n in r) if(r[n]>0) printf "%6d kB %s\n", r[n], n}' \
	/proc/$ipid/smaps | sort -rn >smaps.txt
fill 30000 >fill.json
echo "--- after $n mappings" >>smaps.txt
awk '/^[0-9a-f]+-/{name=$6} /^Rss:/{r[name]+=$2} END{for(n in r) if(r[n]>0) printf "%6d kB %s\n", r[n], n}' \
	/proc/$ipid/smaps | sort -rn >>smaps.txt
grep -E "VmHWM|VmRSS" /proc/$ipid/status >>smaps.txt

# 2. system calls of two Add+Delete pairs
timeout 8 strace -tt -T -e trace=fsync,rename,openat,sendto,recvfrom,close -p "$ipid" -o strace-add.txt &
spid=$!
sleep 1
$py "$here/cp.py" "{\"op\":\"pairs\",\"url\":\"$ctl\",\"st\":\"$st\",\"client\":\"127.0.0.1\",\"port\":45000,\"count\":2}" >pairs.json
wait $spid || true

# 3. perf of the two read workloads
for w in "specific 30500" "list $n"; do
	set -- $w
	perf record -q -F 2000 -g -e cpu-clock -p "$ipid" -o "perf-$1.data" -- sleep 6 2>/dev/null &
	ppid=$!
	sleep 0.3
	wrk_run "$1" "$2" 4 >"wrk-$1.txt"
	wait $ppid || true
	perf report -i "perf-$1.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
		grep '%' | head -40 >"perf-$1.txt"
done
stop_iwfd

# 4. instructions per GetSpecificPortMappingEntry (callgrind, request path only)
start_iwfd "valgrind --tool=callgrind --callgrind-out-file=$out/cg.out --collect-atstart=no --toggle-collect=conn_read_cb"
sleep 3
wrk_run specific 30500 1 >wrk-callgrind.txt
stop_iwfd
sleep 1
callgrind_annotate --inclusive=yes cg.out 2>/dev/null | head -80 >callgrind.txt
echo "profiles in $out"

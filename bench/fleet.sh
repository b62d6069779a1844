#!/bin/sh
# bench/fleet.sh [--quick] [--fleet PATH] [--csv-dir DIR]
# The fleet simulation matrix (bench/fleet.c; model, results and advice in bench/fleet.md):
# both scenarios, 10,000 and 100,000 routers, server capacity 5,000 and 20,000 requests/s,
# today's defaults and longer PCP_SERVICE_WAITs, plus a what-if for the restart (the core
# spreading its re-creation after an ANNOUNCE); one markdown table row per run.
# Runs one simulation at a time (a 100,000-router run needs ~0.9 GB and 5-25 s of CPU).
# --quick: 1,000 and 10,000 routers only (a smoke run, < 30 s).
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
fleet=${FLEET:-}
quick=
csvdir=
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--fleet) fleet=$2; shift ;;
	--csv-dir) csvdir=$2; shift ;;
	-h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "fleet.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
if [ -z "$fleet" ]; then
	if [ ! -d "$root/build-bench" ]; then
		meson setup "$root/build-bench" --buildtype=release >/dev/null
	fi
	if ! out=$(ninja -C "$root/build-bench" bench/fleet 2>&1); then
		printf '%s\n' "$out" >&2
		echo "fleet.sh: building bench/fleet failed (see above); or pass --fleet PATH" >&2
		exit 2
	fi
	fleet=$root/build-bench/bench/fleet
fi
[ -n "$csvdir" ] && mkdir -p "$csvdir"

run() { # scenario routers capacity service_wait replay_rate [announce_spread]
	spread=${6:-0}
	csv=/dev/null
	[ -n "$csvdir" ] && csv="$csvdir/$1-$2-c$3-w$4-r$5-a$spread.csv"
	# exit status 1 = not recovered within --max-sim-s: still a row of the table
	"$fleet" --table-row --scenario "$1" --routers "$2" --mappings 10 --capacity "$3" --delay-ms 10 \
		--service-wait "$4" --replay-rate "$5" --seed 1 --announce-spread "$spread" --csv "$csv" ||
		[ $? -eq 1 ]
}

if [ -n "$quick" ]; then
	small=1000
	big=10000
else
	small=10000
	big=100000
fi

"$fleet" --table-header
# A. Regional power cut: PCP_SERVICE_WAIT is the knob (5 s = today's default).
for c in 5000 20000; do
	for w in 5 30 60; do run powercut $small $c $w 20; done
done
for c in 5000 20000; do
	for w in 5 60 120 240; do run powercut $big $c $w 20; done
done
# replay_rate at the recommended wait: unpaced, 1/s (behaves as 10/s today), 20/s above
for r in 0 1; do run powercut $big 20000 60 $r; done
# B. Carrier restart + ANNOUNCE: neither knob applies (the engine re-sends in 0..5 s).
for n in $small $big; do
	for c in 5000 20000; do run restart "$n" "$c" 5 20; done
done
run restart $big 20000 240 1
# What-if (not iwfd today): the core would spread the re-creation over RAND(0, W) + 0..5 s
run restart $big 20000 5 20 60
run restart $big 5000 5 20 240

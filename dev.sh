#!/usr/bin/env bash
# dev.sh - the project's two entry points on a fresh Debian 12 machine (run as root):
#   ./dev.sh demo   install what is missing, build, run the live demo in network namespaces
#   ./dev.sh test   install what is missing, build, run every test; last line "N passed, N failed"
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD

PACKAGES=(build-essential meson ninja-build pkg-config libevent-dev libjansson-dev
  libhttp-parser-dev libexpat1-dev libnftables-dev nftables miniupnpd-nftables miniupnpc
  libminiupnpc-dev python3 python3-miniupnpc iproute2 socat tcpdump clang libclang-rt-14-dev valgrind
  tayga chromium chromium-driver)

install_deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "dev.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null
  fi
  ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { cat "$dir.ninja.log"; echo "0 passed, 1 failed"; exit 1; }
}

# run_tests DIR LABEL [meson test options]: the whole log goes to DIR/test-output.txt, meson's
# own logs to DIR/meson-logs/testlog[-SETUP].{txt,json}; printed
# here are meson's closing block and the time taken (tests/summary.py then prints the tails of
# the failed tests' logs, the slowest tests and the summary line).
run_tests() {
  local dir=$1 label=$2 t0=$SECONDS; shift 2
  rm -f "$dir"/meson-logs/testlog*.json    # never count an earlier run's results
  meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "$@" \
    >"$dir/test-output.txt" 2>&1 || rc=1
  echo "== $label: meson test -C $dir $* (--num-processes $jobs): $((SECONDS - t0)) s"
  awk '/^(Summary of Failures:|Ok: )/ { p = 1 } p && NF' "$dir/test-output.txt"
}

case "${1:-}" in
demo)
  install_deps
  build build
  exec /usr/bin/python3 tests/e2e/demo.py --build build
  ;;
test)
  install_deps
  werror=()
  [ -n "${CI:-}" ] && werror=(-Dwerror=true)
  # Most tests (e2e scenarios in namespaces, simulator scripts) wait on timers and the network,
  # so more processes than cores; every test that is not parallel-safe says is_parallel : false.
  jobs=${IWFD_TEST_JOBS:-6}
  rc=0
  build build "${werror[@]}"
  CC=clang build build-asan -Db_sanitize=address,undefined -Db_lundef=false "${werror[@]}"
  # 1. The release-like build (gcc): every suite, valgrind_e2e included.
  run_tests build gcc
  # 2. clang AddressSanitizer + UndefinedBehaviorSanitizer, test setup 'asan' (tests/meson.build):
  #    unit tests, libFuzzer targets for a bounded time (suite 'fuzz'), simulator scripts and
  #    the e2e-core scenarios; what runs where and why: tests/README.md.
  run_tests build-asan asan --setup asan
  /usr/bin/python3 tests/summary.py gcc=build/meson-logs/testlog.json \
    asan=build-asan/meson-logs/testlog-asan.json || rc=1
  exit $rc
  ;;
*)
  echo "usage: $0 demo|test" >&2
  exit 2
  ;;
esac

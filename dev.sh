#!/usr/bin/env bash
# dev.sh - the project's two entry points on a fresh Debian 12 machine (run as root):
#   ./dev.sh demo   install what is missing, build, run the live demo in network namespaces
#   ./dev.sh test   install what is missing, build, run every test; last line "N passed, N failed"
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD

PACKAGES=(build-essential meson ninja-build pkg-config libevent-dev libjansson-dev
  libhttp-parser-dev libexpat1-dev libnftables-dev nftables miniupnpd-nftables miniupnpc
  libminiupnpc-dev python3 python3-miniupnpc iproute2 socat tcpdump clang libclang-rt-14-dev valgrind)

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
  rc=0
  # 1. The release-like build (gcc), every suite.
  build build "${werror[@]}"
  meson test -C build --print-errorlogs --num-processes 2 >build/test-output.txt 2>&1 || rc=$?
  tail -n 25 build/test-output.txt
  # 2. The same suite under AddressSanitizer + UndefinedBehaviorSanitizer (clang), which
  #    also builds and runs the libFuzzer targets for a bounded time (suite "fuzz").
  CC=clang build build-asan -Db_sanitize=address,undefined -Db_lundef=false "${werror[@]}"
  UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --print-errorlogs --num-processes 2 >build-asan/test-output.txt 2>&1 || rc=$?
  tail -n 25 build-asan/test-output.txt
  /usr/bin/python3 tests/summary.py gcc=build/meson-logs/testlog.json \
    asan=build-asan/meson-logs/testlog.json || rc=1
  exit $rc
  ;;
*)
  echo "usage: $0 demo|test" >&2
  exit 2
  ;;
esac

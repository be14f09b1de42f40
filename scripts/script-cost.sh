#!/usr/bin/env bash
# What the hot Lua scripts cost Redis, in instructions per call, counted by callgrind: exact
# and repeatable, where CPU time on this shared machine moves by a third between runs. Use it
# to see what a change to a script saves; scripts/bench.sh gives the time the same scripts take
# under load. 127.0.0.1 only, a throwaway Redis under valgrind, a bounded number of calls.
#
#   scripts/script-cost.sh            # 2,000 calls of each script
#   SCRIPT_COST_CALLS=500 scripts/script-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages valgrind
calls=${SCRIPT_COST_CALLS:-2000}
echo "==> swift build -c release --product otpd" >&2
swift build -c release --product otpd >/dev/null
bin=$(swift build -c release --show-bin-path)/otpd

port=$(free_port)
work=$(mktemp -d /tmp/otpd-script-cost.XXXXXX)
valgrind --tool=callgrind --callgrind-out-file="/tmp/otpd-script-cost.$port.out" \
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/valgrind.log" 2>&1 &
valgrind_pid=$!
cleanup() {
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$valgrind_pid" 2>/dev/null || true
  wait "$valgrind_pid" 2>/dev/null || true
  rm -rf "$work" /tmp/otpd-script-cost."$port".out*
}
trap cleanup EXIT
for _ in $(seq 1 300); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
echo "==> $calls calls of each script, Redis under callgrind" >&2
python3 scripts/bench/script_cost.py "$bin" "$port" "$valgrind_pid" "$calls"

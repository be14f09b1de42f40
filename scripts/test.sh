#!/usr/bin/env bash
# Builds otpd and runs the whole test suite against a throwaway Redis on a free port, then the
# engine's tests (OTPStore, the v1 API, passwords, the import, project verify and the hub) a second time against a throwaway local Redis
# Cluster (3 masters + 3 replicas, scripts/cluster.sh). The cluster client's own tests
# (RedisClientTests) use that cluster in the first run. Last, scripts/fuzz.sh: schemathesis
# against a live otpd and openapi.yaml; then the libraries users reach otpd through, from PyPI,
# each in a virtual environment of its own: scripts/interop.sh (Passage's SDK and PyJWT
# verifying a live otpd's tokens through its JWKS) and scripts/interop-twilio.sh (Twilio's own
# Python SDK against the Twilio Verify routes).
# Usage: scripts/test.sh [extra `swift test` arguments, e.g. --filter RedisClientTests]
#        With arguments, only the first run happens (with them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages

dir=$(mktemp -d /tmp/otpd-test-redis.XXXXXX)
export OTPD_CLUSTER_DIR="$dir/cluster"
cleanup() {
  stop_redis "${port:-0}"
  scripts/cluster.sh stop || true
  rm -rf "$dir"
}
trap cleanup EXIT
port=$(start_redis_on_free_port "$dir")
echo "==> test Redis on 127.0.0.1:$port"
nodes=$(scripts/cluster.sh start | tail -1)
echo "==> test Redis Cluster on $nodes"

export OTPD_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
export OTPD_TEST_REDIS_NODES="$nodes"

echo "==> swift build"
start=$(date +%s)
swift build --build-tests
echo "==> built in $(( $(date +%s) - start ))s"

echo "==> swift test (standalone Redis)"
start=$(date +%s)
if (($# == 0)); then
  # The suites that measure time (a connection cut after 1 s, Redis killed mid-burst, a
  # 25 ms reconnect backoff, a process stopped under load, a first head never finished, a
  # command timeout, an unreachable server answered within their bounds, 100,000 users
  # imported within 45 s, gateway retries and timeouts within theirs, requests that never wait
  # for a stuck log, and the suites that compare an unknown user's timing with a known one's) run
  # after the others, one at a time, on an otherwise idle machine: beside the parallel
  # suite's scrypt hashing and bulk import on two cores — or beside each other, when one
  # kills Redis while another times a trickled body — they would measure the load, not otpd.
  timed='FaultTests|SlowClientTests|ProcessTests|ConnectionSlotTests|HubTests|RedisClientTests\.RedisClientTests|ImportTests|GatewayRetryTests|DeliveryFlowTests|LoggingTests|OTPServerTests\.ServerTests|V1Tests|TelegramTests|PasswordTests|GuardTests'
  swift test --skip-build --skip "$timed"
  echo "==> swift test (standalone Redis): the timed suites, alone"
  swift test --skip-build --no-parallel --filter "$timed"
else
  swift test --skip-build "$@"
fi
echo "==> tests ran in $(( $(date +%s) - start ))s"

if (($# == 0)); then
  # The tests that use KEYS, SCAN or their own redis-server stay cluster-safe or standalone
  # by construction (see TestRedis.allKeys and the comments at those tests).
  echo "==> swift test (Redis Cluster): OTPCoreTests, V1Tests, GuardTests, PasswordTests, ImportTests, ProjectVerifyTests, HubTests"
  start=$(date +%s)
  OTPD_TEST_REDIS_MODE=cluster swift test --skip-build --filter "OTPCoreTests|V1Tests|GuardTests|PasswordTests|ImportTests|ProjectVerifyTests|HubTests"
  echo "==> cluster tests ran in $(( $(date +%s) - start ))s"

  scripts/fuzz.sh "$OTPD_TEST_REDIS_URL"
  scripts/interop.sh "$OTPD_TEST_REDIS_URL"
  scripts/interop-twilio.sh "$OTPD_TEST_REDIS_URL"
fi

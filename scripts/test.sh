#!/usr/bin/env bash
# Builds otpd and runs the whole test suite against a throwaway Redis on a free port.
# Usage: scripts/test.sh [extra `swift test` arguments, e.g. --filter RedisClientTests]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages

dir=$(mktemp -d /tmp/otpd-test-redis.XXXXXX)
port=$(start_redis_on_free_port "$dir") || { rm -rf "$dir"; exit 1; }
trap 'stop_redis "$port"; rm -rf "$dir"' EXIT
echo "==> test Redis on 127.0.0.1:$port"

export OTPD_TEST_REDIS_URL="redis://127.0.0.1:$port/0"

echo "==> swift build"
start=$(date +%s)
swift build --build-tests
echo "==> built in $(( $(date +%s) - start ))s"

echo "==> swift test"
start=$(date +%s)
swift test --skip-build "$@"
echo "==> tests ran in $(( $(date +%s) - start ))s"

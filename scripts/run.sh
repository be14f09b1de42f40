#!/usr/bin/env bash
# Installs what is missing, makes sure a local Redis runs, builds otpd and serves the API
# on config/otpd.yaml (development mode: codes are written to this terminal by the log gateway).
# Usage: scripts/run.sh [otpd serve arguments]   (OTPD_BUILD=release for an optimised build)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages

redis_port=${OTPD_REDIS_PORT:-6379}
if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
  echo "==> starting a local Redis on 127.0.0.1:$redis_port"
  start_redis "$redis_port" "${TMPDIR:-/tmp}/otpd-redis"
fi
export OTPD_REDIS_URL=${OTPD_REDIS_URL:-redis://127.0.0.1:$redis_port/0}

configuration=${OTPD_BUILD:-debug}
echo "==> swift build -c $configuration"
swift build -c "$configuration" --product otpd
bin=$(swift build -c "$configuration" --show-bin-path)/otpd
exec "$bin" serve --config "${OTPD_CONFIG:-config/otpd.yaml}" "$@"

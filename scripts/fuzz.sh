#!/usr/bin/env bash
# Schemathesis (from PyPI) against a live otpd and openapi.yaml: generated requests to every
# route, bounded in count; fails on any 5xx, a response that breaks the schema, or a status
# the document does not list. Run by scripts/test.sh after the Swift tests.
# Usage: scripts/fuzz.sh REDIS_URL [examples per operation, default 25]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

redis_url=$1
examples=${2:-25}
if ! command -v st >/dev/null; then
  echo "==> installing schemathesis (PyPI)"
  python3 -m pip install -q schemathesis >/dev/null
fi

bin=$(swift build --show-bin-path)/otpd
port=$(free_port)
log=$(mktemp /tmp/otpd-fuzz.XXXXXX.log)
OTPD_PORT=$port OTPD_REDIS_URL=$redis_url OTPD_KEY_PREFIX="fuzz-$RANDOM" OTPD_LOG_LEVEL=error \
  "$bin" serve --config config/otpd.yaml >"$log" 2>&1 &
otpd_pid=$!
trap 'kill "$otpd_pid" 2>/dev/null || true; wait "$otpd_pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done

echo "==> schemathesis: $examples examples per operation against otpd on 127.0.0.1:$port"
cd /tmp  # schemathesis writes its example database in the working directory
timeout 300 st --config-file "$OLDPWD/scripts/fuzz/schemathesis.toml" run "$OLDPWD/openapi.yaml" \
  --url "http://127.0.0.1:$port" --max-examples "$examples" --generation-deterministic \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance

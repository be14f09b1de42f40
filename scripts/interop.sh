#!/usr/bin/env bash
# Token interoperability: real JWT libraries from PyPI, in a virtual environment of their own,
# verify a live otpd's tokens through its JWKS (scripts/interop/tokens_test.py): Passage's SDK
# (RS256), PyJWT's PyJWKClient (ES256, EdDSA, issuer and audience checked); the JWKS holds every
# key and no private member, an HS256 app publishes none, a listed inactive key still verifies,
# and algorithm confusion and alg none are 401. The keys are made for the run (otpd keys
# generate) in a temporary directory and deleted after. Run by scripts/test.sh after fuzz.sh.
# Usage: scripts/interop.sh REDIS_URL
#        OTPD_INTEROP_VENV=DIR to keep the virtual environment elsewhere (default .venv-interop).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

redis_url=$1
venv=${OTPD_INTEROP_VENV:-.venv-interop}
ensure_venv "$venv" "passage-identity>=3,<4" "PyJWT[crypto]>=2.8,<3" "requests>=2.31,<3"

bin=$(swift build --show-bin-path)/otpd
port=$(free_port)
work=$(mktemp -d /tmp/otpd-interop.XXXXXX)
otpd_pid=
trap 'if [ -n "$otpd_pid" ]; then kill "$otpd_pid" 2>/dev/null || true; wait "$otpd_pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT

for key in RS256:rs-old RS256:rs-new ES256:es-1 EdDSA:ed-1; do
  "$bin" keys generate --alg "${key%%:*}" --kid "${key#*:}" --out "$work/${key#*:}.pem" >/dev/null
done

# One app per algorithm; rs lists two keys and signs with the second. The log gateway writes
# each code to the log (JSON lines), where the test reads it.
cat >"$work/otpd.yaml" <<YAML
mode: development
log_level: notice
log_format: json
server: {host: 127.0.0.1, port: $port}
redis: {url: "$redis_url", key_prefix: "interop-$RANDOM$RANDOM"}
security: {pepper: "interop-pepper-0123456789abcdef"}
delivery:
  email: {provider: log}
apps:
  - id: hs
    channels: [email]
    tokens: {keys: [{kid: hs-1, secret: "interop-hs256-secret-0123456789abcdef"}]}
    templates: {en: {email_text: "{code}"}}
  - id: rs
    channels: [email]
    tokens:
      algorithm: RS256
      active_kid: rs-new
      keys:
        - {kid: rs-old, private_key_file: "$work/rs-old.pem"}
        - {kid: rs-new, private_key_file: "$work/rs-new.pem"}
    templates: {en: {email_text: "{code}"}}
  - id: es
    channels: [email]
    tokens: {algorithm: ES256, issuer: otpd-interop, keys: [{kid: es-1, private_key_file: "$work/es-1.pem"}]}
    templates: {en: {email_text: "{code}"}}
  - id: ed
    channels: [email]
    tokens: {algorithm: EdDSA, issuer: otpd-interop, keys: [{kid: ed-1, private_key_file: "$work/ed-1.pem"}]}
    templates: {en: {email_text: "{code}"}}
YAML

"$bin" check-config --config "$work/otpd.yaml" >/dev/null
"$bin" serve --config "$work/otpd.yaml" >"$work/otpd.log" 2>&1 &
otpd_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
if ! curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
  echo "error: otpd did not start" >&2
  cat "$work/otpd.log" >&2
  exit 1
fi

echo "==> interop: PyPI's JWT libraries against otpd on 127.0.0.1:$port"
"$venv/bin/python" scripts/interop/tokens_test.py --base-url "http://127.0.0.1:$port" --log "$work/otpd.log" --keys "$work"

#!/usr/bin/env bash
# Twilio Verify v2 on otpd, driven by Twilio's own Python SDK (`twilio` from PyPI, installed
# into a virtual environment of its own): starts the built otpd on a free port with a test
# configuration written to a temp dir (the development `log` gateway on sms, call and email:
# the test reads the codes from otpd's log), and runs scripts/interop/twilio_verify_test.py
# against it. Run by scripts/test.sh after scripts/fuzz.sh.
# Usage: scripts/interop-twilio.sh REDIS_URL
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

redis_url=$1
venv=/tmp/otpd-venv-twilio
ensure_venv "$venv" twilio

account=AC0123456789abcdef0123456789abcdef
token=interop-auth-token-0123456789
key=SK0123456789abcdef0123456789abcdef
key_secret=interop-key-secret-0123456789
service=VA0123456789abcdef0123456789abcdef
ip_service=VAfedcba9876543210fedcba9876543210

bin=$(swift build --show-bin-path)/otpd
port=$(free_port)
dir=$(mktemp -d /tmp/otpd-interop-twilio.XXXXXX)
cat >"$dir/otpd.yaml" <<YAML
mode: development
log_level: info
server: {host: 127.0.0.1, port: $port}
redis: {url: "$redis_url", key_prefix: "interop-twilio-$RANDOM", timeout_ms: 2000}
security: {pepper: "interop-pepper-0123456789abcdef"}
delivery:
  sms: {provider: log}
  call: {provider: log}
  email: {provider: log}
apps:
  - id: verify
    name: Interop
    channels: [sms, call, email]
    otp: {length: 6, ttl_seconds: 600, max_attempts: 3, resend_cooldown_seconds: 0}
    limits: {sends_per_identifier_per_hour: 1000, sends_per_ip_per_hour: 100000, failed_attempts_per_identifier_per_hour: 1000,
             failed_attempts_per_ip_per_hour: 100000, sms_and_calls_per_app_per_hour: 100000}
    tokens: {keys: [{kid: k1, secret: "interop-jwt-secret-0123456789abcdef0123456789"}]}
    templates:
      en: {sms: "{code} is your {app_name} code", call: "{code} is your {app_name} code", email_subject: "Your {app_name} code", email_text: "{code} is your {app_name} code"}
      fr: {sms: "{code} est votre code {app_name}", call: "{code} est votre code", email_subject: "Votre code", email_text: "{code} est votre code"}
  - id: perip
    channels: [sms]
    otp: {resend_cooldown_seconds: 0}
    limits: {sends_per_ip_per_hour: 2, sms_and_calls_per_app_per_hour: 100000}
    tokens: {keys: [{kid: k1, secret: "interop-jwt-secret-0123456789abcdef0123456789"}]}
surfaces:
  twilio_verify:
    account_sid: $account
    auth_token: "$token"
    api_keys: {$key: "$key_secret"}
    services: {$service: verify, $ip_service: perip}
YAML
log="$dir/otpd.log"
"$bin" serve --config "$dir/otpd.yaml" >"$log" 2>&1 &
otpd_pid=$!
trap 'kill "$otpd_pid" 2>/dev/null || true; wait "$otpd_pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
if ! curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
  echo "error: otpd did not start:" >&2
  cat "$log" >&2
  exit 1
fi

echo "==> Twilio's Python SDK ($("$venv/bin/python" -c 'import twilio; print(twilio.__version__)')) against otpd on 127.0.0.1:$port"
OTPD_URL="http://127.0.0.1:$port" OTPD_LOG="$log" TV_ACCOUNT=$account TV_TOKEN=$token TV_KEY=$key \
  TV_KEY_SECRET=$key_secret TV_SERVICE=$service TV_IP_SERVICE=$ip_service \
  timeout 300 "$venv/bin/python" scripts/interop/twilio_verify_test.py

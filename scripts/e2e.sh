#!/usr/bin/env bash
# End to end on loopback: a local Redis Cluster (3 masters + 3 replicas), three otpd replicas
# (debug build, `log` gateway: codes are read from their logs) in cluster mode, and nginx in
# front (proxy_next_upstream error timeout http_502 http_503; X-Forwarded-For). A bounded
# workload of login flows (register -> code -> activate -> refresh) runs through nginx while
# one otpd replica and then one Redis master are killed; it checks the contract and prints
# the figures (docs/scaling.md has a run's). The workload driver is scripts/e2e/workload.py.
#
# Run by hand (scripts/test.sh does not run it): scripts/e2e.sh
# Environment: E2E_CONCURRENCY (16), E2E_FLOWS_PER_PHASE (1000), E2E_MAX_FLOWS (6000),
#              E2E_MAX_SECONDS (240), E2E_KEEP=1 keeps /tmp/otpd-e2e for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages nginx python3 curl
python3 -c 'import requests' 2>/dev/null || {
  echo "error: the workload needs Python's requests (apt-get install python3-requests)" >&2
  exit 1
}

work=/tmp/otpd-e2e
export OTPD_CLUSTER_DIR="$work/cluster"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
  scripts/cluster.sh stop || true
  [ "${E2E_KEEP:-0}" = 1 ] || rm -rf "$work"
}
if [ -e "$work" ]; then
  echo "error: $work exists (another e2e run? remove it when none is)" >&2
  exit 1
fi
mkdir -p "$work/nginx/logs"
trap cleanup EXIT

echo "==> swift build --product otpd (debug)"
swift build --product otpd >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; exit 1; }
otpd=$(swift build --show-bin-path)/otpd

echo "==> Redis Cluster"
nodes=$(scripts/cluster.sh start | tail -1)
echo "    $nodes"

node_list=$(echo "$nodes" | sed 's/[^,]*/"&"/g; s/,/, /g')
templates='{en: {sms: "code {code}", email_subject: "code", email_text: "code {code}", call: "code {code}", telegram: "code {code}"}}'
tokens='{keys: [{kid: k1, secret: "e2e-secret-0123456789abcdef0123456789abcdef"}]}'
cat >"$work/otpd.yaml" <<YAML
mode: development
log_level: info
server: {host: 127.0.0.1, port: 8080, trusted_proxies: ["127.0.0.1/32"]}
redis: {mode: cluster, nodes: [$node_list], timeout_ms: 500, key_prefix: e2e, pool_size: 2}
security: {pepper: "e2e-pepper-0123456789abcdef"}
delivery:
  email: {provider: log}
apps:
  - id: e2e
    channels: [email]
    otp: {length: 6, ttl_seconds: 600, max_attempts: 5, resend_cooldown_seconds: 0}
    # Every flow comes through nginx from one client address: its per-client limits are out of the way.
    limits: {sends_per_identifier_per_hour: 100, sends_per_ip_per_hour: 100000, failed_attempts_per_identifier_per_hour: 1000,
             failed_attempts_per_ip_per_hour: 100000}
    tokens: $tokens
    templates: $templates
  - id: quota
    channels: [email]
    otp: {resend_cooldown_seconds: 0}
    limits: {sends_per_identifier_per_hour: 3, sends_per_ip_per_hour: 100000}
    tokens: $tokens
    templates: $templates
  - id: ipquota
    channels: [email]
    otp: {resend_cooldown_seconds: 0}
    limits: {sends_per_identifier_per_hour: 100, sends_per_ip_per_hour: 4}
    tokens: $tokens
    templates: $templates
YAML
"$otpd" check-config --config "$work/otpd.yaml"

echo "==> three otpd replicas"
replicas=()
upstreams=""
for i in 1 2 3; do
  port=$(free_port)
  OTPD_PORT=$port "$otpd" serve --config "$work/otpd.yaml" >"$work/otpd-$i.log" 2>&1 &
  pids+=($!)
  disown $!  # the workload kills one; no "Killed" line from this shell
  replicas+=("$port:${pids[-1]}:$work/otpd-$i.log")
  upstreams+="    server 127.0.0.1:$port max_fails=1 fail_timeout=10s;"$'\n'
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { tail -20 "$work/otpd-$i.log"; exit 1; }
  echo "    otpd $i on 127.0.0.1:$port (pid ${pids[-1]})"
done

echo "==> nginx"
nginx_port=$(free_port)
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  upstream otpd {
$upstreams    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://otpd;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 1s;
      proxy_read_timeout 10s;
    }
  }
}
NGINX
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"
echo "    nginx on 127.0.0.1:$nginx_port"

echo "==> workload"
E2E_BASE_URL="http://127.0.0.1:$nginx_port" E2E_REPLICAS=$(IFS=,; echo "${replicas[*]}") \
  E2E_CLUSTER_DIR="$OTPD_CLUSTER_DIR" E2E_CLUSTER_NODES="$nodes" \
  timeout 600 python3 scripts/e2e/workload.py

#!/usr/bin/env bash
# Measures otpd against the ceilings of its own stack, side by side in one run, on 127.0.0.1
# only, every load bounded in count and time. Prints a table and writes docs/benchmarks.md.
# The servers it measures against come from the otpd-bench target (not shipped): otpd's own
# application with an echo route, a bare Hummingbird echo and a raw NIO webhook sink. `otpd`
# itself is built only for `otpd lua` (the script redis-benchmark runs): the two products share
# every module but their `main`.
#
# docs/benchmarks.md keeps the last ten runs' ratios (section "Recent runs") and their spread,
# so three runs in a row leave the spread of three on the page.
#
#   scripts/bench.sh                 # defaults: 64 connections, 5 s per run, 100,000 pending logins
#   BENCH_SECONDS=5 BENCH_POOL=20000 scripts/bench.sh
#   BENCH_PROFILE=echo,login scripts/bench.sh   # also `perf record -g` otpd during those runs;
#                                    # reports in $BENCH_PROFILE_OUT (default /tmp/otpd-profile);
#                                    # BENCH_PROFILE_SYSTEM=1: every process (perf record -a)
#   BENCH_ONLY=bare_echo,activate_right BENCH_POOL=20000 scripts/bench.sh
#                                    # only the named runs, for iterating on one path: prints
#                                    # their table, leaves docs/benchmarks.md as it is
#   BENCH_BIN_DIR=/tmp/a BENCH_ONLY=… scripts/bench.sh
#                                    # measures the otpd and otpd-bench in that directory
#                                    # instead of building (A/B runs of two builds, interleaved)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages wrk
CONNECTIONS=${BENCH_CONNECTIONS:-64}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
POOL=${BENCH_POOL:-100000}
# Pending logins of the ES256 app: its activation run uses each once.
ES_POOL=$(( POOL / 4 ))
THREADS=2
PROFILE_OUT=${BENCH_PROFILE_OUT:-/tmp/otpd-profile}
export BENCH_DIR="$PWD/scripts/bench" BENCH_THREADS=$THREADS

work=$(mktemp -d /tmp/otpd-bench.XXXXXX)
pids=()
redis_port=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "$redis_port" ] && stop_redis "$redis_port"
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${BENCH_BIN_DIR:-}" ]; then
  # Binaries built elsewhere (an A/B comparison of two builds on the same machine).
  bin_dir=$BENCH_BIN_DIR
else
  echo "==> swift build -c release --product otpd-bench (and otpd)"
  swift build -c release --product otpd-bench >/dev/null
  swift build -c release --product otpd >/dev/null
  bin_dir=$(swift build -c release --show-bin-path)
fi
bin=$bin_dir/otpd
bench_bin=$bin_dir/otpd-bench

# The ES256 app's signing key (issue: how much an asymmetric token costs per sign-in).
"$bin" keys generate --alg ES256 --kid e1 --out "$work/es256.pem" >/dev/null

redis_port=$(start_redis_on_free_port "$work/redis")
otpd_port=$(free_port)
sink_port=$(free_port)
while [ "$sink_port" = "$otpd_port" ]; do sink_port=$(free_port); done
bare_port=$(free_port)
while [ "$bare_port" = "$otpd_port" ] || [ "$bare_port" = "$sink_port" ]; do bare_port=$(free_port); done

# One app shaped for load: no cooldown, limits out of the way, codes that live an hour. Logged
# as in production: one access-log line per request (info, text).
# Voice calls go to the log gateway (the pool's codes, which the activation runs need); SMS,
# the default for a phone, goes through the real libcurl path — a signed webhook — to a sink
# that answers 200 (otpd-bench sink: raw NIO). The same phone users serve every run.
cat > "$work/bench.yaml" <<YAML
mode: development
log_level: info
log_format: text
server: {host: 127.0.0.1, port: $otpd_port}
redis: {url: "redis://127.0.0.1:$redis_port/0", key_prefix: b, timeout_ms: 2000, pool_size: 2}
security: {pepper: "insecure-bench-pepper-0123456789"}
delivery:
  call: {provider: log}
  sms: {provider: webhook, url: "http://127.0.0.1:$sink_port/bench/sink", secret: "insecure-bench-webhook"}
  timeout_ms: 2000
  retries: 0
apps:
  - id: bench
    name: Bench
    channels: [sms, call]
    otp: {length: 6, ttl_seconds: 3600, max_attempts: 5, resend_cooldown_seconds: 0}
    limits: {sends_per_identifier_per_hour: 1000000, sends_per_ip_per_hour: 1000000000, failed_attempts_per_identifier_per_hour: 1000000000,
             failed_attempts_per_ip_per_hour: 1000000000, max_consecutive_failures: 1000000000,
             refreshes_per_session_per_hour: 1000000000, sms_and_calls_per_app_per_hour: 1000000000}
    tokens: {keys: [{kid: k1, secret: "insecure-bench-jwt-secret-0123456789abcdef"}]}
    templates:
      en: {sms: "{code}", email_subject: "{app_name}", email_text: "{code}", call: "{code}", telegram: "{code}"}
  - id: bench_es
    name: Bench ES256
    channels: [sms, call]
    otp: {length: 6, ttl_seconds: 3600, max_attempts: 5, resend_cooldown_seconds: 0}
    limits: {sends_per_identifier_per_hour: 1000000, sends_per_ip_per_hour: 1000000000, failed_attempts_per_identifier_per_hour: 1000000000,
             failed_attempts_per_ip_per_hour: 1000000000, max_consecutive_failures: 1000000000,
             refreshes_per_session_per_hour: 1000000000, sms_and_calls_per_app_per_hour: 1000000000}
    tokens: {algorithm: ES256, active_kid: e1, keys: [{kid: e1, private_key_file: "$work/es256.pem"}]}
    templates:
      en: {sms: "{code}", email_subject: "{app_name}", email_text: "{code}", call: "{code}", telegram: "{code}"}
YAML

"$bench_bin" sink --port "$sink_port" >"$work/sink.log" 2>&1 &
pids+=($!)
"$bench_bin" bare-echo --port "$bare_port" >"$work/bare-echo.log" 2>&1 &
bare_pid=$!
pids+=($bare_pid)
"$bench_bin" serve --config "$work/bench.yaml" >"$work/otpd.log" 2>&1 &
otpd_pid=$!
pids+=($otpd_pid)
for port in $otpd_port $sink_port $bare_port; do
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
done

base="http://127.0.0.1:$otpd_port"
redis_pid=$(redis-cli -p "$redis_port" info server | awk -F: '/^process_id:/ {print $2+0}')
clock_ticks=$(getconf CLK_TCK)
declare -A rps p50 p99 server_errors socket_errors requests server_cpu redis_cpu redis_script
# cpu_ticks PID: the CPU time (user + system, in clock ticks) the process has used so far,
# from /proc/PID/stat (the fields after the command name, which is in parentheses).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# per_request TICKS COUNT: microseconds of CPU per request.
per_request() {
  awk -v t="$1" -v n="$2" -v hz="$clock_ticks" 'BEGIN { if (n > 0) printf "%.0f", t * 1e6 / hz / n; else print "-" }'
}
# run_at BASE NAME SCRIPT PATH [wrk args…]: one bounded wrk run against the server at BASE;
# its RESULT line fills the table. run NAME SCRIPT PATH …: the same against otpd.
# wanted NAME: whether the run NAME is measured (all of them unless BENCH_ONLY names some).
wanted() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; }
run_at() {
  local at=$1 name=$2 script=$3 path=$4
  shift 4
  rps[$name]=0 p50[$name]=- p99[$name]=- server_errors[$name]=- socket_errors[$name]=-
  server_cpu[$name]=- redis_cpu[$name]=- redis_script[$name]=-
  wanted "$name" || return 0
  echo "==> $name"
  local line perf_pid= server_pid server_before redis_before
  server_pid=$([ "$name" = bare_echo ] && echo "$bare_pid" || echo "$otpd_pid")
  if [[ ",${BENCH_PROFILE:-}," == *",$name,"* ]]; then
    ensure_packages linux-perf
    mkdir -p "$PROFILE_OUT"
    # otpd-bench serve for every run but bare_echo, whose server is otpd-bench bare-echo.
    local target=(-p "$([ "$name" = bare_echo ] && echo "$bare_pid" || echo "$otpd_pid")")
    [ -n "${BENCH_PROFILE_SYSTEM:-}" ] && target=(-a)
    perf record -F 999 -g -o "$PROFILE_OUT/$name.data" "${target[@]}" -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  redis-cli -p "$redis_port" config resetstat >/dev/null
  server_before=$(cpu_ticks "$server_pid") redis_before=$(cpu_ticks "$redis_pid")
  line=$(BENCH_PATH=$path wrk -t$THREADS -c"$CONNECTIONS" "$@" --timeout 5s -s "$BENCH_DIR/$script" "$at$path" | grep '^RESULT')
  local server_ticks=$(( $(cpu_ticks "$server_pid") - server_before )) redis_ticks=$(( $(cpu_ticks "$redis_pid") - redis_before ))
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    perf report -i "$PROFILE_OUT/$name.data" --no-children --percent-limit 2 --stdio >"$PROFILE_OUT/$name.txt" 2>/dev/null || true
    perf report -i "$PROFILE_OUT/$name.data" --no-children --sort comm,dso --stdio >"$PROFILE_OUT/$name.threads.txt" 2>/dev/null || true
  fi
  read -r _ requests[$name] rps[$name] p50[$name] p99[$name] server_errors[$name] socket_errors[$name] <<<"$line"
  server_cpu[$name]=$(per_request "$server_ticks" "${requests[$name]}")
  # The bare echo touches no Redis: its row shows none.
  if [ "$name" != bare_echo ]; then
    redis_cpu[$name]=$(per_request "$redis_ticks" "${requests[$name]}")
    redis_script[$name]=$(script_us "${requests[$name]}")
  fi
  if [ -n "$perf_pid" ]; then
    # the profile split into layers, each at its share of the run's server CPU per request
    perf script -i "$PROFILE_OUT/$name.data" 2>/dev/null \
      | "$BENCH_DIR/layers.py" --name "$name" --us-per-request "${server_cpu[$name]}" >"$PROFILE_OUT/$name.layers.md"
    cat "$PROFILE_OUT/$name.layers.md"
  fi
}
# script_us COUNT: microseconds Redis spent running scripts (EVALSHA and EVAL, as its
# commandstats time them, since the run's CONFIG RESETSTAT) per request: the rest of its CPU per
# request is reading, parsing and answering the commands.
script_us() {
  redis-cli -p "$redis_port" info commandstats \
    | awk -F'[=,]' -v n="$1" '/^cmdstat_eval(sha)?:/ { us += $4 } END { if (n > 0) printf "%.0f", us / n; else print "-" }'
}
run() { run_at "$base" "$@"; }
used_memory() { redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ {print $2+0}'; }
# Codes delivered so far on CHANNEL, from otpd's own metrics.
sent() { curl -s "$base/metrics" | awk -v c="$1" '$1 ~ "^otpd_otp_sent_total" && $1 ~ "channel=\""c"\"" {n += $2} END {print n+0}'; }
# send_each PATH COUNT: one request per phone (send.lua); wrk has no request-count limit,
# so it runs in the background until otpd's counter of voice-call codes shows them all.
send_each() {
  local path=$1 count=$2 channel=call start target
  start=$(sent "$channel")
  target=$(( start + count - count % THREADS ))
  BENCH_COUNT=$count BENCH_PATH=$path \
    wrk -t$THREADS -c"$CONNECTIONS" -d300s --timeout 5s -s "$BENCH_DIR/send.lua" "$base$path" >/dev/null &
  local wrk_pid=$!
  for _ in $(seq 1 3000); do
    [ "$(sent "$channel")" -ge "$target" ] && break
    sleep 0.1
  done
  sleep 0.2
  kill "$wrk_pid" 2>/dev/null || true
  wait "$wrk_pid" 2>/dev/null || true
}

# 1. Framework ceilings: the same JSON echo on a bare Hummingbird application (no otpd
# middleware), then on otpd's own application, through all of otpd's middleware.
run_at "http://127.0.0.1:$bare_port" bare_echo echo.lua /bench/echo -d"${SECONDS_PER_RUN}s"
run echo echo.lua /bench/echo -d"${SECONDS_PER_RUN}s"
run echo_redis echo.lua /bench/echo-redis -d"${SECONDS_PER_RUN}s"

# 2. Redis ceiling: redis-benchmark of the activation script itself, EVALSHA, same concurrency,
# over OTP hashes shaped like otpd's (a wrong code: the path that writes attempts and quotas).
rps[redis]=0 p50[redis]=- p99[redis]=- server_errors[redis]=0 socket_errors[redis]=0 server_cpu[redis]=- redis_cpu[redis]=- redis_script[redis]=-
if wanted redis; then
echo "==> redis-benchmark EVALSHA activate"
sha=$(redis-cli -p "$redis_port" SCRIPT LOAD "$("$bin" lua activate)")
hash=$(printf 'x%.0s' $(seq 1 32))
awk -v n=100000 -v h="$hash" 'BEGIN { for (i = 0; i < n; i++) printf "HSET rb:{x:%012d}:otp:a i X h %s a 0\n", i, h }' \
  | redis-cli -p "$redis_port" --pipe >/dev/null
# The call, by the names the script declares (`otpd lua activate --keys/--arguments`), so it
# follows the declaration: a wrong code on a live OTP of a user-less identifier (its quota in
# its own key), with limits that never refuse, so every call counts an attempt and a failure.
declare -A activate_call=(
  [otp_key]='rb:{x:__rand_int__}:otp:a' [own_quota_key]='rb:{x:__rand_int__}:q' [user_key]='rb:{x:__rand_int__}:user'
  [token_key]='rb:{x:__rand_int__}:rt:new' [family_key]='rb:{x:__rand_int__}:rf:new'
  [clock]='' [otp_suffix]=X [code_hash]=wrong-code-hash-32-bytes-long-xx [max_attempts]=1000000000
  [failures_per_hour]=1000000000 [sends_per_hour]=1000000000 [max_in_a_row]=1000000000 [lockout_ms]=60000
  [refresh_ttl_s]=60 [session_max_s]=60 [family_id]=fam [user_id]=u [proof_hash]='' [password_hash]=''
)
# activate_args KIND (keys | arguments): the values of the script's KEYS or ARGV, in its order.
activate_args() {
  local name
  for name in $("$bin" lua activate "--$1"); do
    [ -n "${activate_call[$name]+set}" ] || { echo "bench.sh: no value for activate's $name" >&2; exit 1; }
    activate_argv+=("${activate_call[$name]}")
  done
}
activate_argv=()
activate_args keys
key_count=${#activate_argv[@]}
activate_args arguments
redis-cli -p "$redis_port" config resetstat >/dev/null
redis_before=$(cpu_ticks "$redis_pid")
redis_line=$(redis-benchmark -p "$redis_port" -c "$CONNECTIONS" -n 150000 -r 100000 --csv \
  EVALSHA "$sha" "$key_count" "${activate_argv[@]}" | tail -1)
redis_cpu[redis]=$(per_request $(( $(cpu_ticks "$redis_pid") - redis_before )) 150000)
redis_script[redis]=$(script_us 150000)
rps[redis]=$(echo "$redis_line" | awk -F'","' '{print $2+0}')
p50[redis]=$(echo "$redis_line" | awk -F'","' '{print $5+0}')
p99[redis]=$(echo "$redis_line" | awk -F'","' '{print $7+0}')
server_errors[redis]=0
socket_errors[redis]=0
redis-cli -p "$redis_port" --scan --pattern 'rb:*' | xargs -r -n 1000 redis-cli -p "$redis_port" DEL >/dev/null
fi

# 3. The pool: POOL phone users registered, their sign-up OTPs dropped, then one
# login each. Memory per pending login = what the logins added (every key a login creates).
echo "==> creating $POOL pending logins (and $ES_POOL of the ES256 app)"
send_each /v1/apps/bench/register/otp "$POOL"
send_each /v1/apps/bench_es/register/otp "$ES_POOL"
redis-cli -p "$redis_port" --scan --pattern 'b:*:otp:*' | xargs -r -n 1000 redis-cli -p "$redis_port" DEL >/dev/null
log_start=$(( $(wc -l <"$work/otpd.log") + 1 ))
before=$(used_memory)
send_each /v1/apps/bench/login/otp "$POOL"
after=$(used_memory)
per_login=$(( (after - before) / POOL ))
es_log_start=$(( $(wc -l <"$work/otpd.log") + 1 ))
send_each /v1/apps/bench_es/login/otp "$ES_POOL"
tail -n +"$es_log_start" "$work/otpd.log" | grep -aF '[log gateway]' | sed -n 's/.*otp_id=\([^ ]*\).*\[log gateway\] \([0-9]*\).*/\1 \2 000000/p' >"$work/pool.es"
log_end=$(( es_log_start - 1 ))
# "<otp_id> <code> <a wrong code>" for each pending login, from the log gateway's lines.
sed -n "${log_start},${log_end}p" "$work/otpd.log" | grep -aF '[log gateway]' | sed -n 's/.*otp_id=\([^ ]*\).*\[log gateway\] \([0-9]*\).*/\1 \2/p' \
  | awk '{ print $1, $2, ($2 == "000000" ? "111111" : "000000") }' >"$work/pool.all"
pending=$(wc -l <"$work/pool.all")
half=$(( pending / 2 ))
head -n "$half" "$work/pool.all" >"$work/pool.right"
tail -n +"$(( half + 1 ))" "$work/pool.all" >"$work/pool.wrong"

# 4. otpd's own routes.
BENCH_POOL="$work/pool.right" BENCH_MODE=right BENCH_OUT="$work/tokens" \
  run activate_right activate.lua /v1/apps/bench/otp/activate -d"${SECONDS_PER_RUN}s"
BENCH_POOL="$work/pool.es" BENCH_MODE=right BENCH_OUT="$work/tokens-es" \
  run activate_right_es256 activate.lua /v1/apps/bench_es/otp/activate -d"${SECONDS_PER_RUN}s"
BENCH_POOL="$work/pool.wrong" BENCH_MODE=wrong \
  run activate_wrong activate.lua /v1/apps/bench/otp/activate -d"${SECONDS_PER_RUN}s"
BENCH_TOKENS="$work/tokens" run refresh refresh.lua /v1/apps/bench/tokens/refresh -d"${SECONDS_PER_RUN}s"
BENCH_COUNT=$POOL run login login.lua /v1/apps/bench/login/otp -d"${SECONDS_PER_RUN}s"

rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$otpd_pid/status")

# 5. The table.
# ratio RPS CEILING: RPS as a fraction of the ceiling's requests/s.
ratio() { awk -v a="$1" -v b="${rps[$2]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
cpu=$(awk -F: '/model name/ {gsub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)
# cpu_ratio NAME: the server CPU per request of NAME as a multiple of the bare echo's.
cpu_ratio() {
  awk -v a="${server_cpu[$1]}" -v b="${server_cpu[bare_echo]}" \
    'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.1fx", a / b }'
}
{
  echo "| run | requests/s | p50 ms | p99 ms | ratio to echo | ratio to bare echo | server CPU µs/request | ÷ bare echo's | Redis CPU µs/request | of it in scripts | 5xx | socket errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for name in bare_echo echo echo_redis redis activate_right activate_right_es256 activate_wrong refresh login; do
    echo "| $name | ${rps[$name]} | ${p50[$name]} | ${p99[$name]} | $(ratio "${rps[$name]}" echo)" \
      "| $(ratio "${rps[$name]}" bare_echo) | ${server_cpu[$name]} | $(cpu_ratio "$name") | ${redis_cpu[$name]} | ${redis_script[$name]}" \
      "| ${server_errors[$name]} | ${socket_errors[$name]} |"
  done
} >"$work/table.md"
middleware=$(ratio "${rps[echo]}" bare_echo)
summary="otpd's middleware: echo runs at ${middleware} × bare echo; otpd peak RSS $(( rss_kb / 1024 )) MB; Redis memory per pending login $per_login bytes ($pending pending logins)"
echo
cat "$work/table.md"
echo
echo "$summary"

if [ -n "${BENCH_ONLY:-}" ]; then
  echo "==> BENCH_ONLY: docs/benchmarks.md left as it is"
  exit 0
fi

# Recent runs: this run's ratios to bare echo appended to the ones docs/benchmarks.md already
# keeps (the last ten), and the spread (min–max) of each column over them.
run_row="| $(date -u +%Y-%m-%dT%H:%MZ) | ${rps[bare_echo]} | $middleware | $(ratio "${rps[activate_right]}" bare_echo) \
| $(ratio "${rps[activate_wrong]}" bare_echo) | $(ratio "${rps[refresh]}" bare_echo) | $(ratio "${rps[login]}" bare_echo) \
| ${p99[activate_right]} / ${p99[activate_wrong]} / ${p99[refresh]} / ${p99[login]} | $per_login | $(( rss_kb / 1024 )) \
| ${server_cpu[bare_echo]} / ${server_cpu[activate_right]} / ${server_cpu[activate_wrong]} / ${server_cpu[login]} \
| ${redis_cpu[activate_right]} / ${redis_cpu[activate_wrong]} / ${redis_cpu[login]} |"
{
  if [ -f docs/benchmarks.md ]; then
    sed -n '/^<!-- runs -->$/,/^<!-- end of runs -->$/p' docs/benchmarks.md | grep '^| 20' || true
  fi
  echo "$run_row"
} | tail -n 10 >"$work/runs.md"
spread=$(awk -F'|' '{
    for (i = 4; i <= 8; i++) { v = $i + 0; if (NR == 1 || v < lo[i]) lo[i] = v; if (NR == 1 || v > hi[i]) hi[i] = v }
  } END {
    printf "echo %.2f–%.2f, activate_right %.2f–%.2f, activate_wrong %.2f–%.2f, refresh %.2f–%.2f, login %.2f–%.2f (%d runs)",
      lo[4], hi[4], lo[5], hi[5], lo[6], hi[6], lo[7], hi[7], lo[8], hi[8], NR
  }' "$work/runs.md")
echo "Spread over the recent runs (ratio to bare echo): $spread"
# CPU per request over the last three runs (the runs of one build, when run three times in a row).
cpu_spread=$(tail -n 3 "$work/runs.md" | awk -F'|' '
  function range(name, i) { return sprintf("%s %d–%d", name, lo[i], hi[i]) }
  {
    n = split($12, s, " / "); m = split($13, r, " / ")
    if (n < 4 || m < 3) next
    for (i = 1; i <= 4; i++) { v = s[i] + 0; if (!(i in lo) || v < lo[i]) lo[i] = v; if (!(i in hi) || v > hi[i]) hi[i] = v }
    for (i = 1; i <= 3; i++) { v = r[i] + 0; j = i + 4; if (!(j in lo) || v < lo[j]) lo[j] = v; if (!(j in hi) || v > hi[j]) hi[j] = v }
    runs++
  } END {
    if (runs == 0) { print "-"; exit }
    printf "otpd %s, %s, %s, %s µs; Redis %s, %s, %s µs (%d runs)", range("bare echo", 1), range("activate right", 2),
      range("activate wrong", 3), range("login", 4), range("activate right", 5), range("activate wrong", 6), range("login", 7), runs
  }')
echo "CPU per request over the last three runs: $cpu_spread"

{
  cat <<DOC
# Benchmarks

Written by \`scripts/bench.sh\` — every figure in the first table comes from one run on one
machine, so the ratios compare like with like. Run it again to replace this page; the section
"Recent runs" keeps the last ten runs.

- Machine: $(nproc) cores ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); wrk, Redis
  $(redis-server --version | awk '{print $3}' | cut -d= -f2), otpd-bench (release build) all on 127.0.0.1.
- Load: wrk, $THREADS threads, $CONNECTIONS connections, ${SECONDS_PER_RUN} s per run; redis-benchmark with
  $CONNECTIONS clients. otpd logs at \`info\` (one access-log line per request). Date: $(date -u +%Y-%m-%d).

$(cat "$work/table.md")

$summary.

| run | what it measures |
|---|---|
| bare_echo | the framework ceiling: \`POST /bench/echo\` on a bare Hummingbird application (\`otpd-bench bare-echo\`), the same JSON decoded and encoded again, no middleware, no logging |
| echo | otpd's HTTP ceiling: the same echo route added to otpd's own application (\`otpd-bench serve\`), through all of otpd's middleware (access log, metrics, request ids, errors, body limit); echo / bare_echo is what the middleware costs |
| echo_redis | the floor of a route that waits on Redis twice, as an activation does: the echo through otpd's middleware plus two EVALSHA round trips of \`return 1\`, one after the other, through otpd's Redis client; echo_redis − echo is what two round trips cost |
| redis | the Redis ceiling: \`redis-benchmark\` of the activation script (EVALSHA, a wrong code: attempts and quota written) |
| activate_right | \`POST /v1/apps/{app}/otp/activate\` with each pending OTP's code, once: consumes the OTP, activates the user, stores a refresh token, signs a JWT (the run ends early when half the pool's codes are used; requests/s over the time it ran) |
| activate_right_es256 | the same, for an app that signs ES256 tokens (P-256, OpenSSL): the difference to activate_right is what an asymmetric token costs per sign-in (\`otpd-bench jwt --alg …\` gives each algorithm's sign and verify cost alone) |
| activate_wrong | the same route with wrong codes on random pending OTPs (401, then 429 once an OTP's attempts are spent) |
| refresh | \`POST /v1/apps/{app}/tokens/refresh\`, each token rotated once |
| login | \`POST /v1/apps/{app}/login/otp\`: quota checks, OTP stored, message signed and POSTed by libcurl to a local webhook sink (\`otpd-bench sink\`, raw NIO, on the same two cores) |

CPU per request: the user + system time the server process (\`otpd-bench bare-echo\` for
bare_echo, \`otpd-bench serve\` for the rest) and redis-server spent during the run, read from
\`/proc/PID/stat\` before and after it, divided by the requests wrk completed. It moves less
than requests/s with what else the two cores are doing, but still by up to a third between
runs of the same build; compare rows of one run, or interleave runs (\`BENCH_BIN_DIR\`). The
login row's server CPU includes libcurl's thread; the webhook sink's is not counted. "Of it in
scripts" is the time Redis spent running EVALSHA (its \`commandstats\`, reset before each run)
per request: nearly all of Redis's CPU. \`scripts/script-cost.sh\` counts the same scripts in
instructions, which do not move at all.

Targets (issue 13), as ratios to the bare echo of the same run at 64 connections: echo (otpd's
middleware) ≥ 0.85, activate (right and wrong) ≥ 0.5, refresh ≥ 0.5, login ≥ 0.3; p99 ≤ 10 ms
for activate and refresh, ≤ 20 ms for login; ≤ 250 bytes of Redis memory per pending login;
otpd RSS ≤ 100 MB; no 5xx or socket errors. Targets (issue 22), in CPU per request beside the
bare echo's of the same run: otpd ≤ 2.0× for activate with a right code (Redis ≤ 25 µs), ≤ 1.6×
with a wrong code (Redis ≤ 15 µs), ≤ 2.0× for login (Redis ≤ 15 µs); p99 ≤ 10 ms for activate
and refresh; ≤ 208 bytes of Redis per pending login.

## Recent runs

Ratios to the bare echo of each run; p99 in ms (activate_right / activate_wrong / refresh / login);
CPU per request of the server process and of redis-server (runs before 2026-12-03 did not
record it).

<!-- runs -->

| run (UTC) | bare_echo req/s | echo | activate_right | activate_wrong | refresh | login | p99 ms | bytes per login | RSS MB | server CPU µs/request (bare echo / activate_right / activate_wrong / login) | Redis CPU µs/request (activate_right / activate_wrong / login) |
|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|
$(cat "$work/runs.md")

<!-- end of runs -->

Spread (min–max): $spread.

CPU per request over the last three runs (min–max): $cpu_spread.

The analysis below the line is written by hand.

---
DOC
  if [ -f docs/benchmarks-notes.md ]; then cat docs/benchmarks-notes.md; fi
} >docs/benchmarks.md.new
mv docs/benchmarks.md.new docs/benchmarks.md
echo "==> wrote docs/benchmarks.md"

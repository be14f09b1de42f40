# Shared by run.sh, test.sh and bench.sh: install what is missing, start a Redis.
# shellcheck shell=bash

OTPD_APT_PACKAGES=(libhiredis-dev libcurl4-openssl-dev libssl-dev redis-server redis-tools pkg-config)

# Installs the Debian packages otpd builds and runs with, when any is missing.
ensure_packages() {
  local missing=() pkg
  for pkg in "${OTPD_APT_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "==> installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
      echo "error: need root to install: ${missing[*]} (or install them yourself)" >&2
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if ! command -v swift >/dev/null; then
    echo "error: swift is not on PATH (otpd needs the Swift 6 toolchain)" >&2
    exit 1
  fi
}

# Prints a TCP port on 127.0.0.1 that nothing listens on, below the kernel's ephemeral range
# (32768 and up), so that an outgoing connection cannot be holding it.
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "error: no free port found" >&2
  return 1
}

# start_redis PORT DIR: a throwaway redis-server (no persistence) on 127.0.0.1:PORT.
start_redis() {
  local port=$1 dir=$2
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "error: redis-server did not start on port $port (see $dir/redis.log)" >&2
  return 1
}

# start_redis_on_free_port DIR: like start_redis on a free port, trying again on another
# port if the first is taken meanwhile; prints the port.
start_redis_on_free_port() {
  local dir=$1 port
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    if start_redis "$port" "$dir" 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "error: could not start redis-server (see $dir/redis.log)" >&2
  return 1
}

stop_redis() {
  local port=$1
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}

# Prints a port for a Redis Cluster node: free on 127.0.0.1 together with its cluster bus port
# (port + 10000), both below the kernel's ephemeral range (32768 and up).
free_cluster_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 2700))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
      && ! (exec 3<>"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "error: no free cluster port found" >&2
  return 1
}

# ensure_venv DIR PACKAGE...: a Python virtual environment of its own at DIR (created when
# missing) with the PyPI packages installed (quietly) when any is missing: test tools that
# must not touch the system's Python.
ensure_venv() {
  local dir=$1 pkg missing=()
  shift
  if [ ! -x "$dir/bin/python" ]; then
    echo "==> creating the virtual environment $dir"
    python3 -m venv "$dir"
  fi
  for pkg in "$@"; do
    "$dir/bin/python" -m pip show -q "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "==> installing ${missing[*]} (PyPI) into $dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "${missing[@]}" >/dev/null
  fi
}

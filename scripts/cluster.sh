#!/usr/bin/env bash
# A local Redis Cluster for tests and e2e.sh: 3 masters + 3 replicas of Debian's redis-server
# on 127.0.0.1, with a 1 s cluster-node-timeout so that a replica takes over a dead master in
# a few seconds.
#
# Usage: scripts/cluster.sh start [BASE_PORT]   ports BASE_PORT..BASE_PORT+5 (default: free ones);
#                                               prints the seed list host:port,… on its last line
#        scripts/cluster.sh stop                kills the nodes and removes their directories
#        scripts/cluster.sh seeds               prints the seed list of the running cluster
# The cluster lives in $OTPD_CLUSTER_DIR (default /tmp/otpd-cluster), so several can run at once.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

dir=${OTPD_CLUSTER_DIR:-/tmp/otpd-cluster}

seeds() { sed 's/^/127.0.0.1:/' "$dir/ports" | paste -sd, -; }

stop_cluster() {
  [ -f "$dir/ports" ] || { rm -rf "$dir"; return 0; }
  local port pid
  while read -r port; do
    if [ -f "$dir/$port/redis.pid" ]; then
      pid=$(cat "$dir/$port/redis.pid")
      kill -9 "$pid" 2>/dev/null || true
    fi
  done <"$dir/ports"
  rm -rf "$dir"
}

start_node() {
  local port=$1
  mkdir -p "$dir/$port"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout 1000 \
    --cluster-require-full-coverage no \
    --dir "$dir/$port" --daemonize yes --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log"
}

start_cluster() {
  local base=${1:-} ports=() port
  if [ -e "$dir" ]; then
    echo "error: $dir exists (a cluster runs already? scripts/cluster.sh stop)" >&2
    exit 1
  fi
  mkdir -p "$dir"
  if [ -n "$base" ]; then
    for i in 0 1 2 3 4 5; do ports+=($((base + i))); done
  else
    while ((${#ports[@]} < 6)); do
      port=$(free_cluster_port)
      [[ " ${ports[*]} " == *" $port "* ]] || ports+=("$port")
    done
  fi
  printf '%s\n' "${ports[@]}" >"$dir/ports"
  for port in "${ports[@]}"; do start_node "$port"; done
  for port in "${ports[@]}"; do
    for _ in $(seq 1 100); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.05
    done
  done
  redis-cli --cluster create $(seeds | tr , ' ') --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 \
    || { cat "$dir/create.log" >&2; stop_cluster; exit 1; }
  # Every node must see every slot served before anyone uses the cluster.
  for port in "${ports[@]}"; do
    for i in $(seq 1 200); do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
      if ((i == 200)); then
        echo "error: node $port never reached cluster_state:ok" >&2
        stop_cluster
        exit 1
      fi
      sleep 0.05
    done
  done
  # And every replica must have synced with its master, so a failover can happen at once.
  for port in "${ports[@]}"; do
    for i in $(seq 1 200); do
      info=$(redis-cli -p "$port" info replication 2>/dev/null)
      [[ $info == *role:master* || $info == *master_link_status:up* ]] && break
      if ((i == 200)); then
        echo "error: replica $port never synced with its master" >&2
        stop_cluster
        exit 1
      fi
      sleep 0.05
    done
  done
  echo "==> Redis Cluster up in $dir: 3 masters + 3 replicas" >&2
  seeds
}

case "${1:-}" in
  start) start_cluster "${2:-}" ;;
  stop) stop_cluster ;;
  seeds) seeds ;;
  *)
    echo "usage: $0 start [BASE_PORT] | stop | seeds" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Scale-out benchmark: the hot listing and a comment tree with 0 and 1 read replica, and with
# one and two daemons behind HAProxy, each with the response cache on and off (off: every read
# is a database read, which is what replicas and more daemons are for).
#
#   scripts/bench-scale.sh [STATE_DIR]
#
# STATE_DIR (default /tmp/agora-bench) is a state directory seeded by scripts/bench.sh (the
# `agora seed` defaults). Its private PostgreSQL cluster is started here directly (as the
# postgres user when run as root), a streaming replica of it is made with pg_basebackup -R
# under STATE_DIR/../agora-bench-replica on first use, and every daemon is pointed at them by
# URL. Needs wrk, haproxy, the PostgreSQL server binaries and a release build. Every figure is
# also given as its share of /health/live measured through the same path (direct or proxied)
# in the same configuration. Loopback only; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

state_dir="${1:-/tmp/agora-bench}"
agora="$(realpath "${AGORA_BIN:-${CARGO_TARGET_DIR:-target}/release/agora}")"
duration="${BENCH_DURATION:-10s}"
connections="${BENCH_CONNECTIONS:-64}"
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
replica_dir="$(dirname "$state_dir")/agora-bench-replica"
[ -e "$state_dir/seeded" ] || { echo "seed $state_dir first: scripts/bench.sh" >&2; exit 2; }

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_start() { # data dir, socket dir
    as_pg "$bindir/pg_ctl" -D "$1" -l "$2/server.log" -w -t 120 \
        -o "-c listen_addresses='' -k $2 -c max_connections=200 -c unix_socket_permissions=0700" start >/dev/null
}
pg_stop() { as_pg "$bindir/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1 || true; }

primary_data="$state_dir/postgres/data"
primary_run="$state_dir/postgres/run"
replica_run="$replica_dir/run"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pg_stop "$replica_dir/data"
    pg_stop "$primary_data"
}
trap cleanup EXIT

pg_start "$primary_data" "$primary_run"
if [ ! -e "$replica_dir/data/standby.signal" ]; then
    rm -rf "$replica_dir" && mkdir -p "$replica_run" "$replica_dir/data"
    chmod 700 "$replica_dir/data"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$replica_dir"
    as_pg "$bindir/pg_basebackup" -h "$primary_run" -U agora -D "$replica_dir/data" -R -X stream -c fast
fi
pg_start "$replica_dir/data" "$replica_run"
primary_url="postgres://agora@localhost/agora?host=$primary_run"
replica_url="postgres://agora@localhost/agora?host=$replica_run"

# start_daemon N CACHE_MIB REPLICAS: a daemon on port 1808N with its own state directory.
start_daemon() {
    local n="$1" cache="$2" replicas="$3" dir="/tmp/agora-bench-daemon-$1"
    mkdir -p "$dir"
    AGORA_CONFIG=/dev/null AGORA_PATHS__STATE_DIR="$dir" AGORA_LOG__LEVEL=warn \
        AGORA_SERVER__LISTEN="[\"127.0.0.1:1808$n\"]" AGORA_METRICS__LISTEN="127.0.0.1:1946$n" \
        AGORA_RATE_LIMITS__ENABLED=false AGORA_DATABASE__URL="$primary_url" \
        AGORA_DATABASE__REPLICAS="$replicas" AGORA_CACHE__MAX_MEMORY_MIB="$cache" \
        "$agora" serve >>/tmp/agora-bench-daemons.log 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:1808$n/health/ready" | grep -q '"ready"' && return
        sleep 0.2
    done
    echo "daemon $n did not become ready" >&2
    exit 1
}
stop_daemons() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
start_proxy() { # backends...
    local config=/tmp/agora-bench-haproxy.cfg
    sed -e 's/^    bind :80$/    bind 127.0.0.1:18090/' -e '/^    server /d' -e 's/log stdout format raw local0/log stdout format raw local0 emerg/' \
        packaging/haproxy.cfg >"$config"
    local n=0
    for backend in "$@"; do n=$((n + 1)); echo "    server agora$n $backend" >>"$config"; done
    haproxy -db -f "$config" >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 1 50); do
        curl -fs http://127.0.0.1:18090/health/live >/dev/null && return
        sleep 0.2
    done
}

run() {
    local name="$1" url="$2" out rps p99 errors share
    out=$(wrk --latency -t2 -c"$connections" -d"$duration" --timeout 10s "$url")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    ceiling="${ceiling:-$rps}"
    share=$(awk -v r="$rps" -v c="$ceiling" 'BEGIN { printf "%.1f", 100 * r / c }')
    printf '  %-28s %10s req/s %6s %%   p99 %-9s non-2xx %s\n' "$name" "$rps" "$share" "$p99" "${errors:-0}"
}
replica_reads() {
    curl -fs "http://127.0.0.1:19461/metrics" |
        awk '/^agora_db_reads_routed_total/ { if ($0 ~ /role="replica"/) r += $2; else p += $2 } END { printf "reads routed: %d primary, %d replica\n", p, r }'
}
workloads() { # base URL
    unset ceiling
    run "/health/live (ceiling)" "$1/health/live"
    run "hot listing" "$1/api/v1/posts?sort=hot"
    run "comment tree (post 2)" "$1/api/v1/posts/2/comments"
}

echo "scale-out: $connections connections, $duration per workload, $(nproc) cores shared by everything"
rm -f /tmp/agora-bench-daemons.log
for cache in 64 0; do
    label=$([ "$cache" = 0 ] && echo "cache off" || echo "cache on")
    echo "one daemon, no replica, $label"
    start_daemon 1 "$cache" "[]"
    workloads http://127.0.0.1:18081
    stop_daemons
    echo "one daemon, one replica, $label"
    start_daemon 1 "$cache" "[\"$replica_url\"]"
    sleep 1
    workloads http://127.0.0.1:18081
    echo "  $(replica_reads)"
    stop_daemons
    echo "one daemon behind HAProxy, $label"
    start_daemon 1 "$cache" "[]"
    start_proxy 127.0.0.1:18081
    workloads http://127.0.0.1:18090
    stop_daemons
    echo "two daemons behind HAProxy, $label"
    start_daemon 1 "$cache" "[]"
    start_daemon 2 "$cache" "[]"
    start_proxy 127.0.0.1:18081 127.0.0.1:18082
    workloads http://127.0.0.1:18090
    stop_daemons
done

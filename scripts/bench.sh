#!/usr/bin/env bash
# HTTP benchmark of the hot endpoints over an `agora seed` data set.
#
#   scripts/bench.sh [--shape default|small-community] [STATE_DIR]
#
# STATE_DIR (default /tmp/agora-bench, or /tmp/agora-bench-small for the small shape) holds the
# private PostgreSQL cluster; it is seeded with that shape on first use (the defaults take about
# three minutes, the small community seconds). Needs wrk (apt-get install wrk), pgbench (the
# PostgreSQL server package) and a release build (cargo build --release).
#
# Prints one line per workload: requests/s, p50, p99, non-2xx answers and its share of the
# daemon's own /health/live measured first in the same run (the ceiling: this machine is shared,
# so ratios hold where absolute numbers drift); then pgbench's TPC-B-like rate on the same
# cluster (what votes are compared with), the response cache's hit ratio over the read
# workloads, and the daemon's peak RSS. Loopback only; stops by itself. AGORA_BIN overrides the
# binary, BENCH_DURATION (10s) and BENCH_CONNECTIONS (64) the load.
set -euo pipefail
cd "$(dirname "$0")/.."

shape=default
if [ "${1:-}" = "--shape" ]; then
    shape="${2:?--shape needs default or small-community}"
    shift 2
fi
case "$shape" in
    default) default_dir=/tmp/agora-bench; users=200 ;;
    small-community) default_dir=/tmp/agora-bench-small; users=64 ;;
    *) echo "unknown shape $shape (default, small-community)" >&2; exit 2 ;;
esac
state_dir="${1:-$default_dir}"
agora="${AGORA_BIN:-${CARGO_TARGET_DIR:-target}/release/agora}"
duration="${BENCH_DURATION:-10s}"
connections="${BENCH_CONNECTIONS:-64}"
port=18080
metrics_addr=127.0.0.1:19464

export AGORA_CONFIG=/dev/null AGORA_PATHS__STATE_DIR="$state_dir" AGORA_LOG__LEVEL=warn
export AGORA_SERVER__LISTEN="[\"127.0.0.1:$port\"]" AGORA_METRICS__LISTEN=$metrics_addr
# One load generator on loopback is one client address: the rate limits (their own tests and
# examples/rate_limit_memory.rs measure them) would refuse most of this load.
export AGORA_RATE_LIMITS__ENABLED=false
# The private cluster runs as the postgres user when this runs as root: it must reach the directory.
mkdir -p "$state_dir" && chmod 755 "$state_dir"

if [ ! -e "$state_dir/seeded" ]; then
    "$agora" seed --shape "$shape"
    touch "$state_dir/seeded"
fi

"$agora" serve &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null && break
    sleep 0.2
done

base="http://127.0.0.1:$port/api/v1"
site="http://127.0.0.1:$port"
run() {
    local name="$1"; shift
    local out
    out=$(wrk --latency -t2 -c"$connections" -d"$duration" --timeout 10s "$@")
    local rps p50 p99 errors
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    ceiling="${ceiling:-$rps}"
    share=$(awk -v r="$rps" -v c="$ceiling" 'BEGIN { printf "%.1f", 100 * r / c }')
    printf '%-36s %10s req/s %6s %%   p50 %-9s p99 %-9s non-2xx %s\n' "$name" "$rps" "$share" "$p50" "$p99" "${errors:-0}"
}
cache_counts() {
    curl -fs "http://$metrics_addr/metrics" | awk '
        /^agora_cache_requests_total/ { if ($0 ~ /result="hit"/) hit += $2; else miss += $2 }
        END { printf "%d %d\n", hit, miss }'
}

echo "shape: $shape ($state_dir), $connections connections, $duration per workload"
# The ceiling: what the daemon answers when a request does no work.
run "/health/live (the ceiling)" "$site/health/live"

tokens_file=$(mktemp)
for i in $(seq 1 "$users"); do
    curl -fs -X POST "$base/auth/login" -H 'content-type: application/json' \
        -d "{\"login\":\"user_$i\",\"password\":\"seed-password\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/'
    echo
done >"$tokens_file"
token=$(head -n 1 "$tokens_file")
bearer="Authorization: Bearer $token"
cookie="Cookie: agora_session=$token"

read -r hits_before misses_before <<<"$(cache_counts)"
run "hot listing, anonymous" "$base/posts?sort=hot"
run "hot listing, signed in" -H "$bearer" "$base/posts?sort=hot"
run "one post" "$base/posts/2"
run "one post, signed in" -H "$bearer" "$base/posts/2"
if [ "$shape" = small-community ]; then
    run "comment tree (post 1: 300, 5 deep)" "$base/posts/1/comments?limit=500&max_depth=10"
else
    run "comment tree (post 1: 500 flat)" "$base/posts/1/comments?limit=500&max_depth=10"
    run "busiest thread (post 2, 50 roots)" "$base/posts/2/comments"
    run "community page (hot)" "$base/posts?community=community_1&sort=hot"
    run "community page (new)" "$base/posts?community=community_7&sort=new"
    run "top of the week" "$base/posts?sort=top&t=week"
    run "search, selective (~100 hits)" "$base/search?q=topic%20421"
fi
run "page: front (anonymous)" "$site/"
run "page: front (signed in)" -H "$cookie" "$site/"
run "page: post 1 (anonymous)" "$site/p/1"
run "page: post 1 (signed in)" -H "$cookie" "$site/p/1"
if [ "$shape" = default ]; then
    # The signed-in reader of issue #16: user_1 joins every community and creates more, to 200
    # (a creator is a member), and gets 30 replies and mentions in their inbox.
    for c in $(seq 1 100); do
        curl -fs -o /dev/null -X PUT -H "$bearer" "$base/communities/community_$c/membership" || true
        curl -fs -o /dev/null -X POST -H "$bearer" -H 'content-type: application/json' "$base/communities" \
            -d "{\"name\":\"bench_reader_$c\",\"title\":\"Bench reader $c\"}" || true
    done
    own_post=$(curl -fs -H "$bearer" "$base/users/user_1/posts?limit=1" | sed -E 's/.*"items":\[\{"id":([0-9]+).*/\1/')
    other="Authorization: Bearer $(sed -n 2p "$tokens_file")"
    for i in $(seq 1 30); do
        curl -fs -o /dev/null -X POST -H "$other" -H 'content-type: application/json' "$base/posts/$own_post/comments" \
            -d "{\"body\":\"reply $i for u/user_1\"}" || true
    done
    run "home feed, 200 communities (hot)" -H "$bearer" "$base/posts?feed=subscribed&sort=hot"
    run "home feed, 200 communities (new)" -H "$bearer" "$base/posts?feed=subscribed&sort=new"
    run "page: front = home feed (signed in)" -H "$cookie" "$site/"
    run "unread count (every page's badge)" -H "$bearer" "$base/me/unread"
    run "page: inbox (30 items)" -H "$cookie" "$site/inbox"
    # A reader who filters: user_3 hides the top 3 hot posts, blocks user_2 and filters a
    # keyword (their listing is made for them from the shared pages, refilled), saves 25 posts
    # and has 30 messages from user_2 (sent before the block).
    filtered="Authorization: Bearer $(sed -n 3p "$tokens_file")"
    filtered_cookie="Cookie: agora_session=$(sed -n 3p "$tokens_file")"
    for i in $(seq 1 30); do
        curl -fs -o /dev/null -X POST -H "$other" -H 'content-type: application/json' "$base/messages" \
            -d "{\"to\":\"user_3\",\"body\":\"message $i\"}" || true
    done
    for id in $(curl -fs "$base/posts?sort=hot&limit=3" | grep -oE '\{"id":[0-9]+,"community"' | grep -oE '[0-9]+'); do
        curl -fs -o /dev/null -X PUT -H "$filtered" "$base/posts/$id/hide" || true
    done
    for id in $(curl -fs "$base/posts?sort=new&limit=25" | grep -oE '\{"id":[0-9]+,"community"' | grep -oE '[0-9]+'); do
        curl -fs -o /dev/null -X PUT -H "$filtered" "$base/posts/$id/save" || true
    done
    curl -fs -o /dev/null -X PUT -H "$filtered" "$base/me/blocks/users/user_2" || true
    curl -fs -o /dev/null -X PATCH -H "$filtered" -H 'content-type: application/json' "$base/me" \
        -d '{"filtered_keywords":["topic 7"]}' || true
    run "hot listing, filtering reader" -H "$filtered" "$base/posts?sort=hot"
    run "page: front, filtering reader" -H "$filtered_cookie" "$site/"
    run "saved posts (25)" -H "$filtered" "$base/me/saved"
    run "page: conversation (30 messages)" -H "$filtered_cookie" "$site/messages/user_2"
fi
read -r hits_after misses_after <<<"$(cache_counts)"
hits=$((hits_after - hits_before))
misses=$((misses_after - misses_before))
if [ $((hits + misses)) -gt 0 ]; then
    echo "cache hit ratio over the read workloads: $(awk -v h=$hits -v m=$misses 'BEGIN { printf "%.2f %%", 100 * h / (h + m) }') ($hits hits, $misses misses)"
else
    echo "cache hit ratio over the read workloads: n/a (this binary has no response cache)"
fi

TOKENS_FILE="$tokens_file" run "vote writes" -s scripts/vote.lua "$base"

# What the same cluster does with PostgreSQL's own TPC-B-like transactions, same clients.
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
socket_dir="$state_dir/postgres/run"
if [ -x "$bindir/pgbench" ] && [ -S "$socket_dir/.s.PGSQL.5432" ]; then
    pg=(-h "$socket_dir" -U agora)
    if ! "$bindir/psql" "${pg[@]}" -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'pgbench'" | grep -q 1; then
        "$bindir/createdb" "${pg[@]}" pgbench
        "$bindir/pgbench" "${pg[@]}" -i -q -s 10 pgbench >/dev/null 2>&1
    fi
    tps=$("$bindir/pgbench" "${pg[@]}" -b tpcb-like -c "$connections" -j 2 -T "${duration%s}" pgbench 2>/dev/null |
        awk '/^tps/ {print $3; exit}')
    printf '%-36s %10s tps (same cluster, %s clients)\n' "pgbench -b tpcb-like" "$tps" "$connections"
fi

echo "peak RSS of agora: $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
rm -f "$tokens_file"

#!/usr/bin/env bash
# HTTP benchmark of the hot endpoints over an `agora seed` data set.
#
#   scripts/bench.sh [STATE_DIR]
#
# STATE_DIR (default /tmp/agora-bench) holds the private PostgreSQL cluster; it is seeded with
# the default data set on first use (about three minutes). Needs wrk (apt-get install wrk) and
# a release build (cargo build --release). Prints one line per endpoint: requests/s, p50, p99,
# its share of the daemon's own /health/live measured first in the same run (the ceiling: this
# machine is shared, so ratios hold where absolute numbers drift), and the daemon's peak RSS at
# the end. Loopback only; stops by itself. AGORA_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

state_dir="${1:-/tmp/agora-bench}"
agora="${AGORA_BIN:-${CARGO_TARGET_DIR:-target}/release/agora}"
duration="${BENCH_DURATION:-10s}"
connections="${BENCH_CONNECTIONS:-64}"
port=18080

export AGORA_CONFIG=/dev/null AGORA_PATHS__STATE_DIR="$state_dir" AGORA_LOG__LEVEL=warn
export AGORA_SERVER__LISTEN="[\"127.0.0.1:$port\"]" AGORA_METRICS__LISTEN=127.0.0.1:19464
# One load generator on loopback is one client address: the rate limits (their own tests and
# examples/rate_limit_memory.rs measure them) would refuse most of this load.
export AGORA_RATE_LIMITS__ENABLED=false
# The private cluster runs as the postgres user when this runs as root: it must reach the directory.
mkdir -p "$state_dir" && chmod 755 "$state_dir"

if [ ! -e "$state_dir/seeded" ]; then
    "$agora" seed
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
run() {
    local name="$1"; shift
    local out
    out=$(wrk --latency -t2 -c"$connections" -d"$duration" "$@")
    local rps p50 p99 errors
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    ceiling="${ceiling:-$rps}"
    share=$(awk -v r="$rps" -v c="$ceiling" 'BEGIN { printf "%.1f", 100 * r / c }')
    printf '%-34s %10s req/s %6s %%   p50 %-9s p99 %-9s non-2xx %s\n' "$name" "$rps" "$share" "$p50" "$p99" "${errors:-0}"
}

# The ceiling: what the daemon answers when a request does no work.
run "/health/live (the ceiling)" "http://127.0.0.1:$port/health/live"

# Tokens of 200 seeded users for the vote benchmark.
tokens_file=$(mktemp)
for i in $(seq 1 200); do
    curl -fs -X POST "$base/auth/login" -H 'content-type: application/json' \
        -d "{\"login\":\"user_$i\",\"password\":\"seed-password\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/'
    echo
done >"$tokens_file"

run "front page (hot)" "$base/posts?sort=hot"
run "community page (hot)" "$base/posts?community=community_1&sort=hot"
run "community page (new)" "$base/posts?community=community_7&sort=new"
run "top of the week" "$base/posts?sort=top&t=week"
run "comment tree (post with 500)" "$base/posts/1/comments?limit=500"
run "busiest thread (post 2, 50 roots)" "$base/posts/2/comments"
run "search, selective (~100 hits)" "$base/search?q=topic%20421"
run "search, broad (20% of posts hit)" "$base/search?q=guide%20topic"
TOKENS_FILE="$tokens_file" run "vote writes" -s scripts/vote.lua "$base"

# Pages (HTML) as a browser gets them: anonymous, and signed in (the access token as the
# session cookie; the viewer's votes on the page cost one more query).
site="http://127.0.0.1:$port"
cookie="Cookie: agora_session=$(head -n 1 "$tokens_file")"
run "page: front (anonymous)" "$site/"
run "page: front (signed in)" -H "$cookie" "$site/"
run "page: community (anonymous)" "$site/c/community_1"
run "page: post with 500 comments" "$site/p/1"
run "page: busiest thread, signed in" -H "$cookie" "$site/p/2"
run "page: search" "$site/search?q=topic%20421"

echo "peak RSS of agora: $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
rm -f "$tokens_file"

#!/usr/bin/env bash
# Property-based fuzzing of the whole API from its own OpenAPI document with schemathesis:
# every generated request must get an answer that is not a server error.
#
#   pip install schemathesis && cargo build --release && scripts/fuzz-api.sh [MAX_EXAMPLES]
#
# Runs a release daemon on loopback with its own private database (rate limits off), signs a
# user in, and fuzzes every operation except the two that would revoke that user's token.
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${1:-60}"
agora="${CARGO_TARGET_DIR:-target}/release/agora"
state_dir=$(mktemp -d /tmp/agora-fuzz-XXXXXX)
chmod 755 "$state_dir"
port=18090

export AGORA_CONFIG=/dev/null AGORA_PATHS__STATE_DIR="$state_dir" AGORA_LOG__LEVEL=warn
export AGORA_SERVER__LISTEN="[\"127.0.0.1:$port\"]" AGORA_METRICS__LISTEN=127.0.0.1:19490
export AGORA_RATE_LIMITS__ENABLED=false

"$agora" serve >"$state_dir/agora.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$state_dir"' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null && break
    sleep 0.2
done

token=$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/auth/register" -H 'content-type: application/json' \
    -d '{"username":"fuzzer","email":"fuzzer@example.com","password":"password123"}' |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/')

st run "http://127.0.0.1:$port/api/v1/openapi.json" \
    --checks not_a_server_error \
    -H "Authorization: Bearer $token" \
    --exclude-path /api/v1/auth/logout \
    --exclude-path /api/v1/auth/password-reset/confirm \
    --max-examples "$examples" --workers 2
echo "server errors logged: $(grep -c '"status":5' "$state_dir/agora.log" || true)"

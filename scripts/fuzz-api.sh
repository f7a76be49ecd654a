#!/usr/bin/env bash
# The API contract, checked by schemathesis from Agora's own OpenAPI document with every check
# on (`--checks all`: status codes, content types, response schemas, headers, that schema-valid
# requests are accepted and schema-violating ones refused, and no server errors). The rules a
# JSON Schema cannot state are listed, with their reasons, in schemathesis.toml.
#
#   python3 -m venv ~/.cache/agora-st && ~/.cache/agora-st/bin/pip install 'schemathesis>=4,<5'
#   cargo build --release && ST=~/.cache/agora-st/bin/st scripts/fuzz-api.sh [MAX_EXAMPLES] [SEED]
#
# Runs the daemon ($AGORA_BIN, default the release build) on loopback with its own private
# database (rate limits off), signs a user in, and checks every operation except the two that
# would revoke that user's token. Exits non-zero on any failure. CI runs it bounded
# (a fixed seed, few examples) against the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${1:-100}"
seed="${2:-20261201}"
st="${ST:-st}"
agora="${AGORA_BIN:-${CARGO_TARGET_DIR:-target}/release/agora}"
state_dir=$(mktemp -d /tmp/agora-fuzz-XXXXXX)
chmod 755 "$state_dir"
port="${FUZZ_PORT:-18090}"

export AGORA_CONFIG=/dev/null AGORA_PATHS__STATE_DIR="$state_dir" AGORA_LOG__LEVEL=warn
export AGORA_SERVER__LISTEN="[\"127.0.0.1:$port\"]" AGORA_METRICS__LISTEN="127.0.0.1:$((port + 1400))"
export AGORA_RATE_LIMITS__ENABLED=false

"$agora" serve >"$state_dir/agora.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$state_dir"' EXIT
for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null && break
    sleep 0.2
done

token=$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/auth/register" -H 'content-type: application/json' \
    -d '{"username":"fuzzer","email":"fuzzer@example.com","password":"password123"}' |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/')

# The Python on some machines sets REQUESTS_CA_BUNDLE, which overrides verification settings.
unset REQUESTS_CA_BUNDLE
status=0
"$st" run "http://127.0.0.1:$port/api/v1/openapi.json" \
    --checks all \
    -H "Authorization: Bearer $token" \
    --exclude-path /api/v1/auth/logout \
    --exclude-path /api/v1/auth/password-reset/confirm \
    --max-examples "$examples" --seed "$seed" --workers 2 || status=$?
server_errors=$(grep -c '"status":500' "$state_dir/agora.log" || true)
echo "fuzz-api: internal errors logged: $server_errors"
if [ "$server_errors" != 0 ]; then
    grep '"status":500' "$state_dir/agora.log" | head -n 5
    status=1
fi
exit "$status"

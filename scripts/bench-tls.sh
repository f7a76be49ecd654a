#!/usr/bin/env bash
# Measures what TLS costs: requests/s of /health/live and a small JSON endpoint over plain HTTP
# and over HTTPS (keep-alive, wrk), against the release binary on loopback.
#
#   scripts/bench-tls.sh [path/to/agora]     (default: target/release/agora)
#
# Needs wrk, openssl and the PostgreSQL server binaries (Agora runs its private cluster).
set -euo pipefail
AGORA=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/release/agora}")
OUT=${OUT:-$PWD/target/bench-tls}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
rm -rf "$OUT" && mkdir -p "$OUT/state"
cd "$OUT"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -days 7 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

run() { # scheme port extra-toml
  cat >agora.toml <<TOML
[server]
listen = ["127.0.0.1:$2"]
workers = 2
[metrics]
listen = ""
[paths]
state_dir = "$OUT/state"
[log]
format = "json"
level = "warn"
[rate_limits]
enabled = false
$3
TOML
  "$AGORA" --config agora.toml serve >"daemon-$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 60); do curl -skf "$1://127.0.0.1:$2/health/live" >/dev/null && break; sleep 1; done
  for path in /health/live "/api/v1/communities?limit=1"; do
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "$1://127.0.0.1:$2$path" >/dev/null 2>&1 # warm-up
    printf '%-6s %-28s ' "$1" "$path"
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$1://127.0.0.1:$2$path" |
      awk '/Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} END {printf "%10s req/s  p50 %-8s p99 %s\n", rps, p50, p99}'
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
run http 18080 ""
run https 18443 "[tls]
cert = \"$OUT/cert.pem\"
key = \"$OUT/key.pem\""

#!/usr/bin/env bash
# Scans Agora's HTTPS listener with testssl.sh and sslyze (Mozilla "intermediate" profile), on
# loopback, with a throwaway CA and an ECDSA P-256 leaf certificate.
#
#   scripts/tls-scan.sh [path/to/agora]     (default: target/release/agora)
#
# Needs: openssl, testssl (apt-get install testssl.sh), sslyze (pip install sslyze), and the
# PostgreSQL server binaries (Agora runs its private cluster). Reports go to $OUT (default
# ./target/tls-scan). The scan CA is added to sslyze's trust stores for the run only.
set -euo pipefail
AGORA=${1:-${CARGO_TARGET_DIR:-target}/release/agora}
OUT=${OUT:-$PWD/target/tls-scan}
PORT=${PORT:-18443}
rm -rf "$OUT" && mkdir -p "$OUT/state"
cd "$OUT"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30 \
  -subj "/CN=Agora scan CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >ext.cnf
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 30 -extfile ext.cnf 2>/dev/null

cat >agora.toml <<TOML
[server]
listen = ["127.0.0.1:$PORT"]
public_url = "https://localhost:$PORT"
[metrics]
listen = ""
[paths]
state_dir = "$OUT/state"
[tls]
cert = "$OUT/leaf.pem"
key = "$OUT/leaf.key"
[log]
format = "json"
level = "warn"
TOML
"$AGORA" --config agora.toml serve >daemon.log 2>&1 &
DAEMON=$!
STORES=$(python3 -c 'import os, sslyze; print(os.path.dirname(sslyze.__file__))')/plugins/certificate_info/trust_stores/pem_files
cleanup() {
  kill "$DAEMON" 2>/dev/null || true
  for store in "$STORES"/*.pem; do [ -f "$store.agora-scan" ] && mv "$store.agora-scan" "$store"; done
}
trap cleanup EXIT
for _ in $(seq 60); do curl -skf "https://127.0.0.1:$PORT/health/live" >/dev/null && break; sleep 1; done

testssl --nodns none --quiet --color 0 --warnings off --add-ca "$OUT/ca.pem" "127.0.0.1:$PORT" >testssl.txt 2>&1 || true
for store in "$STORES"/*.pem; do cp "$store" "$store.agora-scan"; cat ca.pem >>"$store"; done
python3 -m sslyze --mozilla_config=intermediate "127.0.0.1:$PORT" --sni localhost >sslyze.txt 2>&1 && SSLYZE=0 || SSLYZE=$?

echo "== testssl: protocols, ciphers, vulnerabilities"
grep -E '^ (SSLv|TLS 1|NPN|ALPN)|offered \(OK\)|not offered|VULNERABLE|NOT ok|Chain of trust|server cipher order' testssl.txt || true
echo "== sslyze (exit $SSLYZE)"
sed -n '/COMPLIANCE AGAINST/,$p' sslyze.txt

#!/usr/bin/env bash
# Release check: the .deb on a clean Debian 12 with systemd as PID 1 (systemd-nspawn --boot),
# PostgreSQL installed inside. Install → active → /health/ready → restart under load refuses
# nothing → backup + verification → upgrade keeps data and config edits → postinst is
# idempotent → remove → purge (state gone, database kept). Every file's owner and mode is
# printed and checked.
#
#   sudo scripts/install-test.sh target/debian/agora_0.1.0-1_amd64.deb [NEWER.deb]
#
# Needs debootstrap and systemd-container. The Debian root is built once into $ROOT
# (≈ 3 min) and copied for each run, so every run starts clean.
set -euo pipefail
DEB=$(realpath "${1:?the .deb to install}")
NEWER=${2:+$(realpath "$2")}
ROOT=${ROOT:-/var/tmp/agora-install-root}
if [ ! -x "$ROOT/usr/bin/systemctl" ]; then
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,curl,ca-certificates,postgresql,procps bookworm "$ROOT"
fi
WORK=$(mktemp -d /var/tmp/agora-install-test.XXXXXX)
R=$WORK/root
cp -a "$ROOT" "$R"
mkdir -p "$R/opt/install-test"
cp "$DEB" "$R/opt/install-test/agora.deb"
[ -n "$NEWER" ] && cp "$NEWER" "$R/opt/install-test/agora-newer.deb"

systemd-nspawn -D "$R" --boot --private-network --register=no --keep-unit --console=pipe >"$WORK/boot.log" 2>&1 &
NSPAWN=$!
cleanup() { kill "$NSPAWN" 2>/dev/null || true; wait "$NSPAWN" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
LEADER=""
for _ in $(seq 100); do
    LEADER=$(pgrep -P "$NSPAWN" | head -n 1 || true)
    [ -n "$LEADER" ] && break
    sleep 0.1
done
[ -n "$LEADER" ] || { echo "FAIL: the container did not boot"; cat "$WORK/boot.log"; exit 1; }
inside() { nsenter -t "$LEADER" -a -- env PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C "$@"; }
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*"; exit 1; }

step "boot (systemd as PID 1)"
for _ in $(seq 100); do
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    case "$state" in running | degraded) break ;; esac
    sleep 0.3
done
echo "system: ${state:-unknown}"
inside sh -c 'ps -p 1 -o comm='
inside systemctl is-active postgresql

step "apt install ./agora.deb"
inside apt-get install -y -q /opt/install-test/agora.deb
inside systemctl is-active agora.socket agora.service agora-backup.timer
for _ in $(seq 50); do inside curl -sf http://127.0.0.1:8080/health/ready >/dev/null && break; sleep 0.2; done
inside curl -sf http://127.0.0.1:8080/health/ready; echo

step "owners and modes"
inside stat -c '%U:%G %a %n' /usr/bin/agora /etc/agora /etc/agora/agora.toml /var/lib/agora /var/lib/agora/backups \
    /usr/lib/systemd/system/agora.service /usr/lib/systemd/system/agora.socket /usr/share/agora/alerts.yml
[ "$(inside stat -c '%U:%G %a' /etc/agora/agora.toml)" = "root:agora 640" ] || fail "conffile owner/mode"
[ "$(inside stat -c '%U:%G %a' /var/lib/agora)" = "agora:agora 750" ] || fail "state dir owner/mode"
inside runuser -u agora -- agora --config /etc/agora/agora.toml doctor || fail "doctor"

step "data, and a local configuration edit"
inside curl -sf -X POST -H 'content-type: application/json' \
    -d '{"username":"install_check","email":"install@example.com","password":"password123"}' \
    http://127.0.0.1:8080/api/v1/auth/register >/dev/null
inside sh -c 'echo "# edited by the operator" >> /etc/agora/agora.toml'

step "systemctl restart agora while a client loops requests"
inside bash -c '
    refused=0; served=0; end=$((SECONDS + 8))
    (sleep 2; systemctl restart agora) &
    while [ $SECONDS -lt $end ]; do
        if curl -sf -o /dev/null --max-time 15 http://127.0.0.1:8080/health/live; then served=$((served + 1)); else refused=$((refused + 1)); fi
    done
    wait
    echo "served $served, refused $refused"
    [ "$refused" = 0 ]' || fail "requests were refused during the restart"

step "systemctl start agora-backup (backup, then verification)"
inside systemctl start agora-backup.service
inside sh -c 'ls -l /var/lib/agora/backups/*.tar && cat /var/lib/agora/backups/status.json'
inside grep -q '"last_verify_at": "' /var/lib/agora/backups/status.json || fail "no verified backup"

step "postinst is idempotent"
inside /var/lib/dpkg/info/agora.postinst configure
inside /var/lib/dpkg/info/agora.postinst configure
inside systemctl is-active agora

if [ -n "$NEWER" ]; then
    step "upgrade keeps data and configuration edits"
    inside apt-get install -y -q -o Dpkg::Options::=--force-confold /opt/install-test/agora-newer.deb
    inside dpkg-query -W agora
    for _ in $(seq 50); do inside curl -sf http://127.0.0.1:8080/health/ready >/dev/null && break; sleep 0.2; done
    inside grep -q "edited by the operator" /etc/agora/agora.toml || fail "the configuration edit was lost"
    inside curl -sf -X POST -H 'content-type: application/json' -d '{"login":"install_check","password":"password123"}' \
        http://127.0.0.1:8080/api/v1/auth/login >/dev/null || fail "the user is gone after the upgrade"
fi

step "remove, then purge"
inside apt-get remove -y -q agora
inside sh -c '! systemctl is-active agora' || fail "agora still runs after remove"
inside test -d /var/lib/agora || fail "remove must keep the state"
inside apt-get purge -y -q agora
inside sh -c '! test -e /var/lib/agora' || fail "purge must remove the state"
inside runuser -u postgres -- psql -Atqc "SELECT datname FROM pg_database WHERE datname = 'agora'" | grep -q agora \
    || fail "purge must keep the database"
echo
echo "install test: all steps passed"

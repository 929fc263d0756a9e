#!/usr/bin/env bash
# The soak and stalled-subscriber drills (issue 11 item 10), server on core 0 and the bench on
# core 1, each server freshly started on its own database, every run in dual mode (each event on
# the WebSocket path and in the Realtime table, set through the admin API by `fanout --dual`):
#
#   1. soak: 1,000 subscribers x 200 events/s for SOAK_MINUTES (10) after SOAK_WARMUP (360 s,
#      longer than the idempotency window): RSS growth after the warm-up < 5%, 0 lost on either path;
#   2. soak: 100 subscribers x 1,000 events/s, the same (HIGH_RATE_SOAK=0 skips it);
#      (LOW_RATE_SOAK=0 skips soak 1, STALL_DRILL=0 the stalled drill, 3.)
#   3. stalled drill: 1,000 readers at STALL_RATE (200) events/s for STALL_SECONDS (120: a
#      never-reading socket first fills the kernel's buffers, about 4 MiB on loopback, before
#      the 10 s send timeout can trip),
#      without and then with STALLED (100) subscribers that never read: the readers' p99
#      ratio (with / without, target <= 1.20) and the stalled ones closed with their reason.
#
#   tools/scripts/soak.sh                                  # release build, full length
#   BIN=/tmp/sy/switchyard BENCH=/tmp/sy/switchyard-bench tools/scripts/soak.sh   # no build
#   PROFILE=debug SOAK_MINUTES=1 SOAK_SUBSCRIBERS=200 STALL_SECONDS=30 tools/scripts/soak.sh
#
# Needs Postgres on 127.0.0.1:5432 (trust auth, user postgres), psql and jq. JSON reports and
# server logs go to OUT (a new temporary directory by default).
set -euo pipefail
cd "$(dirname "$0")/../.."

PROFILE=${PROFILE:-release}
SOAK_MINUTES=${SOAK_MINUTES:-10}
SOAK_SUBSCRIBERS=${SOAK_SUBSCRIBERS:-1000}
SOAK_RATE=${SOAK_RATE:-200}
# The warm-up must outlast the idempotency window (SWITCHYARD_IDEMPOTENCY_WINDOW_S, 300 s): until
# then the id set is still filling (every event id, ~40-75 B each) and RSS grows by design.
SOAK_WARMUP=${SOAK_WARMUP:-360}
LOW_RATE_SOAK=${LOW_RATE_SOAK:-1}
HIGH_RATE_SOAK=${HIGH_RATE_SOAK:-1}
STALL_DRILL=${STALL_DRILL:-1}
STALL_SECONDS=${STALL_SECONDS:-120}
STALL_RATE=${STALL_RATE:-200}
STALL_READERS=${STALL_READERS:-1000}
STALLED=${STALLED:-100}
PORT=${PORT:-18311}
OUT=${OUT:-$(mktemp -d /tmp/soak.XXXXXX)}
KEY=soak-admin-key
DB=switchyard_soak
DB_URL="postgres://postgres@127.0.0.1:5432/$DB"

if [ -z "${BIN:-}" ] || [ -z "${BENCH:-}" ]; then
    if [ "$PROFILE" = release ]; then
        cargo build --release -q -p switchyard -p switchyard-tools
    else
        cargo build -q -p switchyard -p switchyard-tools
    fi
fi
BIN=${BIN:-target/$PROFILE/switchyard}
BENCH=${BENCH:-target/$PROFILE/switchyard-bench}
ulimit -n $((SOAK_SUBSCRIBERS + STALL_READERS + STALLED + 1024)) 2>/dev/null || true
mkdir -p "$OUT"
echo "reports and logs in $OUT"

SERVER=
stop_server() {
    [ -n "$SERVER" ] || return 0
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=
}
trap stop_server EXIT

# Runs "$@" on one core. Measure on a quiet machine: on one where others build,
# pinning does not keep them off the core.
pinned() { # core, command...
    local core=$1; shift
    taskset -c "$core" "$@"
}

start_server() { # label
    stop_server
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" postgres >/dev/null
    # One key opens every subscriber: lift the per-key stream and connection caps. The send
    # timeout stays at its default (10 s): the stalled drill is about that default.
    # taskset directly, not through `pinned`: a function run with `&` is a subshell, and `$!`
    # would name it instead of the server.
    taskset -c 0 env SWITCHYARD_MAX_STREAMS_PER_KEY=100000 SWITCHYARD_MAX_CONNECTIONS=100000 \
        SWITCHYARD_ADMIN_KEY=$KEY MONITORING_HOST=127.0.0.1 MONITORING_PORT=$PORT \
        DATABASE_URL=$DB_URL \
        RUST_LOG=${RUST_LOG:-warn,switchyard::server=info,switchyard::metrics::connections=info} \
        "$BIN" serve >"$OUT/server-$1.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 150); do
        curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && return 0
        sleep 0.2
    done
    echo "the server did not become ready; see $OUT/server-$1.log" >&2
    exit 1
}

bench() { # label, fanout options...
    local label=$1; shift
    pinned 1 "$BENCH" fanout --url "http://127.0.0.1:$PORT" --key $KEY --server-pid "$SERVER" \
        --dual --realtime-database-url "$DB_URL" --json "$@" >"$OUT/$label.json"
}

summary() { # label
    jq -r --arg name "$1" '"== \($name): \(.subscribers) subscribers x \(.rate)/s, \(.duration_s) s
  delivered \(.delivered)/\(.expected) (\(.delivery_ratio * 100 | .*1000 | round / 1000)%), p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, max \(.latency_ms.max) ms; disconnected \(.disconnected), failed POSTs \(.failed_requests), publisher late \(.publisher_late_max_ms | round) ms
  cpu: server \(.server_cpu_percent // 0 | round)%, bench \(.bench_cpu_percent // 0 | round)%
"
  + (if .rss then "  rss: \(.rss.warmed_kib) KiB after warm-up -> \(.rss.end_kib) KiB (\(.rss.growth_percent | .*100 | round / 100)%), max \(.rss.max_kib) KiB, slope \(.rss.slope_kib_per_min // 0 | round) KiB/min\n" else "" end)
  + "  realtime: \(.realtime.expected) acked, \(.realtime.rows) rows, lost \(.realtime.lost); dropped \(.realtime.counters.dropped), quarantined \(.realtime.counters.quarantined), pending max \(.realtime.pending_max)"
  + (if .stalled then "\n  stalled: \(.stalled.subscribers) never read, \(.stalled.closed) closed by the server, \(.stalled.still_open) still open; server counted \(.stalled.server_closes)" else "" end)' \
        "$OUT/$1.json"
}

soak() { # label, subscribers, rate
    start_server "$1"
    bench "$1" --subscribers "$2" --rate "$3" --warmup "$SOAK_WARMUP" \
        --duration "$(awk "BEGIN { print $SOAK_MINUTES * 60 }")" --rss-every 10
    summary "$1"
}

if [ "$LOW_RATE_SOAK" = 1 ]; then
    soak soak-${SOAK_SUBSCRIBERS}x${SOAK_RATE} "$SOAK_SUBSCRIBERS" "$SOAK_RATE"
fi
if [ "$HIGH_RATE_SOAK" = 1 ]; then
    soak soak-100x1000 100 1000
fi

if [ "$STALL_DRILL" != 1 ]; then
    exit 0
fi
for stalled in 0 "$STALLED"; do
    start_server "stall-$stalled"
    bench "stall-$stalled" --subscribers "$STALL_READERS" --rate "$STALL_RATE" --warmup 5 \
        --duration "$STALL_SECONDS" --stalled "$stalled"
    summary "stall-$stalled"
done
jq -rn --slurpfile without "$OUT/stall-0.json" --slurpfile with "$OUT/stall-$STALLED.json" \
    '($with[0].latency_ms.p99 / $without[0].latency_ms.p99) as $r
     | "== readers p99 with \($with[0].stalled.subscribers) stalled / without: \($with[0].latency_ms.p99) / \($without[0].latency_ms.p99) ms = \($r * 1000 | round / 1000) (target <= 1.20: \(if $r <= 1.2 then "met" else "NOT met" end))"'

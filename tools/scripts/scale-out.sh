#!/usr/bin/env bash
# The scale-out benchmark (issue 13): delivered msgs/s and p50/p99 with 1,000 subscribers per
# instance, for one in-process instance and for 1, 2 and 3 instances on one NATS JetStream
# stream, in one run. Events are published to the first instance; every instance's subscribers
# must receive each of them. Needs Postgres on 127.0.0.1:5432 and NATS (-js) on NATS_URL.
#
#   tools/scripts/scale-out.sh                 # release build (the figures in the README)
#   PROFILE=debug RATE=100 tools/scripts/scale-out.sh
#   BIN_DIR=/tmp/sy tools/scripts/scale-out.sh    # binaries built elsewhere
set -euo pipefail
cd "$(dirname "$0")/../.."

PROFILE=${PROFILE:-release}
RATE=${RATE:-200}
DURATION=${DURATION:-10}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
KEY=bench-admin-key
DB=switchyard_scaleout_bench
STREAM=bench_$(date +%s)

# BIN_DIR: a directory holding switchyard and switchyard-bench built elsewhere (no build).
if [ -z "${BIN_DIR:-}" ]; then
    if [ "$PROFILE" = release ]; then
        cargo build --release -q -p switchyard -p switchyard-tools
    else
        cargo build -q -p switchyard -p switchyard-tools
    fi
fi
BIN=${BIN_DIR:-target/$PROFILE}
ulimit -n $((SUBSCRIBERS * 3 + 1024))

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

serve() { # port, extra env...
    local port=$1; shift
    # One key opens every subscriber: lift the per-key stream cap (default 100) for the bench.
    env "$@" SWITCHYARD_MAX_STREAMS_PER_KEY=100000 SWITCHYARD_MAX_CONNECTIONS=100000 \
        SWITCHYARD_ADMIN_KEY=$KEY MONITORING_HOST=127.0.0.1 MONITORING_PORT="$port" \
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" RUST_LOG=warn \
        taskset -c 0 "$BIN/switchyard" serve >"/tmp/scale-out-$port.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && return 0
        sleep 0.2
    done
    echo "instance on $port did not become ready; see /tmp/scale-out-$port.log" >&2
    exit 1
}

bench() { # label, urls...
    local label=$1 first=$2; shift 2
    local also=()
    for url in "$@"; do also+=(--also "$url"); done
    echo "== $label"
    taskset -c 1 "$BIN/switchyard-bench" fanout --url "$first" --key $KEY \
        --subscribers "$SUBSCRIBERS" --rate "$RATE" --duration "$DURATION" "${also[@]}" --json
}

serve 8190
bench "in-process, 1 instance" http://127.0.0.1:8190
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true; PIDS=()

# A stream per run, emptied by retention ten minutes after (its events are of no use later).
NATS=(SWITCHYARD_NATS_URL="$NATS_URL" SWITCHYARD_NATS_STREAM="$STREAM" SWITCHYARD_NATS_MAX_AGE_S=600)
serve 8191 "${NATS[@]}"
bench "NATS, 1 instance" http://127.0.0.1:8191
serve 8192 "${NATS[@]}"
bench "NATS, 2 instances" http://127.0.0.1:8191 http://127.0.0.1:8192
serve 8193 "${NATS[@]}"
bench "NATS, 3 instances" http://127.0.0.1:8191 http://127.0.0.1:8192 http://127.0.0.1:8193

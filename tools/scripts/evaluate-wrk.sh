#!/bin/bash
# Evaluation throughput under wrk (issue 14 item 2; docs/flags-bench.md): the server pinned to
# core 0, wrk to core 1. For each binary, ROUNDS times (alternating with OLD_BIN when given):
# a fresh database, the server (RUST_LOG=warn), one flag seeded through the API with the admin
# key (`bench.wrk`: a 50% rollout; 10 flags in all with the 9 the migrations seed), then
# `GET /health/live`, OFREP single (`bench.wrk`) and OFREP bulk (all 10), each WARMUP s of
# warm-up and DURATION s measured: requests/s, p99, non-2xx answers, server CPU.
# MODES picks the loads (default `live one bulk`); `ingest` posts one event per request to
# `/v1/events` (evaluate-wrk.lua says which; routed by the seeded flags: WebSocket only).
#
#   cargo build --release -p switchyard
#   [BIN=target/release/switchyard] [OLD_BIN=/path/to/baseline/switchyard] [ROUNDS=2] \
#   [DURATION=10] [WARMUP=2] [THREADS=2] [CONNECTIONS=64] [OLD_ENV='NAME=value ...']
#   [NEW_ENV='NAME=value ...'] [MODES='live one bulk ingest'] tools/scripts/evaluate-wrk.sh
# (OLD_BIN=$B BIN=$B OLD_ENV=SWITCHYARD_RUNTIME=multi_thread compares one binary's runtimes.)
#
# Needs wrk (apt-get install wrk), curl, psql; Postgres on 127.0.0.1:5432. Drops and
# recreates the databases evaluate_wrk_new / evaluate_wrk_old.
set -u
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
KEY=wrk-admin-key
FLAG='{"key":"bench.wrk","type":"string","description":"evaluate-wrk.sh: a 50% rollout",
 "variants":{"off":"a","a":"a","b":"b"},
 "environments":{"production":{"enabled":true,"off_variant":"off","default_variant":"a",
   "rollout":{"percentage":50,"variant":"b"}}}}'

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

load() { # label url mode pid
  local label=$1 url=$2 mode=$3 pid=$4
  taskset -c 1 wrk -t"${THREADS:-2}" -c"${CONNECTIONS:-64}" -d"${WARMUP:-2}s" \
    -s "$here/evaluate-wrk.lua" "$url" -- "$mode" "$KEY" >/dev/null
  local before out after
  before=$(cpu_ticks "$pid")
  # wrk's own CPU too: a run whose load tool saturates its core measures the tool.
  local TIMEFORMAT='%U %S %R' timing
  timing=$( { time taskset -c 1 wrk -t"${THREADS:-2}" -c"${CONNECTIONS:-64}" -d"${DURATION:-10}s" \
    --latency -s "$here/evaluate-wrk.lua" "$url" -- "$mode" "$KEY" >"/tmp/evaluate-wrk-$label.out"; } 2>&1 )
  out=$(cat "/tmp/evaluate-wrk-$label.out")
  local wrk_cpu
  wrk_cpu=$(awk '{ printf "%d", ($1 + $2) * 100 / $3 }' <<<"$timing")
  after=$(cpu_ticks "$pid")
  local rps p99 bad cpu
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  cpu=$(( (after - before) * 100 / $(getconf CLK_TCK) / ${DURATION:-10} ))
  printf '%-4s %-13s %10s req/s   p99 %8s   non-2xx %-6s server CPU %s%%   wrk CPU %s%%\n' \
    "$label" "$mode" "$rps" "$p99" "${bad:-0}" "$cpu" "$wrk_cpu"
}

run() { # label binary port env
  local label=$1 bin=$2 port=$3 extra=$4
  local db=evaluate_wrk_$label url=http://127.0.0.1:$3
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" postgres >/dev/null 2>&1
  # shellcheck disable=SC2086 # $extra is a list of NAME=value words
  env SWITCHYARD_ADMIN_KEY=$KEY MONITORING_HOST=127.0.0.1 MONITORING_PORT=$port RUST_LOG=${LOG:-warn} \
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db $extra \
    taskset -c 0 "$bin" serve >"/tmp/evaluate-wrk-$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 120); do curl -sf -o /dev/null "$url/health/live" && break; sleep 0.5; done
  curl -sf -o /dev/null -X POST "$url/v1/flags" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d "$FLAG" || echo "($label: could not seed bench.wrk; is it there already?)"
  sleep 1 # the snapshot reloads on the flag's NOTIFY
  local flags
  flags=$(curl -s -X POST "$url/ofrep/v1/evaluate/flags" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d '{"context":{"targetingKey":"client-1"}}' | grep -o '"key"' | wc -l)
  echo "== $label: $bin ${extra} (pid $pid, $flags flags in the bulk answer)"
  for mode in ${MODES:-live one bulk}; do load "$label" "$url" "$mode" "$pid"; done
  kill "$pid"; wait "$pid" 2>/dev/null
}

for _ in $(seq 1 "${ROUNDS:-2}"); do
  [ -n "${OLD_BIN:-}" ] && run old "$OLD_BIN" 18111 "${OLD_ENV:-}"
  run new "${BIN:-target/release/switchyard}" 18112 "${NEW_ENV:-}"
done

#!/bin/bash
# Instructions per request (user space, load-independent: callgrind counts, so figures taken
# while the machine is busy compare), for the A/B of docs/flags-bench.md:
#   [BIN=target/release/switchyard] [SECONDS_EACH=15] tools/scripts/evaluate-callgrind.sh
# Starts BIN under callgrind (instrumentation off until the server is up and seeded, as
# evaluate-wrk.sh seeds it), then for /health/live, OFREP single and OFREP bulk: zeroes the
# counters, runs wrk (8 connections), dumps, and prints Ir / requests. Profiles are left in
# /tmp/evaluate-cg.<mode>.* for callgrind_annotate --inclusive=yes.
set -u
here=$(cd "$(dirname "$0")" && pwd)
KEY=wrk-admin-key port=18113 db=evaluate_cg url=http://127.0.0.1:18113
FLAG='{"key":"bench.wrk","type":"string","description":"evaluate-wrk.sh: a 50% rollout",
 "variants":{"off":"a","a":"a","b":"b"},
 "environments":{"production":{"enabled":true,"off_variant":"off","default_variant":"a",
   "rollout":{"percentage":50,"variant":"b"}}}}'
rm -f /tmp/evaluate-cg.*
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" postgres >/dev/null 2>&1
SWITCHYARD_ADMIN_KEY=$KEY MONITORING_HOST=127.0.0.1 MONITORING_PORT=$port RUST_LOG=${LOG:-warn} \
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db \
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/evaluate-cg.out \
  "${BIN:-target/release/switchyard}" serve >/tmp/evaluate-cg.log 2>&1 &
pid=$!
for _ in $(seq 1 240); do curl -sf -o /dev/null "$url/health/live" && break; sleep 0.5; done
curl -sf -o /dev/null -X POST "$url/v1/flags" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' -d "$FLAG" || echo "could not seed bench.wrk"
sleep 2
for mode in live one bulk; do
  callgrind_control -i on "$pid" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  out=$(wrk -t1 -c8 -d"${SECONDS_EACH:-15}s" -s "$here/evaluate-wrk.lua" "$url" -- "$mode" "$KEY")
  callgrind_control -d "$mode" "$pid" >/dev/null
  callgrind_control -i off "$pid" >/dev/null
  sleep 1
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  file=$(ls -t /tmp/evaluate-cg.out.* | head -1)
  mv "$file" "/tmp/evaluate-cg.$mode"
  ir=$(awk '/^summary:|^totals:/ {print $2; exit}' "/tmp/evaluate-cg.$mode")
  bad=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "$mode: $requests requests (non-2xx ${bad:-0}), $ir Ir, $(( ir / requests )) Ir/request"
done
kill "$pid"; wait "$pid" 2>/dev/null

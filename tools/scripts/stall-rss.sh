#!/bin/bash
# What a stall of the server costs in memory for good (docs/benchmarks.md, session 6): 1,000
# subscribers at 200 events/s for 45 s; at 20 s the server is stopped (SIGSTOP) for STOP_MS,
# then continued; its RSS is printed every 2 s. Server on core 0, bench on core 1.
#   tools/scripts/stall-rss.sh path/to/switchyard path/to/switchyard-bench [STOP_MS=500]
# EXTRA='NAME=value ...' adds settings to the server's environment.
set -u
BIN=${1:?switchyard binary}; BENCH=${2:?switchyard-bench binary}; STOP=${3:-500}
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS stall_rss WITH (FORCE)" postgres 2>/dev/null
# shellcheck disable=SC2086 # $EXTRA is a list of NAME=value words
env SWITCHYARD_MAX_STREAMS_PER_KEY=20000 SWITCHYARD_ADMIN_KEY=stall-key MONITORING_PORT=18130 \
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/stall_rss RUST_LOG=warn ${EXTRA:-} \
  taskset -c 0 "$BIN" serve >/tmp/stall-rss-server.log 2>&1 &
SP=$!
for _ in $(seq 1 60); do curl -s -o /dev/null http://127.0.0.1:18130/health/live && break; sleep 0.5; done
ulimit -n 20000 2>/dev/null || true
taskset -c 1 "$BENCH" fanout --url http://127.0.0.1:18130 --key stall-key --server-pid $SP \
  --subscribers 1000 --rate 200 --duration 45 --warmup 2 >/tmp/stall-rss-bench.txt 2>&1 &
BP=$!
for i in $(seq 1 25); do
  sleep 2
  echo "t=$((i * 2)) rss=$(awk '/VmRSS/ {print $2}' /proc/$SP/status) KiB"
  if [ "$i" = 10 ]; then
    kill -STOP $SP; sleep "$(awk "BEGIN { print $STOP / 1000 }")"; kill -CONT $SP
    echo "stopped for $STOP ms"
  fi
done
wait $BP; kill $SP; wait $SP 2>/dev/null
grep -E "latency|ratio" /tmp/stall-rss-bench.txt

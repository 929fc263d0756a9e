#!/bin/bash
# A/B fan-out of two switchyard builds, alternated, server on core 0 and the bench on core 1:
# OLD_BIN=path/to/older/switchyard [NEW_BIN=target/debug/switchyard] [RATE=40] tools/scripts/fanout-ab.sh
# (docs/benchmarks.md, "Before and after"). Drops and recreates the databases fanout_ab_old/new.
set -u
run() { # label binary port
  local label=$1 bin=$2 port=$3
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS fanout_ab_$label" postgres >/dev/null 2>&1
  SWITCHYARD_MAX_STREAMS_PER_KEY=20000 SWITCHYARD_ADMIN_KEY=ab-key MONITORING_PORT=$port DATABASE_URL=postgres://postgres@127.0.0.1:5432/fanout_ab_$label RUST_LOG=warn \
    taskset -c 0 $bin serve >/tmp/ab-$label.log 2>&1 &
  local pid=$!
  for i in $(seq 1 60); do curl -s -o /dev/null http://127.0.0.1:$port/health/live && break; sleep 0.5; done
  echo "== $label"
  taskset -c 1 ${BENCH:-target/debug/switchyard-bench} fanout --url http://127.0.0.1:$port --key ab-key --server-pid $pid --subscribers 1000 --rate ${RATE:-40} --duration 10 2>&1 | tail -14
  kill $pid; wait $pid 2>/dev/null
}
for round in 1 2; do
  run old ${OLD_BIN:?path to the older switchyard binary} 18101
  run new ${NEW_BIN:-target/debug/switchyard} 18102
done

#!/bin/bash
# A/B fan-out of two switchyard builds (or one build under two environments), alternated,
# server on core 0 and the bench on core 1:
#   OLD_BIN=path/to/older/switchyard [NEW_BIN=target/debug/switchyard] [RATE=40] [ROUNDS=2] \
#     [OLD_ENV='NAME=value ...'] [NEW_ENV='NAME=value ...'] tools/scripts/fanout-ab.sh
# e.g. the runtime choice alone: OLD_BIN=$B NEW_BIN=$B OLD_ENV=SWITCHYARD_RUNTIME=multi_thread
# (docs/benchmarks.md, "Before and after"). Drops and recreates the databases fanout_ab_old/new.
set -u
run() { # label binary port env
  local label=$1 bin=$2 port=$3 extra=$4
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS fanout_ab_$label WITH (FORCE)" postgres >/dev/null 2>&1
  # shellcheck disable=SC2086 # $extra is a list of NAME=value words
  env SWITCHYARD_MAX_STREAMS_PER_KEY=20000 SWITCHYARD_MAX_CONNECTIONS=100000 SWITCHYARD_ADMIN_KEY=ab-key \
    MONITORING_PORT=$port DATABASE_URL=postgres://postgres@127.0.0.1:5432/fanout_ab_$label RUST_LOG=warn $extra \
    taskset -c 0 "$bin" serve >/tmp/ab-$label.log 2>&1 &
  local pid=$!
  for _ in $(seq 1 60); do curl -s -o /dev/null http://127.0.0.1:$port/health/live && break; sleep 0.5; done
  echo "== $label ${extra}"
  taskset -c 1 "${BENCH:-target/debug/switchyard-bench}" fanout --url http://127.0.0.1:$port --key ab-key --server-pid $pid \
    --subscribers "${SUBSCRIBERS:-1000}" --rate "${RATE:-40}" --duration "${DURATION:-10}" 2>&1 | tail -14
  kill $pid; wait $pid 2>/dev/null
}
ulimit -n 20000 2>/dev/null || true
for _ in $(seq 1 "${ROUNDS:-2}"); do
  run old "${OLD_BIN:?path to the older switchyard binary}" 18101 "${OLD_ENV:-}"
  run new "${NEW_BIN:-target/debug/switchyard}" 18102 "${NEW_ENV:-}"
done

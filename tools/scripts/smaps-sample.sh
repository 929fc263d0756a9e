#!/bin/bash
# Where a process's memory is, every 10 s until it exits (docs/benchmarks.md, session 6: how the
# soak's RSS step was traced to `[heap]`):
#   tools/scripts/smaps-sample.sh PID OUT
# OUT gets one line per sample: seconds since start, total RSS and RSS per kind of mapping
# (KiB; anonymous mappings by size: arena-sized, big, small); OUT.threads the thread count and
# names; OUT.maps the largest mappings.
set -u
pid=${1:?pid}; out=${2:?output file}; t0=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
  t=$(( $(date +%s) - t0 ))
  awk -v t="$t" '
    /^[0-9a-f]+-[0-9a-f]+ / { split($1, a, "-"); size = (strtonum("0x" a[2]) - strtonum("0x" a[1])) / 1024;
       name = $6; if (name == "") name = "anon" (size >= 65536 ? "_arena" : (size >= 8192 ? "_big" : "_small")); key = name; next }
    /^Rss:/ { rss[key] += $2; total += $2 }
    END { printf "%d total=%d", t, total; for (k in rss) if (rss[k] > 0) printf " %s=%d", k, rss[k]; printf "\n" }' \
    "/proc/$pid/smaps" >>"$out"
  echo "$t threads=$(ls "/proc/$pid/task" | wc -l) $(cat /proc/"$pid"/task/*/comm | sort | uniq -c | tr -s ' ' | tr '\n' ',')" >>"$out.threads"
  awk -v t="$t" '/^[0-9a-f]+-[0-9a-f]+ / { m = $1 " " $6 } /^Rss:/ { if ($2 > 512) print t, m, $2 }' \
    "/proc/$pid/smaps" | sort -k3 -n -r | head -8 >>"$out.maps"
  sleep 10
done

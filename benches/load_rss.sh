#!/usr/bin/env bash
# Memory of the load generator: runs `storybench load --scenario launch_mix` with 500 goose
# users for 60 s (users share a pool of connections: the embedded server allows 200) and
# prints storybench's peak RSS (/usr/bin/time -v) against the 100 MB target.
#
# Usage: benches/load_rss.sh [users=500] [seconds=60] [pool=100] [scenario=launch_mix]
# The cluster is $STORYBENCH_DATA_DIR (default .storybench/pgdata); it needs a seeded
# dataset (`storybench seed`) and is stopped at the end only if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-500}
SECS=${2:-60}
POOL=${3:-100}
SCENARIO=${4:-launch_mix}
cargo build --release -q
SB=./target/release/storybench
if $SB db status >/dev/null 2>&1; then STARTED=0; else STARTED=1; fi
URL=$($SB db start | tail -1)
if [ "$STARTED" = 1 ]; then trap '$SB db stop >/dev/null' EXIT; fi
OUT=$(mktemp -d)
/usr/bin/time -v "$SB" --database-url "$URL" load --scenario "$SCENARIO" --users "$USERS" \
  --pool "$POOL" --duration "${SECS}s" --warmup 5s --ramp 5s --out "$OUT/run" \
  >"$OUT/stdout" 2>"$OUT/stderr" || { tail -20 "$OUT/stderr"; exit 1; }
grep -E "^scenario|^goose|^pool wait" "$OUT/stderr" || true
KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$OUT/stderr")
awk -v kb="$KB" -v u="$USERS" -v s="$SECS" 'BEGIN {
  printf "peak RSS of storybench, %d goose users for %d s: %.1f MB (target < 100 MB): %s\n",
    u, s, kb / 1024, (kb / 1024 < 100) ? "ok" : "OVER" }'
rm -rf "$OUT"

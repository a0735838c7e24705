#!/usr/bin/env bash
# Capacity floor: `storybench capacity` on the SELECT 1 scenario (scenarios/select1.toml)
# with 2 goose users must sustain at least 160 transactions/s under p95 < 40 ms. This was a
# timed assertion in tests/load.rs; a speed target belongs here, on a quiet machine.
#
# Usage: benches/capacity_floor.sh [floor=160] [users=2]
# The cluster is $STORYBENCH_DATA_DIR (default .storybench/pgdata); it needs a seeded
# dataset (`storybench seed`) and is stopped at the end only if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
FLOOR=${1:-160}
USERS=${2:-2}
cargo build --release -q
SB=./target/release/storybench
if $SB db status >/dev/null 2>&1; then STARTED=0; else STARTED=1; fi
URL=$($SB db start | tail -1)
OUT=$(mktemp -d)
cleanup() { rm -rf "$OUT"; if [ "$STARTED" = 1 ]; then $SB db stop >/dev/null; fi; }
trap cleanup EXIT
"$SB" --database-url "$URL" capacity --scenario select1 --slo 'p95<40ms' --users "$USERS" \
  --start-rate 10 --max-rate 640 --step-duration 2s --warmup 1s --max-steps 8 \
  --out "$OUT/run" >"$OUT/stdout" 2>"$OUT/stderr" || { cat "$OUT/stderr"; exit 1; }
RATE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["capacity"].get("sustainable_rate") or 0)' "$OUT/run/results.json")
awk -v r="$RATE" -v f="$FLOOR" -v u="$USERS" 'BEGIN {
  printf "SELECT 1, %d goose users: sustainable %.1f/s (floor %d/s): %s\n", u, r, f, (r >= f) ? "ok" : "BELOW";
  exit (r >= f) ? 0 : 1 }'

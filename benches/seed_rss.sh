#!/usr/bin/env bash
# Memory of the seeder: peak RSS (/usr/bin/time -v) of `storybench seed` at each scale, and
# each scale's peak against the first's (goal: the largest ≤ the smallest + 10 %, i.e. memory
# flat in scale: the generator's buffers are bounded per COPY connection, not per dataset).
#
# Usage: benches/seed_rss.sh [scales="1 10"] [profile=default]     e.g. benches/seed_rss.sh "1 10 30"
# Uses its own embedded cluster in a temporary directory, removed at the end. Scale 30 needs
# about 25 GB of free disk.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALES=${1:-"1 10"}
PROFILE=${2:-default}
cargo build --release -q
SB=./target/release/storybench
WORK=$(mktemp -d /tmp/storybench-rss-XXXXXX)
chmod 755 "$WORK"
export STORYBENCH_DATA_DIR="$WORK/pgdata"
URL=$($SB db start 2>/dev/null | tail -1)
cleanup() { $SB db stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
FIRST=""
for s in $SCALES; do
  /usr/bin/time -v "$SB" --database-url "$URL" seed --profile "$PROFILE" --scale "$s" --reset \
    --out "$WORK/seed$s" >"$WORK/stdout" 2>"$WORK/stderr" || { tail -20 "$WORK/stderr"; exit 1; }
  KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/stderr")
  WALL=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$WORK/stderr")
  USER=$(awk -F: '/User time/ {gsub(/ /, "", $2); print $2}' "$WORK/stderr")
  FIRST=${FIRST:-$KB}
  awk -v s="$s" -v kb="$KB" -v f="$FIRST" -v w="$WALL" -v u="$USER" 'BEGIN {
    printf "scale %-4s peak RSS %7.1f MB  (%.2f× the first scale: %s)  wall %s, user CPU %s s\n",
      s, kb / 1024, kb / f, (kb <= f * 1.10) ? "flat" : "GROWS", w, u }'
done

#!/usr/bin/env bash
# Is storybench's load generator the bottleneck? Runs `storybench load --sql 'SELECT 1'`,
# `pgbench -M prepared`, and the goose scenario path on the same statement
# (`storybench load --scenario select1`: goose users, one `SELECT 1` per transaction, every
# request recorded in goose and in storybench's histograms) with the same clients against the
# same embedded server, interleaved (A B C A B C …) so machine noise hits all three. Prints the
# median TPS of each, the ratio ad hoc/pgbench (target ≥ 0.9), and the goose path's own cost
# per request against the ad hoc path.
#
# Usage: benches/load_vs_pgbench.sh [clients=4] [seconds=10] [trials=3]
# The embedded cluster lives in $STORYBENCH_DATA_DIR (default .storybench/pgdata); it is
# stopped at the end only if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-4}
SECONDS_PER_TRIAL=${2:-10}
TRIALS=${3:-3}
cargo build --release -q
SB=./target/release/storybench
if $SB db status >/dev/null 2>&1; then STARTED=0; else STARTED=1; fi
URL=$($SB db start | tail -1)
if [ "$STARTED" = 1 ]; then trap '$SB db stop >/dev/null' EXIT; fi
BINDIR=${PG_BIN:-$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
PGBENCH="$BINDIR/pgbench"
SCRIPT=$(mktemp)
echo 'SELECT 1' > "$SCRIPT"
OUT=$(mktemp -d)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
sb=(); pg=(); gs=()
for t in $(seq "$TRIALS"); do
  s=$($SB --database-url "$URL" load --sql 'SELECT 1' --clients "$CLIENTS" --duration "${SECONDS_PER_TRIAL}s" --warmup 1s --out "$OUT/sb$t" 2>/dev/null | awk '/^tps/{print $2}')
  p=$("$PGBENCH" "$URL" -M prepared -c "$CLIENTS" -j 2 -T "$SECONDS_PER_TRIAL" -n -f "$SCRIPT" 2>/dev/null | awk '/^tps/{print $3}')
  g=$($SB --database-url "$URL" load --scenario select1 --users "$CLIENTS" --duration "${SECONDS_PER_TRIAL}s" --warmup 1s --out "$OUT/gs$t" 2>/dev/null | awk '/^tps/{print $2}')
  echo "trial $t: storybench ad hoc $s tps, pgbench $p tps, goose scenario $g tps"
  sb+=("$s"); pg+=("$p"); gs+=("$g")
done
SB_MED=$(printf '%s\n' "${sb[@]}" | median)
PG_MED=$(printf '%s\n' "${pg[@]}" | median)
GS_MED=$(printf '%s\n' "${gs[@]}" | median)
echo "storybench load --sql 'SELECT 1' --clients $CLIENTS:      median $SB_MED tps"
echo "pgbench -M prepared -c $CLIENTS -j 2:                    median $PG_MED tps"
echo "storybench load --scenario select1 --users $CLIENTS (goose): median $GS_MED tps"
awk -v a="$SB_MED" -v b="$PG_MED" 'BEGIN { printf "ratio storybench/pgbench = %.3f (target >= 0.9)\n", a / b }'
# Each client does one request at a time: a request takes clients/tps; the difference is
# what goose user scheduling and its metrics add to each request.
awk -v g="$GS_MED" -v a="$SB_MED" -v c="$CLIENTS" 'BEGIN {
  printf "goose scenario path: %.3f of the ad hoc TPS; %.1f us per request vs %.1f us ad hoc: goose costs %+.1f us per request\n",
    g / a, c / g * 1e6, c / a * 1e6, (c / g - c / a) * 1e6 }'
rm -rf "$SCRIPT" "$OUT"

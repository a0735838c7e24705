#!/usr/bin/env bash
# Is storybench's load generator the bottleneck? Runs `storybench load --sql 'SELECT 1'`
# and `pgbench -M prepared` with the same clients against the same embedded server,
# interleaved (A B A B …) so machine noise hits both, and prints the median TPS of each
# and the ratio storybench/pgbench (target ≥ 0.9). When the goose scenario path exists it
# is measured on the same statement too (its own cost per request vs the ad hoc path).
#
# Usage: benches/load_vs_pgbench.sh [clients=4] [seconds=10] [trials=3]
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-4}
SECONDS_PER_TRIAL=${2:-10}
TRIALS=${3:-3}
cargo build --release -q
SB=./target/release/storybench
URL=$($SB db start | tail -1)
trap '$SB db stop >/dev/null' EXIT
BINDIR=${PG_BIN:-$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
PGBENCH="$BINDIR/pgbench"
SCRIPT=$(mktemp)
echo 'SELECT 1' > "$SCRIPT"
OUT=$(mktemp -d)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
sb=(); pg=()
for t in $(seq "$TRIALS"); do
  s=$($SB --database-url "$URL" load --sql 'SELECT 1' --clients "$CLIENTS" --duration "${SECONDS_PER_TRIAL}s" --warmup 1s --out "$OUT/sb$t" 2>/dev/null | awk '/^tps/{print $2}')
  p=$("$PGBENCH" "$URL" -M prepared -c "$CLIENTS" -j 2 -T "$SECONDS_PER_TRIAL" -n -f "$SCRIPT" 2>/dev/null | awk '/^tps/{print $3}')
  echo "trial $t: storybench $s tps, pgbench $p tps"
  sb+=("$s"); pg+=("$p")
done
SB_MED=$(printf '%s\n' "${sb[@]}" | median)
PG_MED=$(printf '%s\n' "${pg[@]}" | median)
echo "storybench load --sql 'SELECT 1' --clients $CLIENTS: median $SB_MED tps"
echo "pgbench -M prepared -c $CLIENTS -j 2:               median $PG_MED tps"
awk -v a="$SB_MED" -v b="$PG_MED" 'BEGIN { printf "ratio storybench/pgbench = %.3f (target >= 0.9)\n", a / b }'
rm -rf "$SCRIPT" "$OUT"

#!/usr/bin/env bash
# Seeding speed against its physical limit: the whole `storybench seed` command's wall time
# (process start to exit: load, keys, indexes, ANALYZE, fingerprint and seal) vs `pg_restore -j <cores>` of a `pg_dump -Fd` of the very same dataset into an empty
# database on the same server. Prints both times and the ratio restore/seed (target ≥ 1.0),
# and `pgbench -i`'s MB/s for reference (narrow rows, not comparable on MB/s).
#
# Usage: benches/seed_vs_restore.sh [--scale 10] [--profile default] [--toast lz4|pglz] [--trials 3]
#    or: benches/seed_vs_restore.sh [scale=10] [profile=default] [toast=server default|lz4|pglz] [trials=3]
# Scale 10 of the default profile is about 4 GB on disk, scale 30 about 12 GB (`--scale 30` to ask). Seed and restore alternate (seed,
# restore, seed, restore, …) so machine noise hits both; the ratio is of the medians. Uses
# its own embedded cluster in a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=10; PROFILE=default; TOAST=""; TRIALS=3
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
  SCALE=${1:-10}; PROFILE=${2:-default}; TOAST=${3:-}; TRIALS=${4:-3}; shift $#
fi
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    --toast) TOAST=$2; shift 2 ;;
    --trials) TRIALS=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
CORES=$(nproc)
cargo build --release -q
SB=./target/release/storybench
WORK=$(mktemp -d /tmp/storybench-restore-XXXXXX)
chmod 755 "$WORK"
DATA="$WORK/pgdata"
export STORYBENCH_DATA_DIR="$DATA"
URL=$($SB db start 2>/dev/null | tail -1)
cleanup() { $SB db stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
BINDIR=${PG_BIN:-$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
# As root the dump directory must be writable by nobody special; pg_dump runs as us.
base="${URL%%\?*}"; query="${URL#*\?}"
url_for() { echo "${base%/*}/$1?$query"; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
seed_times=(); restore_times=()
for t in $(seq "$TRIALS"); do
  echo "== trial $t: storybench seed --profile $PROFILE --scale $SCALE --jobs $CORES ${TOAST:+--toast-compression $TOAST}"
  S0=$(date +%s.%N)
  $SB --database-url "$URL" seed --profile "$PROFILE" --scale "$SCALE" --jobs "$CORES" --reset ${TOAST:+--toast-compression "$TOAST"} --out "$WORK/seed$t" 2>&1 | grep -E "^seeded|^fingerprint"
  S1=$(date +%s.%N)
  seed_times+=("$(echo "$S1 - $S0" | bc)")
  if [ "$t" = 1 ]; then
    SIZE=$("$BINDIR/psql" -X -At "$URL" -c "select pg_database_size(current_database())")
    echo "database $(numfmt --to=iec "$SIZE"); pg_dump -Fd -j $CORES of it"
    "$BINDIR/pg_dump" -Fd -j "$CORES" -f "$WORK/dump" "$URL"
  fi
  echo "== trial $t: pg_restore -j $CORES into an empty database"
  "$BINDIR/psql" -X -q "$(url_for postgres)" -c "DROP DATABASE IF EXISTS restore_target" -c "CREATE DATABASE restore_target"
  R0=$(date +%s.%N)
  "$BINDIR/pg_restore" -j "$CORES" -d "$(url_for restore_target)" "$WORK/dump"
  R1=$(date +%s.%N)
  restore_times+=("$(echo "$R1 - $R0" | bc)")
  "$BINDIR/psql" -X -q "$(url_for postgres)" -c "DROP DATABASE restore_target"
  echo "trial $t: seed ${seed_times[-1]} s, pg_restore ${restore_times[-1]} s"
done
SEED_S=$(printf '%s\n' "${seed_times[@]}" | median)
RESTORE_S=$(printf '%s\n' "${restore_times[@]}" | median)

echo "== pgbench -i -s 20 (reference: narrow rows)"
"$BINDIR/psql" -X -q "$(url_for postgres)" -c "DROP DATABASE IF EXISTS pgbench_ref" -c "CREATE DATABASE pgbench_ref"
P0=$(date +%s.%N)
"$BINDIR/pgbench" -i -s 20 -q "$(url_for pgbench_ref)" >/dev/null 2>&1
P1=$(date +%s.%N)
PSIZE=$("$BINDIR/psql" -X -At "$(url_for pgbench_ref)" -c "select pg_database_size(current_database())")
"$BINDIR/psql" -X -q "$(url_for postgres)" -c "DROP DATABASE pgbench_ref"

python3 - "$SEED_S" "$RESTORE_S" "$SIZE" "$(echo "$P1 - $P0" | bc)" "$PSIZE" "$SCALE" <<'PY'
import sys
seed, restore, size, pg_s, pg_size, scale = map(float, sys.argv[1:])
mb = 1024 * 1024
print(f"storybench seed:  {seed:7.1f} s (median, whole command)  {size / mb / seed:6.1f} MB/s  ({size / mb:.0f} MB)")
print(f"pg_restore -j:    {restore:7.1f} s (median)  {size / mb / restore:6.1f} MB/s")
print(f"pgbench -i -s 20: {pg_s:7.1f} s  {pg_size / mb / pg_s:6.1f} MB/s  (reference, narrow rows)")
r = restore / seed
print(f"scale {scale:g}: ratio restore/seed = {r:.2f} (goal >= 1.0: {'met' if r >= 1.0 else 'NOT met'})")
PY

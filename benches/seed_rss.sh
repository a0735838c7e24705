#!/usr/bin/env bash
# Memory of the seeder: peak RSS (/usr/bin/time -v, "Maximum resident set size") of the whole
# `storybench seed` command at each scale, each into its own empty database, and the largest
# scale's peak against the smallest's (goal: ≤ 1.10, memory flat in scale: the generator's
# buffers are bounded per COPY connection, not per dataset). With --run, also the peak RSS of
# a whole scale-1 `storybench run` into an empty database of its own (its seed included, as on
# a fresh machine).
#
# Usage: benches/seed_rss.sh [--scales 1,10,30] [--profile default] [--run] [--run-args "ARGS"]
#   --scales     scales to seed (default 1,10,30; scale 30 needs about 25 GB of free disk)
#   --profile    seed profile (default: default)
#   --run        also a scale-1 `run` of the profile (about 7 minutes at scale 1)
#   --run-args   extra arguments for that run (e.g. "--quick" for a short check)
# The old form `benches/seed_rss.sh "1 10" [profile]` still works. Uses its own embedded
# cluster in a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALES="1,10,30"
PROFILE=default
RUN=""
RUN_ARGS=""
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
  SCALES=$1; PROFILE=${2:-default}; shift $#
fi
while [ $# -gt 0 ]; do
  case "$1" in
    --scales) SCALES=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    --run) RUN=1; shift ;;
    --run-args) RUN_ARGS=$2; RUN=1; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
SCALES=$(echo "$SCALES" | tr ', ' '\n\n' | grep -v '^$' | sort -g | uniq | tr '\n' ' ')
cargo build --release -q
SB=./target/release/storybench
WORK=$(mktemp -d /tmp/storybench-rss-XXXXXX)
chmod 755 "$WORK"
export STORYBENCH_DATA_DIR="$WORK/pgdata"
URL=$($SB db start 2>/dev/null | tail -1)
cleanup() { $SB db stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
BINDIR=${PG_BIN:-$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
base="${URL%%\?*}"; query="${URL#*\?}"
url_for() { if [ "$query" = "$URL" ]; then echo "${base%/*}/$1"; else echo "${base%/*}/$1?$query"; fi; }

# Runs storybench under /usr/bin/time -v; prints "KB WALL USER" of the process.
measured() {
  local log="$WORK/time.$RANDOM"
  /usr/bin/time -v "$SB" "$@" >"$log.out" 2>"$log" || { tail -20 "$log" >&2; return 1; }
  awk -F': ' '/Maximum resident set size/ {kb=$2} /Elapsed \(wall clock\)/ {w=$2}
    /User time/ {u=$2} END {print kb, w, u}' "$log"
}

FIRST=""; FIRST_SCALE=""; LAST=""; LAST_SCALE=""
for s in $SCALES; do
  db="rss_scale_$(echo "$s" | tr . p)"
  "$BINDIR/psql" -X -q "$(url_for postgres)" -c "CREATE DATABASE $db"
  R=$(measured --database-url "$(url_for "$db")" seed --profile "$PROFILE" --scale "$s" \
    --out "$WORK/seed$s")
  read -r KB WALL USER <<<"$R"
  FIRST=${FIRST:-$KB}; FIRST_SCALE=${FIRST_SCALE:-$s}
  LAST=$KB; LAST_SCALE=$s
  awk -v s="$s" -v kb="$KB" -v w="$WALL" -v u="$USER" 'BEGIN {
    printf "seed scale %-4s peak RSS %7.1f MB  wall %s, user CPU %s s\n", s, kb / 1024, w, u }'
done
if [ "$LAST_SCALE" != "$FIRST_SCALE" ]; then
  awk -v a="$FIRST" -v b="$LAST" -v sa="$FIRST_SCALE" -v sb="$LAST_SCALE" 'BEGIN {
    r = b / a
    printf "ratio peak RSS scale-%s / scale-%s = %.2f (goal <= 1.10: %s)\n", sb, sa, r,
      (r <= 1.10) ? "met" : "NOT met" }'
fi
if [ -n "$RUN" ]; then
  "$BINDIR/psql" -X -q "$(url_for postgres)" -c "CREATE DATABASE rss_run"
  # shellcheck disable=SC2086 # RUN_ARGS is a list of arguments
  R=$(measured --database-url "$(url_for rss_run)" run --profile "$PROFILE" --scale 1 \
    --out "$WORK/run" $RUN_ARGS)
  read -r KB WALL USER <<<"$R"
  awk -v kb="$KB" -v w="$WALL" -v u="$USER" -v a="$RUN_ARGS" 'BEGIN {
    printf "run scale 1 %s peak RSS %7.1f MB  wall %s, user CPU %s s\n", a, kb / 1024, w, u }'
fi

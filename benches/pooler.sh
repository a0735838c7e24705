#!/usr/bin/env bash
# Direct connections against pgbouncer at the document's 200-connection limit, with more app
# users than connections: one open-model load of a scenario at one rate, four ways, side by
# side in one run on one dataset:
#   direct       every user owns a server connection (beyond 200 the server refuses them)
#   app pool     the users share a client-side pool of POOL connections (storybench --pool)
#   transaction  pgbouncer transaction pooling, POOL server connections (Supabase's 6543)
#   session      pgbouncer session pooling, POOL server connections
# Prints throughput, p95, the time waiting for a server connection and the errors of each.
#
# Usage: benches/pooler.sh [users=500] [rate=150] [scenario=bedtime] [duration=20s] [pool=190] [scale=1]
# Uses its own embedded cluster in a temporary directory (removed at the end); every arm
# runs on its own pristine copy of the same seeded dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-500}
RATE=${2:-150}
SCENARIO=${3:-bedtime}
DURATION=${4:-20s}
POOL=${5:-190}
SCALE=${6:-1}
cargo build --release -q
SB=./target/release/storybench
WORK=$(mktemp -d /tmp/storybench-pooler-XXXXXX)
chmod 755 "$WORK"
export STORYBENCH_DATA_DIR="$WORK/pgdata"
cleanup() { $SB db stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
# pgbouncer and 500 client sockets need file descriptors.
ulimit -n 8192 2>/dev/null || true
$SB seed --scale "$SCALE" --anchor 2026-11-01 --out "$WORK/seed" >/dev/null 2>&1
common=(load --scenario "$SCENARIO" --users "$USERS" --rate "$RATE" --duration "$DURATION" --warmup 3s --statement-timeout 10s)
arm() {
  local name=$1; shift
  echo "== $name: storybench ${common[*]} $*" >&2
  $SB "${common[@]}" "$@" --out "$WORK/$name" >"$WORK/$name.log" 2>&1 || echo "   ($name exited $?; see its results)" >&2
}
arm direct
arm app_pool --pool "$POOL"
arm transaction --pooler pgbouncer:transaction --pooler-size "$POOL"
arm session --pooler pgbouncer:session --pooler-size "$POOL"
python3 - "$WORK" "$USERS" "$POOL" "$RATE" <<'PY'
import json, os, sys
work, users, pool, rate = sys.argv[1:]
print(f"\n{users} app users, {pool} connections (server max_connections 200), open model at {rate}/s")
print(f"{'arm':<12} {'tps':>7} {'ok':>7} {'failed':>7} {'p95 ms':>9} {'wait for a connection':>26}  errors")
for arm in ["direct", "app_pool", "transaction", "session"]:
    path = os.path.join(work, arm, "results.json")
    if not os.path.exists(path):
        print(f"{arm:<12} (no results)"); continue
    load = json.load(open(path)).get("load") or {}
    f = load.get("figures", {})
    p95 = (f.get("transaction_latency") or {}).get("p95_ms")
    wait = "-"
    if arm == "app_pool" and f.get("pool_wait"):
        wait = f"p50 {f['pool_wait']['p50_ms']:.2f} / p99 {f['pool_wait']['p99_ms']:.2f} ms"
    pl = (load.get("pooler") or {}).get("stats")
    if pl:
        wait = f"{pl['wait_ms_per_transaction']:.2f} ms per transaction"
    g = load.get("goose") or {}
    errs = ", ".join(f"{e['sqlstate']}×{e['count']}" for e in f.get("errors", [])[:3])
    if g.get("reconnect_failures"):
        errs = (errs + ", " if errs else "") + f"{g['reconnect_failures']} connections refused"
    p95s = f"{p95:.2f}" if p95 is not None else "-"
    print(f"{arm:<12} {f.get('tps', 0):>7.1f} {f.get('ok', 0):>7} {f.get('failed', 0):>7} {p95s:>9} {wait:>26}  {errs or 'none'}")
PY

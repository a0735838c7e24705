#!/usr/bin/env bash
# A/A stability: the same `storybench run` N times on the same data, then
#   (a) every pairwise `storybench compare A B`: exit code and flagged metrics (goal: 0),
#   (b) the headline verdicts of each run (best index strategy, RLS advice, partitions
#       verdict) and whether they agree (numbers aside),
#   (c) the capacity answers (the interpolated SLO crossing, which compare gates) and their
#       spread, max/min − 1 (goal: ≤ 10 %).
# Exits 0 when every goal is met, 1 otherwise.
#
# Usage: benches/aa_stability.sh [-n N] [-o DIR] [RUN OPTIONS...]
#   benches/aa_stability.sh                 # 3 full scale-1 runs (about 10 minutes each)
#   benches/aa_stability.sh --quick         # 3 smoke runs (the figures mean little)
#   benches/aa_stability.sh -n 5 --scale 1 --data-dir /tmp/aa/pgdata
# RUN OPTIONS go to every `storybench run`; --anchor defaults to 2026-06-01 (the same data
# every time) and the embedded cluster to DIR/pgdata. STORYBENCH overrides the binary.
set -uo pipefail

N=3
ROOT="/tmp/aa-stability-$(date +%Y%m%d-%H%M%S)"
while [ $# -gt 0 ]; do
    case "$1" in
        -n) N="$2"; shift 2 ;;
        -o) ROOT="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
ARGS=("$@")
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${STORYBENCH:-$HERE/target/release/storybench}"
if [ ! -x "$BIN" ]; then
    (cd "$HERE" && cargo build --release) || exit 2
fi
mkdir -p "$ROOT" && chmod 755 "$ROOT" # the embedded server runs as postgres when root
has() { local a; for a in "${ARGS[@]}"; do [ "$a" = "$1" ] && return 0; done; return 1; }
has --anchor || ARGS+=(--anchor 2026-06-01)
has --data-dir || has --database-url || [ -n "${DATABASE_URL:-}" ] || ARGS+=(--data-dir "$ROOT/pgdata")

# JSON: jq when installed, else python3. Each helper prints one line (or "-").
if command -v jq >/dev/null; then
    j() { jq -r "$2" "$1" 2>/dev/null || echo -; }
    best_strategy() { j "$1" '(.explain.overall // []) | max_by(.geomean_speedup) // {} | "\(.strategy // "-") (geomean \(.geomean_speedup // 0 | . * 100 | round / 100)×, fastest on \(.queries_fastest // "?"))"'; }
    rls_advice() { j "$1" '.rls.recommended_policy_set // "-"'; }
    partitions_verdict() { j "$1" '(.partitions.verdicts // []) | map(select(test("^Over .*analytics queries"))) | .[0] // "-"'; }
    capacity() { j "$1" '.capacity | "\(.sustainable_rate // 0) \(.sustainable_low // 0) \(.sustainable_high // 0) \(.crossing_rate // .sustainable_rate // 0)"'; }
    flags() { j "$1" 'if (.regressions | type) == "number" then "\(.regressions) \(.improvements // "?") \(.metrics // "?")"
        else "\(([.deltas[]? | select(.regression)] | length) + ((.plan_regressions // []) | length)) \([.deltas[]? | select(.improvement)] | length) \((.deltas // []) | length)" end'; }
else
    py() { python3 - "$1" "$2" <<'PY' 2>/dev/null || echo -
import json, re, sys
r = json.load(open(sys.argv[1])); what = sys.argv[2]
def get(*path):
    x = r
    for p in path:
        x = x.get(p) if isinstance(x, dict) else None
    return x
if what == "best":
    o = get("explain", "overall") or []
    b = max(o, key=lambda s: s.get("geomean_speedup", 0)) if o else {}
    print(f'{b.get("strategy", "-")} (geomean {round(b.get("geomean_speedup", 0), 2)}×, fastest on {b.get("queries_fastest", "?")})')
elif what == "advice":
    print(get("rls", "recommended_policy_set") or "-")
elif what == "partitions":
    v = get("partitions", "verdicts") or []
    print(next((x for x in v if re.match(r"^Over .*analytics queries", x)), "-"))
elif what == "capacity":
    c = r.get("capacity") or {}
    print(*(c.get(k) or 0 for k in ("sustainable_rate", "sustainable_low", "sustainable_high")),
          c.get("crossing_rate") or c.get("sustainable_rate") or 0)
elif what == "flags":
    if isinstance(r.get("regressions"), int):
        print(r["regressions"], r.get("improvements", "?"), r.get("metrics", "?"))
    else:
        d = r.get("deltas") or []
        print(sum(1 for x in d if x.get("regression")) + len(r.get("plan_regressions") or []),
              sum(1 for x in d if x.get("improvement")), len(d))
PY
    }
    best_strategy() { py "$1" best; }
    rls_advice() { py "$1" advice; }
    partitions_verdict() { py "$1" partitions; }
    capacity() { py "$1" capacity; }
    flags() { py "$1" flags; }
fi

echo "A/A stability: $N × storybench run ${ARGS[*]}  (output in $ROOT)"
for i in $(seq 1 "$N"); do
    start=$(date +%s)
    "$BIN" run "${ARGS[@]}" --out "$ROOT/run$i" >"$ROOT/run$i.log" 2>&1
    rc=$?
    echo "  run $i: exit $rc in $(( $(date +%s) - start )) s (log $ROOT/run$i.log)"
done

ok=1
echo
echo "(a) pairwise compare (goal: exit 0, 0 flagged)"
for i in $(seq 1 "$N"); do
    for k in $(seq $((i + 1)) "$N"); do
        out="$ROOT/compare-$i-$k.json"
        "$BIN" compare "$ROOT/run$i/results.json" "$ROOT/run$k/results.json" --format json >"$out" 2>"$out.err"
        rc=$?
        read -r flagged better total <<<"$(flags "$out")"
        echo "  run $i vs run $k: exit $rc, ${flagged:--} flagged (${better:--} better) of ${total:--} metrics"
        [ "$rc" = 0 ] && [ "${flagged:-x}" = 0 ] || ok=0
    done
done

# Verdicts agree when their words agree: numbers are measurements, not verdicts.
words() { sed -E 's/[-+]?[0-9][0-9.,]*//g'; }
agree() { # label, helper
    local label="$1" fn="$2" i first="" same=1 v
    echo "  $label:"
    for i in $(seq 1 "$N"); do
        v="$($fn "$ROOT/run$i/results.json")"
        echo "    run $i: $v"
        if [ "$fn" = best_strategy ]; then v="${v%% *}"; else v="$(words <<<"$v")"; fi
        if [ -z "$first" ]; then first="$v"; elif [ "$v" != "$first" ]; then same=0; fi
    done
    if [ $same = 1 ]; then echo "    → agree"; else echo "    → DISAGREE"; ok=0; fi
}
echo
echo "(b) headline verdicts (goal: all agree)"
agree "best index strategy (explain overall: highest geomean speed-up over the baseline)" best_strategy
agree "RLS policy set to use (lowest read overhead over bypass)" rls_advice
agree "partitions verdict" partitions_verdict

echo
echo "(c) capacity (goal: spread ≤ 10 %)"
rates=()
for i in $(seq 1 "$N"); do
    read -r rate low high crossing <<<"$(capacity "$ROOT/run$i/results.json")"
    echo "  run $i: SLO crossed at ${crossing:--}/s, sustainable ${rate:--}/s, capacity in [${low:--}, ${high:--}]/s"
    # The crossing is what compare gates (the sustainable rate is the search's grid).
    rates+=("${crossing:-0}")
done
spread=$(printf '%s\n' "${rates[@]}" | awk 'NR==1{mn=$1;mx=$1} {if($1<mn)mn=$1; if($1>mx)mx=$1}
    END{if(mn>0) printf "%.1f", (mx/mn-1)*100; else print "inf"}')
echo "  spread max/min − 1: $spread %"
awk -v s="$spread" 'BEGIN{exit !(s != "inf" && s + 0 <= 10)}' || ok=0

echo
if [ $ok = 1 ]; then echo "A/A: every goal met"; exit 0; else echo "A/A: some goal missed (see above)"; exit 1; fi

#!/usr/bin/env bash
# Analysis commands on a large ledger: every command of the analysis core (report with
# --allocated and --compare, showback, tags audit, budgets, anomalies, forecast, kpi,
# maturity) timed on a ledger of LEDGER_ROWS FOCUS records, with a policy that has shared
# costs and budgets. The target: each answers in under 1 s (docs/benchmarks.md).
#
# Usage: bench/analysis_bench.sh
# Knobs (environment):
#   DATA_DIR=/tmp/aifinops-bench   where focus_5m.csv is (bench/ingest_bench.sh makes it)
#   CSV=$DATA_DIR/focus_5m.csv     the FOCUS file to ingest (once; the ledger is kept)
#   LEDGER=$DATA_DIR/analysis_5m.db
#   AIFINOPS=<repo>/build/release/aifinops
#   RUNS=3                         runs per command; the median is reported
#   LIMIT_MS=1000                  a command slower than this fails the run
# Needs: GNU time (/usr/bin/time), python3.
set -u -o pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${DATA_DIR:-/tmp/aifinops-bench}"
CSV="${CSV:-$DATA_DIR/focus_5m.csv}"
LEDGER="${LEDGER:-$DATA_DIR/analysis_5m.db}"
AIFINOPS="${AIFINOPS:-$REPO/build/release/aifinops}"
RUNS="${RUNS:-3}"
LIMIT_MS="${LIMIT_MS:-1000}"

[ -x "$AIFINOPS" ] || { echo "build first: make build (no $AIFINOPS)" >&2; exit 1; }
if [ ! -f "$LEDGER" ]; then
  [ -f "$CSV" ] || { echo "no $CSV: run bench/ingest_bench.sh once to generate it" >&2; exit 1; }
  echo "ingesting $CSV into $LEDGER (once)..." >&2
  "$AIFINOPS" ingest "$CSV" --db "$LEDGER" >/dev/null || exit 1
fi

# The policy: the benchmark data's teams, untagged spend shared by everyone, budgets.
POLICY="$DATA_DIR/analysis_policy.yaml"
teams=$("$AIFINOPS" report --db "$LEDGER" --by team --format csv | tail -n +2 | cut -d, -f1 |
        grep -v '^(none)$' | paste -sd, -)
last_month=$("$AIFINOPS" report --db "$LEDGER" --by month --format csv | tail -n +2 | cut -d, -f1 | sort | tail -1)
prev_month=$("$AIFINOPS" report --db "$LEDGER" --by month --format csv | tail -n +2 | cut -d, -f1 | sort | tail -2 | head -1)
{
  echo "dimensions:"
  echo "  team: {required: true, allowed: [${teams}]}"
  echo "  environment: {required: true}"
  echo "shared_costs:"
  echo "  - {name: untagged, match: {team: \"(none)\"}, split: proportional, driver: effective_cost, by: team}"
  echo "budgets:"
  for t in ${teams//,/ }; do
    echo "  - {scope: {team: $t}, period: month, amount_usd: 5000000, alert_at: [\"80%\", \"100%\", \"forecast 100%\"]}"
  done
} > "$POLICY"

next_month() { python3 -c "import sys; y,m=map(int,sys.argv[1].split('-')); m+=1; y+=m>12; m=(m-1)%12+1; print(f'{y:04d}-{m:02d}')" "$1"; }
end_month=$(next_month "$last_month")

COMMANDS=(
  "report --by service,team --grain month"
  "report --by team --allocated"
  "report --by team --from $last_month --to $end_month --compare previous"
  "showback --by team --period $last_month --format csv"
  "tags audit"
  "budgets status --as-of ${last_month}-28"
  "budgets alert --dry-run --as-of ${last_month}-28"
  "anomalies --by team"
  "anomalies --by team,environment --min-impact 500"
  "forecast --by team"
  "forecast --by team --backtest"
  "kpi --period $last_month"
  "maturity"
)

echo "| Command | Median wall (ms) | Max RSS (MB) | Within ${LIMIT_MS} ms |"
echo "|---|---:|---:|---|"
failed=0
for cmd in "${COMMANDS[@]}"; do
  name=${cmd%% *}
  times=()
  rss=0
  ok=1
  for ((i = 0; i < RUNS; i++)); do
    # shellcheck disable=SC2086  # the command's words are split on purpose
    if ! /usr/bin/time -o "$DATA_DIR/analysis_bench.time" -f "%e %M" \
        "$AIFINOPS" $cmd --db "$LEDGER" --config "$POLICY" >/dev/null 2>"$DATA_DIR/analysis_bench.err"; then
      ok=0
      break
    fi
    read -r secs kb < "$DATA_DIR/analysis_bench.time"
    times+=("$secs")
    (( kb > rss )) && rss=$kb
  done
  if [ $ok -eq 0 ]; then
    echo "| \`$cmd\` | failed: $(head -c 200 "$DATA_DIR/analysis_bench.err" | tr '\n|' ' /') | | no |"
    failed=1
    continue
  fi
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  ms=$(python3 -c "print(round($median*1000))")
  within=yes
  (( ms > LIMIT_MS )) && { within=no; failed=1; }
  echo "| \`$cmd\` | $ms | $(( rss / 1024 )) | $within |"
done
echo
echo "Ledger: $LEDGER ($(du -m "$LEDGER" | cut -f1) MB), $RUNS runs per command, $(nproc) cores, $(git -C "$REPO" rev-parse --short HEAD)"
exit $failed

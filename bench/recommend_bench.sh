#!/usr/bin/env bash
# Recommendations and reconciliation on a large ledger: every `aifinops recommend` kind, all
# kinds together, and `aifinops reconcile`, timed on a ledger of LEDGER_ROWS FOCUS records
# (the analysis benchmark's ledger). The target: each kind answers in under 2 s
# (docs/benchmarks.md). Reports wall and user CPU time, since a busy machine inflates wall time.
#
# Usage: bench/recommend_bench.sh
# Knobs (environment):
#   DATA_DIR=/tmp/aifinops-bench   where focus_5m.csv is (bench/ingest_bench.sh makes it)
#   CSV=$DATA_DIR/focus_5m.csv     the FOCUS file to ingest (once; the ledger is kept)
#   LEDGER=$DATA_DIR/analysis_5m.db
#   AIFINOPS=<repo>/build/release/aifinops
#   RUNS=3                         runs per command; the median is reported
#   LIMIT_MS=2000                  a command slower than this (wall) fails the run
#   HOURLY=0                       1: also time `recommend --grain hour` (reads the records)
# Needs: GNU time (/usr/bin/time), python3.
set -u -o pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${DATA_DIR:-/tmp/aifinops-bench}"
CSV="${CSV:-$DATA_DIR/focus_5m.csv}"
LEDGER="${LEDGER:-$DATA_DIR/analysis_5m.db}"
AIFINOPS="${AIFINOPS:-$REPO/build/release/aifinops}"
RUNS="${RUNS:-3}"
LIMIT_MS="${LIMIT_MS:-2000}"
HOURLY="${HOURLY:-0}"

[ -x "$AIFINOPS" ] || { echo "build first: make build (no $AIFINOPS)" >&2; exit 1; }
if [ ! -f "$LEDGER" ]; then
  [ -f "$CSV" ] || { echo "no $CSV: run bench/ingest_bench.sh once to generate it" >&2; exit 1; }
  echo "ingesting $CSV into $LEDGER (once)..." >&2
  "$AIFINOPS" ingest "$CSV" --db "$LEDGER" >/dev/null || exit 1
fi

# Business inputs: a workload per project of the ledger, requiring MMLU 80.
BUSINESS="$DATA_DIR/recommend_business.yaml"
{
  echo "workloads:"
  "$AIFINOPS" report --db "$LEDGER" --by project --format csv | tail -n +2 | cut -d, -f1 |
    grep -v '^(none)$' | head -20 | while read -r p; do echo "  - {name: \"$p\", required_quality: 80}"; done
} > "$BUSINESS"

COMMANDS=(
  "recommend --kind commitment"
  "recommend --kind model-fit --business $BUSINESS"
  "recommend --kind cache"
  "recommend --kind batch"
  "recommend --kind self-hosted"
  "recommend --kind idle-gpu"
  "recommend --kind rightsize"
  "recommend --kind waste"
  "recommend --business $BUSINESS"
  "reconcile --by provider,model --grain day"
)
[ "$HOURLY" = 1 ] && COMMANDS+=("recommend --kind commitment --grain hour --window 7d")

echo "| Command | Median wall (ms) | Median user CPU (ms) | Max RSS (MB) | Recommendations / rows | Within ${LIMIT_MS} ms |"
echo "|---|---:|---:|---:|---:|---|"
failed=0
for cmd in "${COMMANDS[@]}"; do
  walls=()
  users=()
  rss=0
  ok=1
  for ((i = 0; i < RUNS; i++)); do
    # shellcheck disable=SC2086  # the command's words are split on purpose
    if ! /usr/bin/time -o "$DATA_DIR/recommend_bench.time" -f "%e %U %M" \
        "$AIFINOPS" $cmd --db "$LEDGER" --format csv >"$DATA_DIR/recommend_bench.out" \
        2>"$DATA_DIR/recommend_bench.err"; then
      ok=0
      break
    fi
    read -r secs user kb < "$DATA_DIR/recommend_bench.time"
    walls+=("$secs")
    users+=("$user")
    (( kb > rss )) && rss=$kb
  done
  if [ $ok -eq 0 ]; then
    echo "| \`$cmd\` | failed: $(head -c 200 "$DATA_DIR/recommend_bench.err" | tr '\n|' ' /') | | | | no |"
    failed=1
    continue
  fi
  median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  wall_ms=$(python3 -c "print(round($(median "${walls[@]}")*1000))")
  user_ms=$(python3 -c "print(round($(median "${users[@]}")*1000))")
  rows=$(( $(wc -l < "$DATA_DIR/recommend_bench.out") - 1 ))
  within=yes
  (( wall_ms > LIMIT_MS )) && { within=no; failed=1; }
  shown=${cmd//$BUSINESS/business.yaml}
  echo "| \`$shown\` | $wall_ms | $user_ms | $(( rss / 1024 )) | $rows | $within |"
done
echo
echo "Ledger: $LEDGER ($(du -m "$LEDGER" | cut -f1) MB), $RUNS runs per command, $(nproc) cores," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg), $(git -C "$REPO" rev-parse --short HEAD)"
exit $failed

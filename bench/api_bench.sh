#!/usr/bin/env bash
# REST API latency on a large ledger: `aifinops serve` over the analysis benchmark's ledger
# (LEDGER_ROWS FOCUS records), each endpoint called once cold (the analysis runs), then
# loaded with wrk for DURATION seconds over loopback (the answer cache serves it). Prints
# per endpoint the cold time, the CPU time serve spent on that first call (user + system,
# from /proc: on a shared machine the wall time waits for the CPU, this does not), and the
# warm p50/p99, and how long serve took to open its port (its start-up work: reading the
# rollup sums, and the warm answers unless --no-warm). The target: p99 under 100 ms, first
# calls included.
#
# Usage: bench/api_bench.sh
# Knobs (environment):
#   DATA_DIR=/tmp/aifinops-bench   where the ledger is (bench/analysis_bench.sh makes it)
#   LEDGER=$DATA_DIR/analysis_5m.db
#   POLICY=$DATA_DIR/analysis_policy.yaml   (bench/analysis_bench.sh writes it)
#   AIFINOPS=<repo>/build/release/aifinops
#   DURATION=5                     seconds of wrk load per endpoint
#   CONNECTIONS=4                  wrk connections (one wrk thread)
#   THREADS=4                      serve --threads
#   SERVE_FLAGS=--no-warm          extra serve flags; the default measures true first calls
#                                  (without it, serve computes the dashboard's first answers
#                                  in the background at start)
# Needs: wrk, curl, python3.
set -u -o pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${DATA_DIR:-/tmp/aifinops-bench}"
LEDGER="${LEDGER:-$DATA_DIR/analysis_5m.db}"
POLICY="${POLICY:-$DATA_DIR/analysis_policy.yaml}"
AIFINOPS="${AIFINOPS:-$REPO/build/release/aifinops}"
DURATION="${DURATION:-5}"
CONNECTIONS="${CONNECTIONS:-4}"
THREADS="${THREADS:-4}"
SERVE_FLAGS="${SERVE_FLAGS---no-warm}"

[ -x "$AIFINOPS" ] || { echo "build first: make build (no $AIFINOPS)" >&2; exit 1; }
[ -f "$LEDGER" ] && [ -f "$POLICY" ] ||
  { echo "no $LEDGER or $POLICY: run bench/analysis_bench.sh once" >&2; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }

WORK="$(mktemp -d)"
SERVE_PID=""
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# A viewer token for this run only, in a copy of the policy.
out=$("$AIFINOPS" serve tokens new --id bench --scope viewer 2>/dev/null) || exit 1
TOKEN=$(echo "$out" | sed -n 1p | cut -d' ' -f2)
{ cat "$POLICY"; echo; echo "api_tokens:"; echo "$out" | sed -n 2p; } > "$WORK/policy.yaml"

started_ns=$(date +%s%N)
"$AIFINOPS" serve --db "$LEDGER" --config "$WORK/policy.yaml" --listen 127.0.0.1:0 \
  --threads "$THREADS" --web-root "$WORK" $SERVE_FLAGS 2> "$WORK/serve.log" &
SERVE_PID=$!
# serve opens its port once its start-up work is done (rollup sums read, warm answers
# computed unless --no-warm): up to a minute on a busy machine.
for _ in $(seq 1 1200); do
  PORT=$(grep -so 'listening on http://127.0.0.1:[0-9]*' "$WORK/serve.log" | grep -o '[0-9]*$')
  [ -n "$PORT" ] && break
  sleep 0.05
done
[ -n "${PORT:-}" ] || { echo "serve did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }
BASE="http://127.0.0.1:$PORT"

last_month=$("$AIFINOPS" report --db "$LEDGER" --by month --format csv | tail -n +2 | cut -d, -f1 | sort | tail -1)
PATHS=(
  "/api/v1/report?by=team"
  "/api/v1/report?by=service,team&grain=month"
  "/api/v1/report?grain=day&period=$last_month"
  "/api/v1/report?by=team&period=$last_month&compare=previous"
  "/api/v1/report?by=team&allocated=true"
  "/api/v1/kpi?period=$last_month"
  "/api/v1/kpi?period=$last_month&trend=6"
  "/api/v1/budgets?as-of=${last_month}-28"
  "/api/v1/anomalies?by=team"
  "/api/v1/forecast"
  "/api/v1/tags/audit"
  "/api/v1/maturity"
  "/api/v1/dimensions"
  "/api/v1/recommendations"
  "/metrics"
)

ready_ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
ticks=$(getconf CLK_TCK)
start_cpu=$(awk -v t="$ticks" '{printf "%d", ($14 + $15) * 1000 / t}' "/proc/$SERVE_PID/stat")
echo "aifinops serve on $LEDGER ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)); wrk ${DURATION}s, $CONNECTIONS connections"
echo "start-up: listening after ${ready_ms} ms (${start_cpu} ms CPU) with ${SERVE_FLAGS:-no extra flags}; $(grep -o 'read [0-9]* rollup rows[^(]*' "$WORK/serve.log" || true)"
printf '%-62s %9s %9s %9s %9s %9s %s\n' "endpoint" "cold ms" "cold cpu" "p50 ms" "p99 ms" "req/s" "status"
failed=0
cpu_ms() { awk -v t="$ticks" '{printf "%d", ($14 + $15) * 1000 / t}' "/proc/$SERVE_PID/stat"; }
for path in "${PATHS[@]}"; do
  cpu_before=$(cpu_ms)
  read -r code cold < <(curl -s -o "$WORK/body" -w '%{http_code} %{time_total}\n' \
    -H "Authorization: Bearer $TOKEN" "$BASE$path")
  cold_cpu=$(( $(cpu_ms) - cpu_before ))
  cold_ms=$(python3 -c "print(f'{float(\"$cold\")*1000:.1f}')")
  [ "$code" = 200 ] || { echo "$path: HTTP $code: $(head -c 300 "$WORK/body")" >&2; failed=1; continue; }
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" \
    "$BASE$path" > "$WORK/wrk.txt" 2>&1
  stats=$(python3 - "$WORK/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*" + label + r"\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m: return float("nan")
    v = float(m.group(1)); return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{ms('50%'):.2f} {ms('99%'):.2f} {float(rps.group(1)) if rps else 0:.0f} {'non-2xx=' + errors.group(1) if errors else 'ok'}")
PY
)
  read -r p50 p99 rps status <<< "$stats"
  printf '%-62s %9s %9s %9s %9s %9s %s\n' "$path" "$cold_ms" "$cold_cpu" "$p50" "$p99" "$rps" "$status"
done
exit $failed

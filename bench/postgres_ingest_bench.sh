#!/usr/bin/env bash
# PostgreSQL ledger ingest benchmark: `aifinops ingest` of the 1,000,000-row FOCUS export into
# a fresh PostgreSQL ledger (binary COPY) and into a fresh SQLite ledger, side by side in the
# same run, alternating which goes first. PostgreSQL is a private server on loopback started
# for the run by tests/integration/pg_service.py with durable settings (fsync and synchronous
# commit on, as a deployment runs). Prints a Markdown table with the load average, and checks
# that both ledgers hold the same grand total of EffectiveCost.
#
# Usage: bench/postgres_ingest_bench.sh      (about 2 minutes with RUNS=3 once the data exists)
# Knobs (environment):
#   RUNS=3                    runs per backend; medians are reported
#   DATA_DIR=/tmp/aifinops-bench   where focus_1m.csv is (bench/ingest_bench.sh makes it)
#   AIFINOPS=<repo>/build/release/aifinops   a Release build
#   TARGET_ROWS_S=150000      PostgreSQL's median must reach this (issue 7)
#   OUT_DIR=<repo>/bench/results/pg-<timestamp>   raw outputs and table.md
#   TIMEOUT_S=900             per command
# Needs: PostgreSQL 15 server binaries (scripts/install-deps.sh), GNU time, python3.
# Exit code: 0 when every check passed, 1 otherwise.
set -u -o pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${RUNS:-3}"
DATA_DIR="${DATA_DIR:-/tmp/aifinops-bench}"
AIFINOPS="${AIFINOPS:-$REPO/build/release/aifinops}"
TARGET_ROWS_S="${TARGET_ROWS_S:-150000}"
OUT_DIR="${OUT_DIR:-$REPO/bench/results/pg-$(date +%Y%m%d-%H%M%S)}"
TIMEOUT_S="${TIMEOUT_S:-900}"
CSV="$DATA_DIR/focus_1m.csv"
ROWS=1000000
EXPECTED_TOTAL="31638649.23"  # gen_focus.py, seed 42, as bench/ingest_bench.sh checks

die() { echo "postgres_ingest_bench: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# The outer call starts the server and runs this script again inside it.
if [[ -z ${BENCH_PG_URL:-} ]]; then
  [[ -x $AIFINOPS ]] || die "$AIFINOPS is not executable (build Release: make build)"
  [[ -f $CSV ]] || die "$CSV is missing; bench/ingest_bench.sh generates it (SIZES=1000000 TOOLS=aifinops)"
  [[ -x /usr/bin/time ]] || die "need GNU time at /usr/bin/time (apt-get install time)"
  exec python3 "$REPO/tests/integration/pg_service.py" run --durable --env BENCH_PG_URL -- \
    env AIFINOPS="$AIFINOPS" OUT_DIR="$OUT_DIR" RUNS="$RUNS" DATA_DIR="$DATA_DIR" \
    TARGET_ROWS_S="$TARGET_ROWS_S" TIMEOUT_S="$TIMEOUT_S" bash "${BASH_SOURCE[0]}"
fi

mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
LITE="$OUT_DIR/bench.db"
PSQL=/usr/lib/postgresql/15/bin/psql
status=0

fresh_pg() {  # an empty database: the ledger's tables (and partitions) dropped
  "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$BENCH_PG_URL" \
    -c "DROP SCHEMA public CASCADE; CREATE SCHEMA public;" >/dev/null 2>&1 || die "cannot empty the database"
}
fresh_lite() { rm -f "$LITE" "$LITE-wal" "$LITE-shm"; }

# CPU ticks used so far by the PostgreSQL server: the postmaster, its live children (WAL
# writer, checkpointer, ...) and the children it has reaped (the ingest's backend ends
# with its connection).
PG_PID=$(head -1 "$("$PSQL" -X -A -t -d "$BENCH_PG_URL" -c 'SHOW data_directory')/postmaster.pid")
TICKS=$(getconf CLK_TCK)
server_ticks() {
  local total=0 p
  for p in $PG_PID $(pgrep -P "$PG_PID"); do
    [[ -r /proc/$p/stat ]] && total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat")))
  done
  echo $total
}

# One ingest; prints "wall_s cpu_s rss_mb server_cpu_s": aifinops's own CPU, and for
# PostgreSQL the server's CPU during the ingest (0 for SQLite, which works in-process).
ingest() {
  local db=$1 name=$2 run=$3
  local out="$OUT_DIR/$name.$run" before after
  before=$(server_ticks)
  /usr/bin/time -f "%e %U %S %M" -o "$out.time" timeout "$TIMEOUT_S" \
    "$AIFINOPS" ingest "$CSV" --db "$db" >"$out.out" 2>"$out.err" || {
    log "$name run $run failed: $(tail -3 "$out.err")"
    status=1
    echo "nan nan nan nan"
    return
  }
  sleep 0.2  # the backend's exit, so that its time is counted
  after=$(server_ticks)
  [[ $name == sqlite ]] && after=$before
  awk -v s=$((after - before)) -v hz="$TICKS" '{printf "%s %.2f %.0f %.2f\n", $1, $2 + $3, $4 / 1024, s / hz}' "$out.time"
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

declare -A WALL CPU RSS SERVER
loads=()
for run in $(seq 1 "$RUNS"); do
  order="postgresql sqlite"
  ((run % 2 == 0)) && order="sqlite postgresql"
  for backend in $order; do
    loads+=("$(cut -d' ' -f1 /proc/loadavg)")
    if [[ $backend == postgresql ]]; then
      fresh_pg
      read -r wall cpu rss server < <(ingest "$BENCH_PG_URL" postgresql "$run")
    else
      fresh_lite
      read -r wall cpu rss server < <(ingest "$LITE" sqlite "$run")
    fi
    log "$backend run $run: ${wall}s wall, ${cpu}s aifinops CPU, ${server}s server CPU, ${rss} MB"
    WALL[$backend]+="$wall "
    CPU[$backend]+="$cpu "
    RSS[$backend]+="$rss "
    SERVER[$backend]+="$server "
  done
done

# The last ledgers of each backend hold the whole file: the same total in both.
total() {
  "$AIFINOPS" report --db "$1" --format json 2>/dev/null |
    python3 -c 'import json,sys; print("%.2f" % float(json.load(sys.stdin)["total"]))' 2>/dev/null
}
lite_total=$(total "$LITE")
pg_total=$(total "$BENCH_PG_URL")
[[ $lite_total == "$EXPECTED_TOTAL" ]] || { log "SQLite total $lite_total, expected $EXPECTED_TOTAL"; status=1; }
[[ $pg_total == "$EXPECTED_TOTAL" ]] || { log "PostgreSQL total $pg_total, expected $EXPECTED_TOTAL"; status=1; }
pg_size=$("$PSQL" -X -A -t -d "$BENCH_PG_URL" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
lite_size=$(du -h "$LITE" | cut -f1)

{
  echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //');" \
    "PostgreSQL $("$PSQL" -X -A -t -d "$BENCH_PG_URL" -c 'SHOW server_version') (fsync on, synchronous_commit on)"
  echo "Binary: $AIFINOPS ($(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown))"
  echo "Load average (1 min) before each run: ${loads[*]}"
  echo
  echo "| backend | wall s (median) | min | aifinops CPU s (median) | server CPU s (median) | rows/s (wall) | rows per CPU s (both processes) | max RSS MB | ledger size | total EffectiveCost |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for backend in postgresql sqlite; do
    w=$(tr ' ' '\n' <<<"${WALL[$backend]}" | grep -v '^$' | median)
    m=$(tr ' ' '\n' <<<"${WALL[$backend]}" | grep -v '^$' | sort -g | head -1)
    c=$(tr ' ' '\n' <<<"${CPU[$backend]}" | grep -v '^$' | median)
    sc=$(tr ' ' '\n' <<<"${SERVER[$backend]}" | grep -v '^$' | median)
    per_cpu=$(awk -v c="$c" -v s="$sc" -v n=$ROWS 'BEGIN {printf "%d", n / (c + s)}')
    r=$(tr ' ' '\n' <<<"${RSS[$backend]}" | grep -v '^$' | sort -g | tail -1)
    rate=$(awk -v w="$w" -v n=$ROWS 'BEGIN {printf "%d", n / w}')
    size=$lite_size total=$lite_total
    [[ $backend == postgresql ]] && size=$pg_size total=$pg_total
    echo "| $backend | $w | $m | $c | $sc | $rate | $per_cpu | $r | $size | $total |"
    if [[ $backend == postgresql ]] && ((rate < TARGET_ROWS_S)); then
      log "PostgreSQL ingest $rate rows/s is below the target $TARGET_ROWS_S rows/s"
      status=1
    fi
  done
} | tee "$OUT_DIR/table.md"
exit $status

#!/usr/bin/env bash
# End-to-end FOCUS benchmark: `aifinops ingest` of a synthetic FOCUS export into a fresh
# ledger, then `aifinops report --by service,team --grain month`, beside DuckDB reading the
# same CSV (1 and 2 threads) in the same run. Prints a Markdown table with ratios and checks
# that every tool finds the same grand total of EffectiveCost.
#
# Usage: bench/ingest_bench.sh            (from anywhere; about 4 min with RUNS=3 once the
#                                           data exists, plus about 1 min to generate it)
# Knobs (environment):
#   SIZES="1000000 5000000"   row counts; files are focus_1m.csv / focus_5m.csv / focus_<N>.csv
#   RUNS=3                    runs per tool and size; medians are reported
#   TOOLS="aifinops duckdb1 duckdb2"
#   DATA_DIR=/tmp/aifinops-bench   generated CSVs (cached), the peers copy, ledgers
#   AIFINOPS=<repo>/build/release/aifinops   built first if missing
#   AIFINOPS_SOURCE="commit abc1234"   what the binary was built from (printed with the table)
#   PEERS_SRC=<repo>/../shared/bench/peers    copied to PEERS_DIR (writable) the first time
#   PEERS_DIR=$DATA_DIR/peers   NODE=node   SEED=42
#   TIMEOUT_S=900             per command (generation, ingest, report, query)
#   REPORT_LIMIT_MS=300       the report over the largest size must be faster than this
#   OUT_DIR=<repo>/bench/results/<timestamp>   raw outputs, results.tsv, table.md
#   KEEP_DB=0                 1 keeps the last ledger of each size in DATA_DIR
# Needs: GNU time (/usr/bin/time, Debian package `time`), python3, node + npm (DuckDB).
# Exit code: 0 when every check passed, 1 when a check failed or a command failed.
set -u -o pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZES="${SIZES:-1000000 5000000}"
RUNS="${RUNS:-3}"
TOOLS="${TOOLS:-aifinops duckdb1 duckdb2}"
DATA_DIR="${DATA_DIR:-/tmp/aifinops-bench}"
AIFINOPS="${AIFINOPS:-$REPO/build/release/aifinops}"
PEERS_SRC="${PEERS_SRC:-$REPO/../shared/bench/peers}"
PEERS_DIR="${PEERS_DIR:-$DATA_DIR/peers}"
NODE="${NODE:-node}"
SEED="${SEED:-42}"
TIMEOUT_S="${TIMEOUT_S:-900}"
REPORT_LIMIT_MS="${REPORT_LIMIT_MS:-300}"
OUT_DIR="${OUT_DIR:-$REPO/bench/results/$(date +%Y%m%d-%H%M%S)}"
KEEP_DB="${KEEP_DB:-0}"

# Grand totals of EffectiveCost that every tool must find (gen_focus.py, seed 42).
declare -A EXPECTED_TOTAL=([1000000]=31638649.23 [5000000]=156962939.09)

die() { echo "ingest_bench: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

[[ -x /usr/bin/time ]] || die "need GNU time at /usr/bin/time (apt-get install time)"
command -v python3 >/dev/null || die "need python3"
mkdir -p "$DATA_DIR" "$OUT_DIR" || die "cannot create $DATA_DIR or $OUT_DIR"

# --- the binary ------------------------------------------------------------------------
if has_tool aifinops && [[ ! -x $AIFINOPS ]]; then
  [[ $AIFINOPS == "$REPO/build/release/aifinops" ]] || die "$AIFINOPS is not executable"
  log "building $AIFINOPS (Release)"
  timeout "$TIMEOUT_S" cmake -S "$REPO" -B "$REPO/build/release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    >"$OUT_DIR/build.log" 2>&1 &&
    timeout "$TIMEOUT_S" cmake --build "$REPO/build/release" -j2 --target aifinops \
      >>"$OUT_DIR/build.log" 2>&1 || die "build failed, see $OUT_DIR/build.log"
fi

# --- the peers (generator, DuckDB) ------------------------------------------------------
if [[ ! -f $PEERS_DIR/focus/gen_focus.py ]]; then
  [[ -f $PEERS_SRC/focus/gen_focus.py ]] || die "no peers at $PEERS_SRC (set PEERS_SRC)"
  log "copying $PEERS_SRC to $PEERS_DIR"
  mkdir -p "$(dirname "$PEERS_DIR")" && cp -r "$PEERS_SRC" "$PEERS_DIR" && chmod -R u+w "$PEERS_DIR" ||
    die "cannot copy the peers to $PEERS_DIR"
fi
if has_tool duckdb1 || has_tool duckdb2; then
  command -v "$NODE" >/dev/null || die "need node for DuckDB (or drop duckdb1/duckdb2 from TOOLS)"
  if [[ ! -d $PEERS_DIR/focus/duckdb/node_modules/@duckdb/node-api ]]; then
    log "npm install in $PEERS_DIR/focus/duckdb"
    (cd "$PEERS_DIR/focus/duckdb" && timeout 600 npm install --no-audit --no-fund) \
      >"$OUT_DIR/npm.log" 2>&1 || die "npm install failed, see $OUT_DIR/npm.log"
  fi
fi

# --- helpers ---------------------------------------------------------------------------
label() { case $1 in 1000000) echo 1m;; 5000000) echo 5m;; *) echo "$1";; esac; }
now_ns() { local t=$EPOCHREALTIME; echo "${t/./}000"; }  # bash 5: microseconds -> ns
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "-"; exit}
  if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
rss_mb() { awk -F': ' '/Maximum resident set size/{ printf "%.0f\n", $2/1024 }' "$1"; }
cpu_s() { awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{ printf "%.2f\n", u+s }' "$1"; }
round2() { python3 -c 'import sys, decimal as d; print(d.Decimal(sys.argv[1]).quantize(d.Decimal("0.01"), d.ROUND_HALF_EVEN))' "$1"; }
# Exact sum of the last column of a CSV report (skipping the header).
csv_total() { python3 -c '
import csv, sys, decimal
rows = list(csv.reader(open(sys.argv[1], newline="")))
print(sum((decimal.Decimal(r[-1]) for r in rows[1:] if r), decimal.Decimal(0)))' "$1"; }

# CPU seconds the whole machine has been busy (all cores), from /proc/stat.
CLK_TCK=$(getconf CLK_TCK)
machine_busy_s() { awk -v hz="$CLK_TCK" '/^cpu /{ printf "%.2f\n", ($2+$3+$4+$7+$8+$9)/hz; exit }' /proc/stat; }

# run NAME OUT_PREFIX CMD...: runs one command under timeout and GNU time; sets WALL (s),
# CPU (s, user+sys), RSS (MB), OTHER (CPU s that other processes used meanwhile: the
# noise), and returns the command's status. Output goes to OUT_PREFIX.out.
run() {
  local name=$1 prefix=$2; shift 2
  local t0 t1 b0 b1 status
  b0=$(machine_busy_s); t0=$(now_ns)
  timeout "$TIMEOUT_S" /usr/bin/time -v -o "$prefix.time" "$@" >"$prefix.out" 2>"$prefix.err"
  status=$?
  t1=$(now_ns); b1=$(machine_busy_s)
  WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN{ printf "%.3f", (b-a)/1e9 }')
  CPU=$(cpu_s "$prefix.time" 2>/dev/null); RSS=$(rss_mb "$prefix.time" 2>/dev/null)
  OTHER=$(awk -v a="$b0" -v b="$b1" -v c="${CPU:-0}" 'BEGIN{ o=b-a-c; printf "%.2f", o < 0 ? 0 : o }')
  if (( status != 0 )); then
    log "  $name FAILED (status $status; see $prefix.err)"
    FAILURES+=("$name exited with status $status ($prefix.err)")
  fi
  return $status
}

RES="$OUT_DIR/results.tsv"
printf 'rows\ttool\tthreads\truns\twall_s\twall_s_min\tcpu_s\tmax_rss_mb\tother_cpu_s\ttotal\n' >"$RES"
FAILURES=()
CHECKS=()

# record ROWS TOOL THREADS TOTAL: medians of the WALLS/CPUS/RSSS/OTHERS arrays into
# results.tsv.
record() {
  local n=$1 tool=$2 thr=$3 total=$4
  (( ${#WALLS[@]} )) || return 0
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$tool" "$thr" "${#WALLS[@]}" \
    "$(printf '%s\n' "${WALLS[@]}" | median)" "$(printf '%s\n' "${WALLS[@]}" | sort -g | head -1)" \
    "$(printf '%s\n' "${CPUS[@]}" | median)" "$(printf '%s\n' "${RSSS[@]}" | median)" \
    "$(printf '%s\n' "${OTHERS[@]}" | median)" "$total" >>"$RES"
}

# check_total WHAT ROWS TOTAL: against the known total for ROWS (when there is one), and
# remembered so that agree_totals can check that every tool found the same.
declare -A SEEN_TOTALS=()
check_total() {
  local what=$1 n=$2 total=$3 want=${EXPECTED_TOTAL[$2]:-}
  local got; got=$(round2 "$total" 2>/dev/null || echo "?")
  SEEN_TOTALS[$n]+="$what=$got;"
  [[ -n $want ]] || return 0
  if [[ $got == "$want" ]]; then CHECKS+=("PASS  $(label "$n") $what total $got")
  else CHECKS+=("FAIL  $(label "$n") $what total $got, expected $want"); fi
}
agree_totals() {  # ROWS
  local seen=${SEEN_TOTALS[$1]:-} distinct
  [[ -n $seen ]] || return 0
  distinct=$(tr ';' '\n' <<<"$seen" | sed -n 's/.*=//p' | sort -u | wc -l)
  if (( distinct == 1 )); then CHECKS+=("PASS  $(label "$1") every tool agrees on the total")
  else CHECKS+=("FAIL  $(label "$1") the tools disagree: ${seen//;/ }"); fi
}

# --- the runs --------------------------------------------------------------------------
for n in $SIZES; do
  f="$DATA_DIR/focus_$(label "$n").csv"
  if [[ ! -s $f ]]; then
    log "generating $f ($n rows, seed $SEED)"
    timeout "$TIMEOUT_S" python3 "$PEERS_DIR/focus/gen_focus.py" "$n" "$f.tmp" --seed "$SEED" &&
      mv "$f.tmp" "$f" || die "generating $f failed"
  fi
  bytes=$(stat -c %s "$f")
  cat "$f" >/dev/null  # page cache warm: every tool reads from memory
  l=$(label "$n")

  if has_tool aifinops; then
    ingest_walls=(); ingest_cpus=(); ingest_rsss=(); rep_walls=(); rep_cpus=(); rep_rsss=()
    both_walls=(); both_cpus=(); both_rsss=(); ingest_others=(); rep_others=(); both_others=()
    ingest_total=-; report_total=-; db_mb=-
    for ((r = 1; r <= RUNS; r++)); do
      db="$DATA_DIR/ledger_$l.db"
      rm -f "$db" "$db-wal" "$db-shm"
      log "aifinops ingest $l run $r/$RUNS"
      run "aifinops ingest $l" "$OUT_DIR/aifinops-ingest-$l-run$r" "$AIFINOPS" ingest "$f" --db "$db" || continue
      ingest_walls+=("$WALL"); ingest_cpus+=("$CPU"); ingest_rsss+=("$RSS"); ingest_others+=("$OTHER")
      out="$OUT_DIR/aifinops-ingest-$l-run$r.out"
      ingest_total=$(awk '/effective cost/{print $NF}' "$out")
      ingested=$(awk '/ingested /{gsub(",","",$NF); print $NF}' "$out")
      quarantined=$(awk '/quarantined /{gsub(",","",$NF); print $NF; exit}' "$out")
      [[ $ingested == "$n" && $quarantined == 0 ]] ||
        FAILURES+=("aifinops ingest $l run $r: ingested $ingested, quarantined $quarantined of $n rows")
      db_mb=$(du -m "$db" "$db-wal" 2>/dev/null | awk '{s+=$1} END{print s}')
      log "aifinops report $l run $r/$RUNS"
      run "aifinops report $l" "$OUT_DIR/aifinops-report-$l-run$r" "$AIFINOPS" report --db "$db" \
        --by service,team --grain month --format csv || continue
      rep_walls+=("$WALL"); rep_cpus+=("$CPU"); rep_rsss+=("$RSS"); rep_others+=("$OTHER")
      report_total=$(csv_total "$OUT_DIR/aifinops-report-$l-run$r.out")
      both_walls+=("$(awk -v a="${ingest_walls[-1]}" -v b="$WALL" 'BEGIN{printf "%.3f", a+b}')")
      both_cpus+=("$(awk -v a="${ingest_cpus[-1]}" -v b="$CPU" 'BEGIN{printf "%.2f", a+b}')")
      both_rsss+=("$(( ingest_rsss[-1] > RSS ? ingest_rsss[-1] : RSS ))")
      both_others+=("$(awk -v a="${ingest_others[-1]}" -v b="$OTHER" 'BEGIN{printf "%.2f", a+b}')")
    done
    WALLS=("${ingest_walls[@]}"); CPUS=("${ingest_cpus[@]}"); RSSS=("${ingest_rsss[@]}"); OTHERS=("${ingest_others[@]}")
    record "$n" "aifinops ingest" 1 "$ingest_total"
    WALLS=("${rep_walls[@]}"); CPUS=("${rep_cpus[@]}"); RSSS=("${rep_rsss[@]}"); OTHERS=("${rep_others[@]}")
    record "$n" "aifinops report" 1 "$report_total"
    # ingest+report: summed per run, then the median
    WALLS=("${both_walls[@]}"); CPUS=("${both_cpus[@]}"); RSSS=("${both_rsss[@]}"); OTHERS=("${both_others[@]}")
    record "$n" "aifinops ingest+report" 1 "$report_total"
    echo "$n $db_mb" >>"$OUT_DIR/ledger_size_mb.txt"
    [[ $ingest_total != - ]] && check_total "aifinops ingest summary" "$n" "$ingest_total"
    [[ $report_total != - ]] && check_total "aifinops report (sum of rows)" "$n" "$report_total"
    if (( ${#rep_walls[@]} )) && [[ $n == "${SIZES##* }" ]]; then
      ms=$(printf '%s\n' "${rep_walls[@]}" | median | awk '{printf "%.0f", $1*1000}')
      if (( ms < REPORT_LIMIT_MS )); then CHECKS+=("PASS  $l report ${ms} ms < ${REPORT_LIMIT_MS} ms")
      else CHECKS+=("FAIL  $l report ${ms} ms, limit ${REPORT_LIMIT_MS} ms"); fi
    fi
    [[ $KEEP_DB == 1 ]] || rm -f "$db" "$db-wal" "$db-shm"
  fi

  for tool in duckdb1 duckdb2; do
    has_tool "$tool" || continue
    thr=${tool#duckdb}
    WALLS=(); CPUS=(); RSSS=(); OTHERS=(); total=-
    for ((r = 1; r <= RUNS; r++)); do
      log "DuckDB ($thr thread(s)) $l run $r/$RUNS"
      run "$tool $l" "$OUT_DIR/$tool-$l-run$r" "$NODE" "$PEERS_DIR/focus/duckdb/query.mjs" "$f" "$thr" || continue
      WALLS+=("$WALL"); CPUS+=("$CPU"); RSSS+=("$RSS"); OTHERS+=("$OTHER")
      t=$(grep -o 'total_effective_cost=[-0-9.]*' "$OUT_DIR/$tool-$l-run$r.out" | head -1 | cut -d= -f2)
      total=${t:-$total}
    done
    record "$n" "DuckDB" "$thr" "$total"
    [[ $total != - ]] && check_total "DuckDB ${thr}T" "$n" "$total"
  done
  agree_totals "$n"
  echo "$n $bytes" >>"$OUT_DIR/sizes.txt"
done

# --- the table -------------------------------------------------------------------------
python3 - "$RES" "$OUT_DIR/sizes.txt" "$OUT_DIR/ledger_size_mb.txt" >"$OUT_DIR/table.md" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
sizes = {}
for line in open(sys.argv[2]):
    n, b = line.split(); sizes[n] = int(b)
ledger = {}
try:
    for line in open(sys.argv[3]):
        n, mb = line.split(); ledger[n] = mb
except OSError:
    pass
def label(n):
    n = int(n)
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n:,}"
def num(x, fmt):
    try: return format(float(x), fmt)
    except ValueError: return x
print("| rows | tool | threads | wall s (median) | min | CPU s user+sys | other load CPU s "
      "| max RSS MB | rows/s | MB/s | wall ÷ DuckDB 1T | wall ÷ DuckDB 2T | CPU ÷ DuckDB 1T "
      "| total EffectiveCost |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for n in dict.fromkeys(r["rows"] for r in rows):
    group = [r for r in rows if r["rows"] == n]
    duck = {r["threads"]: r for r in group if r["tool"] == "DuckDB"}
    for r in group:
        wall, cpu = float(r["wall_s"]), float(r["cpu_s"])
        report = r["tool"] == "aifinops report"
        rps = "" if report else f"{int(n) / wall:,.0f}"
        mbs = "" if report else f"{sizes[n] / 1e6 / wall:,.0f}"
        def ratio(t, key):
            if r["tool"] in ("DuckDB", "aifinops report") or t not in duck: return ""
            return f"{float(r[key]) / float(duck[t][key]):.2f}"
        total = r["total"]
        try: total = f"{float(total):,.2f}"
        except ValueError: pass
        wall_text = f"{wall * 1000:.0f} ms" if report else f"{wall:.2f}"
        min_text = f"{float(r['wall_s_min']) * 1000:.0f} ms" if report else f"{float(r['wall_s_min']):.2f}"
        name = r["tool"] + (" (--by service,team --grain month)" if report else "")
        print(f"| {label(n)} | {name} | {r['threads']} | {wall_text} | {min_text} | {cpu:.2f} "
              f"| {float(r['other_cpu_s']):.2f} | {r['max_rss_mb']} | {rps} | {mbs} | {ratio('1', 'wall_s')} | {ratio('2', 'wall_s')} "
              f"| {ratio('1', 'cpu_s')} | {total} |")
print()
print("Ratios below 1 mean aifinops took less time than DuckDB. 'other load' is the CPU time "
      "other processes used on the machine during the run (medians): near 0 means a quiet "
      "machine. " +
      "; ".join(f"{label(n)} rows: CSV {sizes[n] / 1e6:,.0f} MB" +
                (f", ledger {ledger[n]} MB" if n in ledger else "") for n in sizes) + ".")
EOF

{
  echo "## aifinops ingest + report vs DuckDB ($(nproc) cores, $(lscpu | awk -F': +' '/Model name/{print $2; exit}'); page cache warm; medians of $RUNS runs)"
  echo
  if has_tool aifinops; then
    if [[ -n ${AIFINOPS_SOURCE:-} ]]; then
      source_note=$AIFINOPS_SOURCE
    elif [[ $AIFINOPS == "$REPO"/* ]]; then
      rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
      dirty=$(git -C "$REPO" status --porcelain --untracked-files=no -- src 2>/dev/null | awk '{print $2}' | paste -sd' ')
      source_note="the working tree at $rev${dirty:+ with uncommitted changes in $dirty}"
    else
      source_note="unknown (set AIFINOPS_SOURCE)"
    fi
    echo "aifinops: $AIFINOPS, built $(date -r "$AIFINOPS" '+%Y-%m-%d %H:%M'), source: $source_note."
    echo
  fi
  cat "$OUT_DIR/table.md"
} >"$OUT_DIR/report.md"
echo
cat "$OUT_DIR/report.md"
echo
echo "Checks:"
for c in "${CHECKS[@]}"; do echo "  $c"; done
for f in "${FAILURES[@]}"; do echo "  FAIL  $f"; done
echo "Raw outputs: $OUT_DIR"
if (( ${#FAILURES[@]} )) || printf '%s\n' "${CHECKS[@]}" | grep -q '^FAIL'; then exit 1; fi
exit 0

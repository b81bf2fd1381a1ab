#!/usr/bin/env bash
# User-space instructions per request of the gateway, counted with callgrind: a count that
# does not depend on how busy the machine is, unlike CPU time. The gateway (plain route,
# the configuration of bench/gateway_bench.sh: metering, limits, a budget, the spool and
# the repeat count on) runs under valgrind beside a mock upstream (nginx); after a warm-up
# the counters are zeroed, wrk posts the chat request on 16 connections for SECONDS, the
# spool's drainer is given time to write those requests, and the count of every thread
# (the drainer's ledger writes included) is divided by the requests wrk completed.
#
# Usage: bench/gateway_instructions.sh AIFINOPS [AIFINOPS_BEFORE] [SECONDS=8]
# With a second build, both are counted one after the other and the ratio printed.
# Needs valgrind, nginx and wrk, and the WORK folder of bench/gateway_bench.sh (run that
# once first). Loopback only; every load loop is bounded (wrk -d, timeouts).
set -u
W=${WORK:-/tmp/aifinops-gateway-bench}; PEERS=$W/peers/gateway
D=${3:-8}

count() { # binary port -> "requests instructions"
  local aif=$1 port=$2 upstream=$(( $2 + 14000 ))
  local run; run=$(mktemp -d /tmp/gwinstr.XXXXXX); mkdir -p "$run/nginx"
  python3 "$PEERS/mock/gen_conf.py" "$run/nginx" "$upstream" > "$run/nginx/nginx.conf"
  nginx -c "$run/nginx/nginx.conf" -p "$run/nginx" & local ups=$!
  sed -e "s/^listen: .*/listen: 127.0.0.1:$port/" -e "s|^ledger: .*|ledger: $run/ledger.db|" \
      -e "s|127.0.0.1:18080|127.0.0.1:$upstream|" "$W/gw-plain.yaml" > "$run/gw.yaml"
  valgrind --tool=callgrind --callgrind-out-file="$run/cg.out" "$aif" gateway --config "$run/gw.yaml" \
    > /dev/null 2> "$run/gw.log" & local gw=$!
  for _ in $(seq 60); do
    sleep 1
    curl -s -o /dev/null "http://127.0.0.1:$port/health" && break
  done
  load() {
    WRK_HEADERS='Authorization: Bearer sk-test' WRK_STREAM=0 timeout $(( $1 + 60 )) \
      wrk -t1 -c16 -d"$1"s --timeout 10s -s "$PEERS/chat.lua" \
      "http://127.0.0.1:$port/v1/chat/completions" 2>&1 | grep RESULT
  }
  load 3 > /dev/null
  sleep 1.5  # the drainer writes the warm-up's requests (a round every second)
  callgrind_control -z "$gw" > /dev/null
  local line; line=$(load "$D")
  sleep 2.5  # ... and these
  callgrind_control -d "$gw" > /dev/null
  sleep 1
  local requests total
  requests=$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')
  total=$(cat "$run"/cg.out.* 2>/dev/null | awk '/^(summary|totals):/ {print $2; exit}')
  kill "$gw" "$ups" 2> /dev/null
  wait "$gw" "$ups" 2> /dev/null
  rm -rf "$run"
  echo "$requests ${total:-0}"
}

report() { # label requests instructions
  awk -v l="$1" -v n="$2" -v t="$3" \
    'BEGIN { printf "%-8s %8d requests  %12d instructions  %8.0f per request\n", l, n, t, (n > 0 ? t / n : 0) }'
}

read -r n1 t1 < <(count "$1" 4100)
report new "$n1" "$t1"
if [[ -n ${2:-} ]]; then
  read -r n0 t0 < <(count "$2" 4110)
  report before "$n0" "$t0"
  awk -v a="$t1" -v n="$n1" -v b="$t0" -v m="$n0" \
    'BEGIN { if (n > 0 && m > 0 && b > 0) printf "new/before: %.2fx\n", (a / n) / (b / m) }'
fi

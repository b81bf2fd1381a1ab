#!/usr/bin/env bash
# Gateway memory: peak RSS with N concurrent streaming connections (wrk -c N against the
# streaming route for 20 s), then RSS sampled every 30 s during a soak of closed-loop load
# for SOAK seconds; then the gateway is stopped (SIGTERM) and its ledger must hold at least
# every request wrk received completely. Usage: gateway_rss.sh WORKDIR AIFINOPS N SOAK_SECONDS
# Starts its own mock upstream (nginx) and gateway; stops both; bounded by timeouts.
# SOAK_RPS (1000) paces the soak: 16 connections, each waiting 16000/SOAK_RPS - 1 ms before
# its next request (wrk's delay(); the 1 ms is about the response time), so about SOAK_RPS
# requests a second; 0 = closed loop,
# as fast as the gateway answers. MOCK_PORT (18080) is the mock upstream's port, which the
# gateway's config in WORKDIR must name.
set -euo pipefail
WORK=$1 AIFINOPS=$2 N=$3 SOAK=$4
SOAK_RPS=${SOAK_RPS:-1000} MOCK_PORT=${MOCK_PORT:-18080}
PEERS="$WORK/peers/gateway"
RUN=$(mktemp -d /tmp/gwrss.XXXXXX)
mkdir -p "$RUN/nginx"
python3 "$PEERS/mock/gen_conf.py" "$RUN/nginx" "$MOCK_PORT" > "$RUN/nginx/nginx.conf"
# Enough worker connections for N clients through the gateway.
sed -i 's/worker_connections [0-9]*/worker_connections 8192/' "$RUN/nginx/nginx.conf"
nginx -c "$RUN/nginx/nginx.conf" -p "$RUN/nginx" &
NGINX=$!
sleep 1
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # as many descriptors as allowed
LEDGER=$(awk '/^ledger:/{print $2}' "$WORK/gw-stream.yaml")
GW_URL="http://127.0.0.1:$(awk -F: '/^listen:/{print $NF}' "$WORK/gw-stream.yaml")/v1/chat/completions"
requests_in_ledger() {
  [[ -f $LEDGER ]] || { echo 0; return; }
  "$AIFINOPS" report --db "$LEDGER" --metric requests --format json |
    python3 -c 'import json, sys; print(int(json.load(sys.stdin)["total"]))'
}
BEFORE=$(requests_in_ledger)
"$AIFINOPS" gateway --config "$WORK/gw-stream.yaml" >/dev/null 2>"$RUN/gw.log" &
GW=$!
trap 'kill $GW 2>/dev/null || true; kill $NGINX 2>/dev/null || true; sleep 0.5; rm -rf "$RUN"' EXIT
sleep 1
rss() { awk '/^VmRSS:/{printf "%.1f", $2/1024}' /proc/$GW/status; }
hwm() { awk '/^VmHWM:/{printf "%.1f", $2/1024}' /proc/$GW/status; }
echo "idle RSS MB: $(rss)"
WRK_HEADERS='Authorization: Bearer sk-test' WRK_STREAM=1 timeout 60 \
  wrk -t2 -c"$N" -d20s --timeout 10s -s "$PEERS/chat.lua" "$GW_URL" > "$RUN/wrk-n.txt" 2>&1 || true
echo "with $N streaming connections: $(grep -E 'Requests/sec' "$RUN/wrk-n.txt") ; peak RSS MB (VmHWM): $(hwm)"
if (( SOAK > 0 )); then
  script="$PEERS/chat.lua" pace="closed-loop"
  if (( SOAK_RPS > 0 )); then
    # chat.lua, with a pause before each request on each of the 16 connections.
    script="$RUN/paced.lua" pace="about $SOAK_RPS requests/s of"
    printf 'dofile("%s")\nfunction delay() return %d end\n' "$PEERS/chat.lua" \
      $(( 16000 / SOAK_RPS > 1 ? 16000 / SOAK_RPS - 1 : 0 )) > "$script"
  fi
  echo "soak: ${SOAK}s of $pace streaming load, RSS every 30 s (MB):"
  end=$((SECONDS + SOAK))
  WRK_HEADERS='Authorization: Bearer sk-test' WRK_STREAM=1 timeout $((SOAK + 30)) \
    wrk -t1 -c16 -d"${SOAK}s" --timeout 10s -s "$script" "$GW_URL" > "$RUN/wrk-soak.txt" 2>&1 &
  WRK=$!
  samples=""
  while (( SECONDS < end )); do sleep 30; samples+="$(rss) "; done
  wait $WRK || true
  echo "  $samples"
  echo "  $(grep -E 'Requests/sec' "$RUN/wrk-soak.txt")"
fi
# Stopped gracefully: the spool goes into the ledger. wrk counts the responses it received
# completely; streams it cut off when its time was up are in the ledger too (as partial).
kill -TERM $GW; for _ in $(seq 150); do kill -0 $GW 2>/dev/null || break; sleep 0.2; done
received=0
for f in "$RUN/wrk-n.txt" "$RUN/wrk-soak.txt"; do
  [[ -f $f ]] || continue
  n=$(sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p' "$f"); received=$((received + ${n:-0}))
done
stored=$(( $(requests_in_ledger) - BEFORE ))
verdict="every one is in the ledger"; (( stored >= received )) || verdict="MISSING $((received - stored))"
echo "ledger: $stored requests stored for $received received completely by wrk: $verdict"

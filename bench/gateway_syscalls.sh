#!/usr/bin/env bash
# System calls per request of the gateway and of nginx proxy_pass, counted with strace -c
# during a 3-second wrk run at 16 connections (plain and streaming route). The counts do not
# depend on how busy the machine is. Usage: bench/gateway_syscalls.sh AIFINOPS
# Needs strace, and the WORK folder of bench/gateway_bench.sh (run that once first).
set -u
AIF=$1
W=${WORK:-/tmp/aifinops-gateway-bench}; PEERS=$W/peers/gateway
RUN=$(mktemp -d /tmp/sysc.XXXXXX); mkdir -p $RUN/nginx
python3 $PEERS/mock/gen_conf.py $RUN/nginx 18080 > $RUN/nginx/nginx.conf
nginx -c $RUN/nginx/nginx.conf -p $RUN/nginx & UPS=$!
$PEERS/nginx_proxy.sh 18090 > /dev/null 2>&1 & NPX=$!
rm -rf $W/bench-4000.db* $W/bench-4001.db*
$AIF gateway --config $W/gw-plain.yaml >/dev/null 2>$RUN/gw.log & GW=$!
$AIF gateway --config $W/gw-stream.yaml >/dev/null 2>$RUN/gws.log & GWS=$!
trap 'kill $GW $GWS $NPX $UPS 2>/dev/null; sleep 0.5; rm -rf $RUN' EXIT
sleep 2
count() { # name pid url stream
  local pids=$(echo $2 $(pgrep -P $2) | sed 's/ / -p /g')
  timeout 30 strace -c -f -p $pids -o $RUN/$1.strace & local ST=$!
  sleep 0.5
  local line=$(WRK_HEADERS='Authorization: Bearer sk-test' WRK_STREAM=$4 timeout 20 wrk -t1 -c16 -d3s -s $PEERS/chat.lua $3 2>&1 | grep RESULT)
  sleep 1.2; kill -INT $ST; wait $ST 2>/dev/null
  local n=$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')
  echo "== $1: $n requests"
  awk -v n=$n '/^[ 0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ {printf "  %-16s %6.2f per request\n", $NF, $4/n} /total/ {printf "  %-16s %6.2f per request\n", "TOTAL", $3/n}' $RUN/$1.strace | sort -k2 -rn | head -12
}
count aifinops $GW http://127.0.0.1:4000/v1/chat/completions 0
count nginx $NPX http://127.0.0.1:18090/v1/chat/completions 0
count aif-sse $GWS http://127.0.0.1:4001/v1/chat/completions 1
count nginx-sse $NPX http://127.0.0.1:18090/stream/v1/chat/completions 1

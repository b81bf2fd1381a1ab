#!/usr/bin/env bash
# The gateway and nginx proxy_pass measured in turns within one run, so that both see the
# same machine load: for each round and connection count, wrk (pinned to CPU 0 with the mock
# upstream) posts the chat request direct, through the gateway and through nginx (both on
# CPU 1), and prints throughput, p50/p99 and the CPU per request of each proxy (utime+stime
# of its processes from /proc, divided by the requests). A busy machine inflates latency
# far more than CPU time, so on a shared machine compare the CPU column, round by round.
#
# Usage: bench/gateway_side_by_side.sh AIFINOPS [ROUNDS=3] [SECONDS=5] [CONNS="1 16"] [STREAM=0]
# Needs what bench/gateway_bench.sh needs, and its WORK folder (run that once first: it
# writes the gateway configs and the peers' harness copy). Every load loop is bounded.
set -u
AIF=$1 ROUNDS=${2:-3} D=${3:-5} CONNS=${4:-"1 16"} STREAM=${5:-0}
W=${WORK:-/tmp/aifinops-gateway-bench}; PEERS=$W/peers/gateway
RUN=$(mktemp -d /tmp/cpuside.XXXXXX); mkdir -p $RUN/nginx
python3 $PEERS/mock/gen_conf.py $RUN/nginx 18080 > $RUN/nginx/nginx.conf
taskset -c 0 nginx -c $RUN/nginx/nginx.conf -p $RUN/nginx & UPS=$!
taskset -c 1 $PEERS/nginx_proxy.sh 18090 > /dev/null 2>&1 & NPX=$!
rm -rf $W/bench-4000.db* $W/bench-4001.db*
taskset -c 1 $AIF gateway --config $W/gw-plain.yaml >/dev/null 2>$RUN/gw.log & GW=$!
taskset -c 1 $AIF gateway --config $W/gw-stream.yaml >/dev/null 2>$RUN/gws.log & GWS=$!
trap 'kill $GW $GWS $NPX $UPS 2>/dev/null; sleep 0.5; rm -rf $RUN' EXIT
sleep 1.5
ticks() { local t=0 p task; for p in $1 $(pgrep -P $1); do for task in /proc/$p/task/*; do set -- $(cut -d')' -f2- $task/stat); t=$((t + ${12} + ${13})); done; done; echo $t; }
hz=$(getconf CLK_TCK)
one() { # name pid url stream conns
  local t0 t1 line
  t0=$(ticks $2)
  line=$(WRK_HEADERS='Authorization: Bearer sk-test' WRK_STREAM=$4 timeout $((D+20)) taskset -c 0 wrk -t1 -c$5 -d${D}s --timeout 10s -s $PEERS/chat.lua $3 2>&1 | grep RESULT)
  t1=$(ticks $2)
  awk -v n="$1" -v c="$5" -v d=$((t1-t0)) -v hz=$hz -v l="$line" 'BEGIN{split(l,a," "); for(i in a){split(a[i],kv,"="); v[kv[1]]=kv[2]}; printf "%-10s c%-3s rps %8.0f p50 %6.3f p99 %6.3f cpu_us/req %6.1f errs %s\n", n, c, v["rps"], v["p50_us"]/1000, v["p99_us"]/1000, (v["requests"]>0? d*1e6/hz/v["requests"]:0), v["err_status"]+v["err_connect"]+v["err_read"] }'
}
# warm-up
WRK_HEADERS='Authorization: Bearer sk-test' WRK_STREAM=0 timeout 20 taskset -c 0 wrk -t1 -c16 -d2s -s $PEERS/chat.lua http://127.0.0.1:4000/v1/chat/completions >/dev/null 2>&1
for r in $(seq $ROUNDS); do
  for c in $CONNS; do
    one direct $UPS http://127.0.0.1:18080/v1/chat/completions 0 $c
    one aifinops $GW http://127.0.0.1:4000/v1/chat/completions 0 $c
    one nginx $NPX http://127.0.0.1:18090/v1/chat/completions 0 $c
    if [[ $STREAM == 1 ]]; then
      one direct-sse $UPS http://127.0.0.1:18080/stream/v1/chat/completions 1 $c
      one aif-sse $GWS http://127.0.0.1:4001/v1/chat/completions 1 $c
      one nginx-sse $NPX http://127.0.0.1:18090/stream/v1/chat/completions 1 $c
    fi
  done
done

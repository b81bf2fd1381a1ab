#!/usr/bin/env bash
# The gateway and nginx proxy_pass measured in turns within one run, so that both see the
# same machine load: for each round and connection count, wrk (pinned to CPU 0 with the mock
# upstream) posts the chat request direct, through the gateway and through nginx (both on
# CPU 1), and prints throughput, p50/p99 and the CPU per request of each proxy (utime+stime
# of its processes from /proc, divided by the requests). A busy machine inflates latency
# far more than CPU time, so on a shared machine compare the CPU column, round by round.
#
# At the end it prints, per connection count, the median over the rounds of what each proxy
# adds to direct (p50, p99; each round against its own direct run) and of its CPU per
# request, their ratios to nginx's and the targets (added p50 <= 1.25x, added p99
# <= 2x, CPU <= 2x nginx proxy_pass). Raw lines go to $OUT (default: a temporary file).
#
# Usage: bench/gateway_side_by_side.sh AIFINOPS [ROUNDS=3] [SECONDS=5] [CONNS="1 16"] [STREAM=0]
# With BEFORE=<another aifinops binary> that build also serves the plain route (port 4002,
# same configuration, pinned likewise) and takes its turn in every round as "before", and
# the summary adds its CPU per request beside AIFINOPS's: a change measured old against new
# on the same machine load.
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
BEFORE=${BEFORE:-}; GWB=
if [[ -n $BEFORE ]]; then
  rm -rf $W/bench-4002.db*
  sed -e 's/^listen: .*/listen: 127.0.0.1:4002/' -e "s|^ledger: .*|ledger: $W/bench-4002.db|" \
    $W/gw-plain.yaml > $RUN/gw-before.yaml
  taskset -c 1 $BEFORE gateway --config $RUN/gw-before.yaml >/dev/null 2>$RUN/gwb.log & GWB=$!
fi
trap 'kill $GW $GWS $GWB $NPX $UPS 2>/dev/null; sleep 0.5; rm -rf $RUN' EXIT
OUT=${OUT:-$RUN/rounds.txt}
: > "$OUT"
sleep 1.5
ticks() { local t=0 p task; for p in $1 $(pgrep -P $1); do for task in /proc/$p/task/*; do set -- $(cut -d')' -f2- $task/stat); t=$((t + ${12} + ${13})); done; done; echo $t; }
hz=$(getconf CLK_TCK)
# CPU time (ns) of the kernel's DAMON thread, where the kernel runs one: on a VM with
# proactive reclaim it takes the CPUs for milliseconds at a time, which shows in the p99 of
# whichever proxy's turn it falls in. Each row says how long it ran during that turn.
KDAMOND=$(pgrep -x kdamond.0 | head -1)
kdamond_ns() { if [[ -n $KDAMOND ]]; then cut -d' ' -f1 /proc/$KDAMOND/schedstat 2>/dev/null || echo 0; else echo 0; fi; }
one() { # name pid url stream conns
  local t0 t1 k0 k1 line
  t0=$(ticks $2); k0=$(kdamond_ns)
  line=$(WRK_HEADERS='Authorization: Bearer sk-test' WRK_STREAM=$4 timeout $((D+20)) taskset -c 0 wrk -t1 -c$5 -d${D}s --timeout 10s -s $PEERS/chat.lua $3 2>&1 | grep RESULT)
  t1=$(ticks $2); k1=$(kdamond_ns)
  awk -v n="$1" -v c="$5" -v r="$ROUND" -v d=$((t1-t0)) -v k=$((k1-k0)) -v hz=$hz -v l="$line" 'BEGIN{split(l,a," "); for(i in a){split(a[i],kv,"="); v[kv[1]]=kv[2]}; printf "%-10s c%-3s rps %8.0f p50 %6.3f p99 %6.3f cpu_us/req %6.1f errs %s kdamond_ms %5.1f round %s\n", n, c, v["rps"], v["p50_us"]/1000, v["p99_us"]/1000, (v["requests"]>0? d*1e6/hz/v["requests"]:0), v["err_status"]+v["err_connect"]+v["err_read"], k/1e6, r }' | tee -a "$OUT"
}
# warm-up
WRK_HEADERS='Authorization: Bearer sk-test' WRK_STREAM=0 timeout 20 taskset -c 0 wrk -t1 -c16 -d2s -s $PEERS/chat.lua http://127.0.0.1:4000/v1/chat/completions >/dev/null 2>&1
[[ -n $GWB ]] && WRK_HEADERS='Authorization: Bearer sk-test' WRK_STREAM=0 timeout 20 taskset -c 0 wrk -t1 -c16 -d2s -s $PEERS/chat.lua http://127.0.0.1:4002/v1/chat/completions >/dev/null 2>&1
for ROUND in $(seq $ROUNDS); do
  for c in $CONNS; do
    one direct $UPS http://127.0.0.1:18080/v1/chat/completions 0 $c
    [[ -n $GWB ]] && one before $GWB http://127.0.0.1:4002/v1/chat/completions 0 $c
    one aifinops $GW http://127.0.0.1:4000/v1/chat/completions 0 $c
    one nginx $NPX http://127.0.0.1:18090/v1/chat/completions 0 $c
    if [[ $STREAM == 1 ]]; then
      one direct-sse $UPS http://127.0.0.1:18080/stream/v1/chat/completions 1 $c
      one aif-sse $GWS http://127.0.0.1:4001/v1/chat/completions 1 $c
      one nginx-sse $NPX http://127.0.0.1:18090/stream/v1/chat/completions 1 $c
    fi
  done
done
echo
echo "== Added latency over direct and CPU per request: median of $ROUNDS interleaved rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
awk '{ if ($1 + 0 > 1.5) print "   (the machine is busy: the latency rows do not test the targets; CPU per request still compares)" }' /proc/loadavg
awk '
  { name=$1; c=$2; round=$NF; p50[name,c,round]=$6; p99[name,c,round]=$8; cpu[name,c,round]=$10
    conns[c]=1; names[name]=1; if (round > rounds) rounds=round }
  function median(list, n,   i, j, t) {  # sorts list[1..n] in place
    for (i = 2; i <= n; i++) { t = list[i]; for (j = i - 1; j >= 1 && list[j] > t; j--) list[j+1] = list[j]; list[j+1] = t }
    return n % 2 ? list[(n+1)/2] : (list[n/2] + list[n/2+1]) / 2 }
  function stat(what, proxy, base, c,   r, n, list) {
    n = 0
    for (r = 1; r <= rounds; r++) {
      if (!((proxy,c,r) in p50) || (what != "cpu" && !((base,c,r) in p50))) continue
      list[++n] = what == "p50" ? p50[proxy,c,r] - p50[base,c,r] : what == "p99" ? p99[proxy,c,r] - p99[base,c,r] : cpu[proxy,c,r]
    }
    return n ? median(list, n) : "nan" }
  function ratio(a, b) { return (b > 0) ? sprintf("%.2fx", a / b) : "n/a" }
  # Neither proxy adding anything measurable over direct (both <= 0, as streams at -c16 can
  # be when the closed loop is bound by the client) meets the target; nginx adding nothing
  # while aifinops adds some does not.
  function verdict(a, b, limit) {
    if (b <= 0) return a <= 0 ? "met (neither adds)" : "NOT met"
    return a / b <= limit ? "met" : "NOT met" }
  function row(label, a, b, limit, unit) {
    printf "%-28s %10.3f %10.3f %8s   <= %.2fx  %s\n", label, a, b, ratio(a, b), limit, verdict(a, b, limit) }
  END {
    printf "%-28s %10s %10s %8s   %s\n", "", "aifinops", "nginx", "ratio", "target"
    n = 0
    for (c in conns) order[++n] = substr(c, 2) + 0
    median(order, n)  # sorts the connection counts
    for (i = 1; i <= n; i++) {
      c = "c" order[i]
      row("added p50 ms, -" c, stat("p50", "aifinops", "direct", c), stat("p50", "nginx", "direct", c), 1.25)
      row("added p99 ms, -" c, stat("p99", "aifinops", "direct", c), stat("p99", "nginx", "direct", c), 2)
      row("CPU us/request, -" c, stat("cpu", "aifinops", "", c), stat("cpu", "nginx", "", c), 2)
      if (("before", c, 1) in p50)
        printf "%-28s %10.1f %10.1f %8s   (AIFINOPS against BEFORE)\n", "CPU us/request new/old, -" c,
          stat("cpu", "aifinops", "", c), stat("cpu", "before", "", c), ratio(stat("cpu", "aifinops", "", c), stat("cpu", "before", "", c))
      if (("aif-sse", c, 1) in p50) {
        row("stream added p50 ms, -" c, stat("p50", "aif-sse", "direct-sse", c), stat("p50", "nginx-sse", "direct-sse", c), 1.25)
        row("stream added p99 ms, -" c, stat("p99", "aif-sse", "direct-sse", c), stat("p99", "nginx-sse", "direct-sse", c), 2)
        row("stream CPU us/request, -" c, stat("cpu", "aif-sse", "", c), stat("cpu", "nginx-sse", "", c), 2)
      }
    }
  }' "$OUT"

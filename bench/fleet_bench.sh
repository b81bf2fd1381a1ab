#!/usr/bin/env bash
# Two gateway replicas sharing Redis, on loopback: the latency they add at a fixed total rate
# (default 2,000 requests/s, split evenly) over the same requests sent direct to the mock
# upstream, beside one replica with Redis and one with its state in memory; then the most
# requests/s one replica and two replicas serve (scaling from one to two).
#
# The mock upstream is the peers' nginx (../shared/bench/peers/gateway/mock), the request the
# peers' chat.lua (a realistic chat body, max_tokens 512, not cacheable), so the gateway runs
# its full path: key, limits and a budget reserved and settled in Redis (with leases, the
# default, two scripts per lease of up to 64 requests, off the request path; LEASE=0 sets
# redis_lease: false, two scripts per request), pricing, spool, ledger. Debian has no wrk2, so the rate is paced with wrk's
# delay(): each connection waits DELAY_MS after each answer, which gives
# CONNS / (DELAY_MS + latency) requests/s per wrk. That is not an open-loop generator: a stall
# delays the requests behind it instead of counting their wait (coordinated omission), so p99
# here is a lower bound of what a true fixed-rate client would see.
#
# Needs: nginx-light wrk redis-server curl python3 (Debian). Every load is bounded (wrk -d);
# all traffic stays on 127.0.0.1; every process started here is stopped at exit.
#
# The latency runs leave the scheduler free to place every process (pinning a replica to a
# core of a busy machine stalls it behind whatever else runs there); the throughput runs pin
# replica n to CPU n-1 (PIN=1), so that two replicas have a core each.
#
# Knobs: DURATION (15 s per run), RATE_CONNS (8 connections per wrk), DELAY_MS (8),
#        MAX_CONNS (16 per wrk for the throughput runs), PIN (1), THREADS (I/O threads per
#        replica, 1), LEASE (1: the default redis_lease; 0: redis_lease: false, for a gateway
#        that has the key), OUT_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$ROOT/../shared}"
PEERS="$SHARED/bench/peers/gateway"
AIFINOPS="${AIFINOPS:-$ROOT/build/release/aifinops}"
DURATION="${DURATION:-15}"
RATE_CONNS="${RATE_CONNS:-8}"
DELAY_MS="${DELAY_MS:-8}"
MAX_CONNS="${MAX_CONNS:-16}"
PIN="${PIN:-1}"
THREADS="${THREADS:-1}"
LEASE="${LEASE:-1}"
WORK="$(mktemp -d /tmp/aifinops-fleet-bench-XXXXXX)"
OUT_DIR="${OUT_DIR:-$WORK/results}"
mkdir -p "$OUT_DIR"

for t in nginx wrk redis-server curl python3 taskset; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install -y nginx-light wrk redis-server curl" >&2; exit 1; }
done
[[ -x $AIFINOPS ]] || { echo "build first: make build (no $AIFINOPS)" >&2; exit 1; }
[[ -f $PEERS/chat.lua ]] || { echo "missing the peers' harness in $PEERS" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK/nginx" "$WORK/redis"
}
trap cleanup EXIT
wait_port() { # port seconds
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
load() { cut -d' ' -f1-3 /proc/loadavg; }
say() { echo "$*" | tee -a "$OUT_DIR/summary.txt"; }

# ---------------------------------------------------------------- services
UP_PORT=$(free_port)
mkdir -p "$WORK/nginx"
python3 "$PEERS/mock/gen_conf.py" "$WORK/nginx" "$UP_PORT" > "$WORK/nginx/nginx.conf"
nginx -q -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" & PIDS+=($!)
wait_port "$UP_PORT" 10 || { echo "mock upstream did not start" >&2; exit 1; }

REDIS_PORT=$(free_port)
mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --dir "$WORK/redis" \
  --maxmemory-policy noeviction --logfile "$WORK/redis/redis.log" & PIDS+=($!)
wait_port "$REDIS_PORT" 10 || { echo "redis-server did not start" >&2; exit 1; }

KEY_SHA=$(printf '%s' sk-test | sha256sum | cut -d' ' -f1)
write_config() { # file ledger with_redis
  {
    cat <<YAML
listen: 127.0.0.1:0
ledger: $2
threads: $THREADS
upstreams:
  - {name: mock, kind: openai, base_url: "http://127.0.0.1:$UP_PORT/v1", timeout_s: 30}
routes:
  - {model: "*", upstream: mock}
keys:
  - id: bench
    key_sha256: "$KEY_SHA"
    tags: {team: bench, project: fleet-bench, environment: production}
    limits: {rpm: 100000000, tpm: 100000000000}
budgets:
  - {scope: {team: bench}, period: month, amount_usd: 100000000, enforce: hard}
YAML
    if [[ $3 == 1 ]]; then printf 'redis: redis://127.0.0.1:%s/0\nredis_prefix: "bench:"\n' "$REDIS_PORT"; fi
    if [[ $3 == 1 && $LEASE == 0 ]]; then echo "redis_lease: false"; fi
  } > "$1"
}
write_config "$WORK/fleet.yaml" "$WORK/fleet.db" 1
write_config "$WORK/memory.yaml" "$WORK/memory.db" 0

GW_PORTS=()
start_gateway() { # config spool cpu (- for none) -> appends the port to GW_PORTS
  local out="$WORK/gw-$2.out" pin=()
  : > "$out"
  if [[ $PIN == 1 && $3 != - ]]; then pin=(taskset -c "$3"); fi
  "${pin[@]}" "$AIFINOPS" gateway --config "$1" --spool-dir "$WORK/$2" >"$out" 2>"$WORK/gw-$2.log" & PIDS+=($!)
  local i
  for ((i = 0; i < 200; i++)); do
    grep -q "listening on" "$out" 2>/dev/null && break
    sleep 0.05
  done
  local port
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$out")
  [[ -n $port ]] || { echo "gateway did not start: $(cat "$WORK/gw-$2.log")" >&2; exit 1; }
  GW_PORTS+=("$port")
}
stop_gateways() { # SIGTERM: they drain their spools into the ledger
  local p
  for p in $(pgrep -f "$AIFINOPS gateway --config $WORK" || true); do kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < 200; i++)); do pgrep -f "$AIFINOPS gateway --config $WORK" >/dev/null || break; sleep 0.05; done
  GW_PORTS=()
}

# wrk with pacing: chat.lua's request and RESULT line, plus delay().
cat > "$WORK/paced.lua" <<LUA
dofile("$PEERS/chat.lua")
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if pause > 0 then function delay() return pause end end
LUA
run_wrk() { # name url conns delay_ms -> RESULT line in $OUT_DIR/name.txt
  WRK_HEADERS='Authorization: Bearer sk-test' WRK_DELAY_MS=$4 \
    wrk -t1 -c"$3" -d"${DURATION}s" --timeout 10s -s "$WORK/paced.lua" "$2" > "$OUT_DIR/$1.txt" 2>&1
}
field() { sed -n "s/.*RESULT.* $2=\([0-9.]*\).*/\1/p" "$OUT_DIR/$1.txt"; }
paced_pair() { # name url1 url2: two paced wrk at once, each half the total rate
  run_wrk "$1-a" "$2" "$RATE_CONNS" "$DELAY_MS" & local a=$!
  run_wrk "$1-b" "$3" "$RATE_CONNS" "$DELAY_MS" & local b=$!
  wait $a $b
  local rps p50 p99
  rps=$(echo "$(field "$1-a" rps) + $(field "$1-b" rps)" | bc)
  # The two halves' percentiles, averaged (each wrk has its own histogram).
  p50=$(echo "($(field "$1-a" p50_us) + $(field "$1-b" p50_us)) / 2" | bc)
  p99=$(echo "($(field "$1-a" p99_us) + $(field "$1-b" p99_us)) / 2" | bc)
  echo "$rps $p50 $p99"
}

URL=/v1/chat/completions
say "== Gateway fleet (Redis): $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r)"
say "   paced load: 2 x wrk -t1 -c$RATE_CONNS, delay ${DELAY_MS} ms per connection, ${DURATION} s per run; $THREADS I/O thread(s) per replica; LEASE=$LEASE"
say "   load average before: $(load)"

read -r d_rps d_p50 d_p99 < <(paced_pair direct "http://127.0.0.1:$UP_PORT$URL" "http://127.0.0.1:$UP_PORT$URL")
say "direct to the mock upstream:        ${d_rps} req/s  p50 ${d_p50} us  p99 ${d_p99} us   (load $(load))"

start_gateway "$WORK/fleet.yaml" spool-1 -
start_gateway "$WORK/fleet.yaml" spool-2 -
curl -sf -o /dev/null -X POST "http://127.0.0.1:${GW_PORTS[0]}$URL" -H 'Authorization: Bearer sk-test' \
  -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ping"}]}' \
  || { echo "the fleet does not answer" >&2; exit 1; }
read -r f_rps f_p50 f_p99 < <(paced_pair fleet "http://127.0.0.1:${GW_PORTS[0]}$URL" "http://127.0.0.1:${GW_PORTS[1]}$URL")
say "two replicas sharing Redis:         ${f_rps} req/s  p50 ${f_p50} us  p99 ${f_p99} us   (load $(load))"
say "   added by the fleet: p50 $((f_p50 - d_p50)) us, p99 $((f_p99 - d_p99)) us"

# Throughput: one replica, then two, each driven by its own unpaced wrk; a core each.
stop_gateways
start_gateway "$WORK/fleet.yaml" spool-1 0
start_gateway "$WORK/fleet.yaml" spool-2 1
run_wrk max-one "http://127.0.0.1:${GW_PORTS[0]}$URL" "$MAX_CONNS" 0
one=$(field max-one rps)
say "most req/s, one replica (Redis):    ${one}   (load $(load))"
run_wrk max-two-a "http://127.0.0.1:${GW_PORTS[0]}$URL" "$MAX_CONNS" 0 & a=$!
run_wrk max-two-b "http://127.0.0.1:${GW_PORTS[1]}$URL" "$MAX_CONNS" 0 & b=$!
wait $a $b
two=$(echo "$(field max-two-a rps) + $(field max-two-b rps)" | bc)
say "most req/s, two replicas (Redis):   ${two}   scaling $(echo "scale=2; $two / $one" | bc)x   (load $(load))"
stop_gateways
served=0
for f in "$OUT_DIR"/fleet-?.txt "$OUT_DIR"/max-*.txt; do served=$((served + $(field "$(basename "$f" .txt)" requests))); done
recorded=$("$AIFINOPS" report --db "$WORK/fleet.db" --metric requests --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
say "   ledger: $recorded records for $served requests wrk completed (plus the warm-up request)"

# The same paced load through one replica, with Redis and with its state in memory.
start_gateway "$WORK/fleet.yaml" spool-1 -
read -r r_rps r_p50 r_p99 < <(paced_pair one-redis "http://127.0.0.1:${GW_PORTS[0]}$URL" "http://127.0.0.1:${GW_PORTS[0]}$URL")
say "one replica, Redis, same rate:      ${r_rps} req/s  p50 ${r_p50} us  p99 ${r_p99} us   (load $(load))"
stop_gateways
start_gateway "$WORK/memory.yaml" spool-m -
read -r m_rps m_p50 m_p99 < <(paced_pair one-memory "http://127.0.0.1:${GW_PORTS[0]}$URL" "http://127.0.0.1:${GW_PORTS[0]}$URL")
say "one replica, state in memory:       ${m_rps} req/s  p50 ${m_p50} us  p99 ${m_p99} us   (load $(load))"
stop_gateways
say "   load average after: $(load)"
say "results in $OUT_DIR"

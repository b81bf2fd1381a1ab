#!/usr/bin/env bash
# The gateway beside its peers, in one run on loopback: the same requests direct to a mock
# OpenAI upstream (nginx), through `aifinops gateway` (metering, limits, a budget and the
# spool all on), through nginx's own proxy_pass and through Portkey, using the peers'
# harness (../shared/bench/peers/gateway/run.sh). Then peak RSS under 1,000 concurrent
# streaming connections and an RSS soak. Prints the harness's tables and ours.
#
# Needs: nginx-light wrk nodejs npm curl (Debian); Portkey is installed with npm into a
# copy of the peers' folder. Every load loop is bounded (wrk -d); all traffic stays on
# 127.0.0.1.
#
# The harness measures nginx proxy_pass in a second run; the targets are then checked on
# rounds in which direct, the gateway and nginx take turns (bench/gateway_side_by_side.sh,
# pinned), so that both proxies see the same machine: its last table gives the ratios.
#
# Knobs: DURATION (20 s per run), CONNS ("1 16 64"), MODES ("unpinned pinned"),
#        ROUNDS (5 interleaved rounds: on a VM whose host reclaims memory behind its back, a
#        round in three can be spoiled; the median of five stands one more), SOAK_SECONDS (600), SOAK_RPS (1000 requests/s in the
#        soak; 0 = closed loop), STREAM_CONNECTIONS (1000), PORTKEY (1), OUT_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$ROOT/../shared}"
WORK="${WORK:-/tmp/aifinops-gateway-bench}"
AIFINOPS="${AIFINOPS:-$ROOT/build/release/aifinops}"
export DURATION="${DURATION:-20}" CONNS="${CONNS:-1 16 64}" MODES="${MODES:-unpinned pinned}"
export PORTKEY="${PORTKEY:-1}"
SOAK_SECONDS="${SOAK_SECONDS:-600}"
STREAM_CONNECTIONS="${STREAM_CONNECTIONS:-1000}"
OUT_DIR="${OUT_DIR:-$WORK/results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$WORK" "$OUT_DIR"

for t in nginx wrk node npm curl taskset; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install -y nginx-light wrk nodejs npm curl" >&2; exit 1; }
done
[[ -x $AIFINOPS ]] || { echo "build first: make build (no $AIFINOPS)" >&2; exit 1; }

# The peers' harness, in a writable copy (npm installs into it).
if [[ ! -d $WORK/peers ]]; then
  cp -r "$SHARED/bench/peers" "$WORK/peers"
  chmod -R u+w "$WORK/peers"
fi
if [[ $PORTKEY == 1 ]]; then
  for d in portkey portkey-honofix; do
    [[ -d $WORK/peers/$d/node_modules ]] || (cd "$WORK/peers/$d" && npm install --no-audit --no-fund >/dev/null)
  done
fi

# Two gateway configs: one for plain requests (upstream /v1), one for streams (the mock
# serves streams under /stream/v1). Both run in the harness's process group.
KEY_SHA=$(printf '%s' sk-test | sha256sum | cut -d' ' -f1)
write_config() { # file port upstream_path
  cat > "$1" <<YAML
listen: 127.0.0.1:$2
ledger: $WORK/bench-$2.db
upstreams:
  - {name: mock, kind: openai, base_url: "http://127.0.0.1:18080$3", timeout_s: 30}
routes:
  - {model: "*", upstream: mock}
keys:
  - id: bench
    key_sha256: "$KEY_SHA"
    tags: {team: bench, project: gateway-bench, environment: production}
    limits: {rpm: 100000000, tpm: 100000000000}
budgets:
  - {scope: {team: bench}, period: month, amount_usd: 100000000, enforce: hard}
YAML
}
write_config "$WORK/gw-plain.yaml" 4000 /v1
write_config "$WORK/gw-stream.yaml" 4001 /stream/v1
rm -rf "$WORK"/bench-400*.db*

echo "== Side by side: direct, aifinops gateway, Portkey (peers' harness)" | tee "$OUT_DIR/summary.txt"
GATEWAY_CMD="$AIFINOPS gateway --config $WORK/gw-stream.yaml >/dev/null 2>&1 & exec $AIFINOPS gateway --config $WORK/gw-plain.yaml" \
GATEWAY_URL=http://127.0.0.1:4000/v1/chat/completions \
GATEWAY_STREAM_URL=http://127.0.0.1:4001/v1/chat/completions \
GATEWAY_HEADERS='Authorization: Bearer sk-test' GATEWAY_NAME=aifinops \
OUT_DIR="$OUT_DIR/harness" bash "$WORK/peers/gateway/run.sh" 2>"$OUT_DIR/harness.log" | tee -a "$OUT_DIR/summary.txt"

echo "== Reference: nginx proxy_pass as a gateway (same harness)" | tee -a "$OUT_DIR/summary.txt"
(cd "$WORK/peers/gateway" && GATEWAY_CMD="$PWD/nginx_proxy.sh 18090" \
  GATEWAY_URL=http://127.0.0.1:18090/v1/chat/completions GATEWAY_HEADERS='Authorization: Bearer sk-test' \
  GATEWAY_NAME=nginx-proxy GATEWAY_STREAM_URL=http://127.0.0.1:18090/stream/v1/chat/completions \
  PORTKEY=0 OUT_DIR="$OUT_DIR/nginx-proxy" bash ./run.sh 2>"$OUT_DIR/nginx-proxy.log") | tee -a "$OUT_DIR/summary.txt"

echo "== Every request the gateway served is in its ledger" | tee -a "$OUT_DIR/summary.txt"
for port in 4000 4001; do
  "$AIFINOPS" report --db "$WORK/bench-$port.db" --by team --metric requests --format csv | tee -a "$OUT_DIR/summary.txt"
  ls -l "$WORK/bench-$port.db" | awk '{printf "ledger bytes: %s\n", $5}' | tee -a "$OUT_DIR/summary.txt"
done

echo "== Interleaved: direct, aifinops and nginx proxy_pass in turns, pinned (the targets)" | tee -a "$OUT_DIR/summary.txt"
WORK="$WORK" OUT="$OUT_DIR/side_by_side.txt" bash "$ROOT/bench/gateway_side_by_side.sh" "$AIFINOPS" \
  "${ROUNDS:-5}" "$DURATION" "$CONNS" 1 | tee -a "$OUT_DIR/summary.txt"

echo "== RSS with $STREAM_CONNECTIONS concurrent streaming connections, and an RSS soak" | tee -a "$OUT_DIR/summary.txt"
bash "$ROOT/bench/gateway_rss.sh" "$WORK" "$AIFINOPS" "$STREAM_CONNECTIONS" "$SOAK_SECONDS" | tee -a "$OUT_DIR/summary.txt"
echo "results in $OUT_DIR"

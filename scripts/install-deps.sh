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
# Fuzzing (make fuzz) needs clang's libFuzzer runtime.
FUZZ_PKGS=(clang libclang-rt-14-dev)

want=("${BUILD_PKGS[@]}")
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

if [ ${#missing[@]} -eq 0 ]; then
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

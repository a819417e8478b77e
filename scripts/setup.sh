#!/usr/bin/env bash
# Installs what breakeven needs from Debian 12 packages (only what is missing, so it is safe to
# run again) and builds it into build/. CUDA is used when the toolkit is installed in its
# standard place (/usr/local/cuda); without it the CPU parts are built.
#
#   scripts/setup.sh            install + configure + build
#   BUILD_TYPE=Debug scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config
  libboost-dev                       # Asio, Beast
  protobuf-compiler libprotobuf-dev  # the wire protocol
  libsqlite3-dev sqlite3             # cluster state; sqlite3 is the shell for analysts
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libyaml-cpp-dev                    # benchmark matrix files
  libopenblas-dev libgloo-dev        # the CPU backend and its collectives
  libgtest-dev libgmock-dev          # tests
  prometheus                         # promtool and a server: the dashboards' PromQL tests
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"
cmake --build build -j"$(nproc)"

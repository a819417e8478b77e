#!/usr/bin/env bash
# Installs, builds and runs every test (unit and integration; GPU tests report themselves
# skipped on machines without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"

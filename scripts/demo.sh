#!/usr/bin/env bash
# The main job: install and build what is needed, then `breakeven demo`: a local cluster (one
# scheduler and two CPU node agents on loopback) runs examples/demo.yaml, shows live progress,
# then the results and the economics, and leaves the SQLite database in .breakeven-demo/.
#
#   scripts/demo.sh              # the whole thing (a few minutes on 2 cores, after the build)
#   scripts/demo.sh --keep       # leave the cluster running afterwards
#   scripts/demo.sh --help       # every option of `breakeven demo`
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/cli/breakeven demo "$@"

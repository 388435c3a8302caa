#!/usr/bin/env bash
# test.sh: README command 2 — set up, build, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd build
CHRONOS_PROGRESS=0 ctest --output-on-failure -j "$(nproc)"
